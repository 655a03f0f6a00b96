/*
 * stitch.c - groups child rows under parent rows by key value, once per
 * row: the parents' distinct keys go into an open-addressing hash, each
 * child key is looked up once, and the children are laid out per group
 * in row order (counting sort). Pure C with no global state, so an
 * operation can run it on a worker thread.
 *
 * Keys compare by value across the ways drivers deliver them: an
 * integer equals a float with the same integral value, a text spelling
 * it canonically ("42", not "042" or "+42"), or a boolean 0/1; text and
 * blob compare as bytes. NULL matches nothing.
 */
#include "sqorm.h"

#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

enum { K_NULL = 0, K_INT, K_FLOAT, K_BYTES };

typedef struct kval {
  int tag;
  int64_t i;
  double f;
  const char *p;
  size_t n;
} kval;

/* A canonical decimal integer that fits int64. */
static int text_int(const char *s, size_t n, int64_t *out) {
  size_t i = 0;
  int neg = 0;
  if (n == 0) return 0;
  if (s[0] == '-') {
    neg = 1;
    i = 1;
  }
  if (i == n || n - i > 19) return 0;
  if (s[i] == '0' && (n - i > 1 || neg)) return 0; /* leading zero, "-0" */
  uint64_t v = 0;
  for (; i < n; i++) {
    if (s[i] < '0' || s[i] > '9') return 0;
    v = v * 10 + (uint64_t)(s[i] - '0');
  }
  if (neg ? v > (uint64_t)INT64_MAX + 1 : v > (uint64_t)INT64_MAX) return 0;
  *out = neg ? (int64_t)(0 - v) : (int64_t)v;
  return 1;
}

static kval norm(const sq_value *v) {
  kval k;
  memset(&k, 0, sizeof k);
  switch (v->type) {
  case SQ_VINT:
    k.tag = K_INT;
    k.i = v->u.i;
    break;
  case SQ_VBOOL:
    k.tag = K_INT;
    k.i = v->u.b != 0;
    break;
  case SQ_VFLOAT:
    if (isnan(v->u.f)) break; /* matches nothing */
    if (v->u.f == floor(v->u.f) && v->u.f >= -9223372036854775808.0 && v->u.f < 9223372036854775808.0) {
      k.tag = K_INT;
      k.i = (int64_t)v->u.f;
    } else {
      k.tag = K_FLOAT;
      k.f = v->u.f;
    }
    break;
  case SQ_VTEXT:
  case SQ_VBLOB:
    if (v->type == SQ_VTEXT && text_int(v->u.s.p, v->u.s.n, &k.i)) {
      k.tag = K_INT;
    } else {
      k.tag = K_BYTES;
      k.p = v->u.s.p ? v->u.s.p : "";
      k.n = v->u.s.p ? v->u.s.n : 0;
    }
    break;
  default:
    break;
  }
  return k;
}

static uint64_t mix(uint64_t h, uint64_t x) {
  h ^= x + 0x9e3779b97f4a7c15ull + (h << 6) + (h >> 2);
  return h;
}

static uint64_t hash_key(const kval *k) {
  uint64_t h = (uint64_t)k->tag;
  switch (k->tag) {
  case K_INT: return mix(h, (uint64_t)k->i * 0xff51afd7ed558ccdull);
  case K_FLOAT: {
    uint64_t b;
    memcpy(&b, &k->f, sizeof b);
    return mix(h, b);
  }
  case K_BYTES: {
    uint64_t x = 1469598103934665603ull;
    for (size_t i = 0; i < k->n; i++) x = (x ^ (unsigned char)k->p[i]) * 1099511628211ull;
    return mix(h, x);
  }
  default: return h;
  }
}

static int key_eq(const kval *a, const kval *b) {
  if (a->tag != b->tag) return 0;
  switch (a->tag) {
  case K_INT: return a->i == b->i;
  case K_FLOAT: return a->f == b->f;
  case K_BYTES: return a->n == b->n && (a->n == 0 || !memcmp(a->p, b->p, a->n));
  default: return 0;
  }
}

/* Normalizes the nkey values of row r; 0 when one of them is NULL. */
static int row_key(const sq_value *keys, int r, int nkey, kval *out, uint64_t *h) {
  *h = 0x84222325cbf29ce4ull;
  for (int j = 0; j < nkey; j++) {
    out[j] = norm(&keys[(size_t)r * (size_t)nkey + (size_t)j]);
    if (out[j].tag == K_NULL) return 0;
    *h = mix(*h, hash_key(&out[j]));
  }
  return 1;
}

void sq_stitch_free(sq_stitch *s) {
  if (!s) return;
  free(s->group_of_parent);
  free(s->group_parent);
  free(s->first);
  free(s->child);
  memset(s, 0, sizeof *s);
}

int sq_stitch_build(const sq_value *pkeys, int np, const sq_value *ckeys, int nc, int nkey, sq_stitch *out,
                    sq_err *err) {
  if (!out) return sq_err_set(err, SQ_EUSAGE, "sq_stitch_build: no output");
  memset(out, 0, sizeof *out);
  if (np < 0 || nc < 0 || nkey < 1 || nkey > 64 || (np > 0 && !pkeys) || (nc > 0 && !ckeys))
    return sq_err_set(err, SQ_EUSAGE, "sq_stitch_build: bad arguments");
  size_t ns = 16;
  while (ns < (size_t)np * 2 + 2) ns *= 2;
  int *slots = malloc(ns * sizeof *slots);            /* group + 1, 0 = empty */
  uint64_t *hashes = malloc(((size_t)np + 1) * sizeof *hashes); /* per group */
  int *cgroup = malloc(((size_t)nc + 1) * sizeof *cgroup);
  out->group_of_parent = malloc(((size_t)np + 1) * sizeof *out->group_of_parent);
  out->group_parent = malloc(((size_t)np + 1) * sizeof *out->group_parent);
  kval *a = malloc((size_t)nkey * 2 * sizeof *a), *b = a ? a + nkey : NULL;
  if (!slots || !hashes || !cgroup || !out->group_of_parent || !out->group_parent || !a) goto oom;
  memset(slots, 0, ns * sizeof *slots);
  size_t mask = ns - 1;
  int ng = 0;
  for (int p = 0; p < np; p++) {
    uint64_t h;
    if (!row_key(pkeys, p, nkey, a, &h)) {
      out->group_of_parent[p] = -1;
      continue;
    }
    size_t s = (size_t)h & mask;
    int g = -1;
    for (; slots[s]; s = (s + 1) & mask) {
      int cand = slots[s] - 1;
      if (hashes[cand] != h) continue;
      uint64_t h2;
      row_key(pkeys, out->group_parent[cand], nkey, b, &h2);
      int eq = 1;
      for (int j = 0; j < nkey && eq; j++) eq = key_eq(&a[j], &b[j]);
      if (eq) {
        g = cand;
        break;
      }
    }
    if (g < 0) {
      g = ng++;
      hashes[g] = h;
      out->group_parent[g] = p;
      slots[s] = g + 1;
    }
    out->group_of_parent[p] = g;
  }
  out->ngroups = ng;
  out->first = calloc((size_t)ng + 2, sizeof *out->first);
  if (!out->first) goto oom;
  int matched = 0;
  for (int c = 0; c < nc; c++) {
    uint64_t h;
    cgroup[c] = -1;
    if (row_key(ckeys, c, nkey, a, &h)) {
      for (size_t s = (size_t)h & mask; slots[s]; s = (s + 1) & mask) {
        int cand = slots[s] - 1;
        if (hashes[cand] != h) continue;
        uint64_t h2;
        row_key(pkeys, out->group_parent[cand], nkey, b, &h2);
        int eq = 1;
        for (int j = 0; j < nkey && eq; j++) eq = key_eq(&a[j], &b[j]);
        if (eq) {
          cgroup[c] = cand;
          break;
        }
      }
    }
    if (cgroup[c] < 0) {
      out->nunmatched++;
      continue;
    }
    out->first[cgroup[c] + 1]++;
    matched++;
  }
  for (int g = 0; g < ng; g++) out->first[g + 1] += out->first[g];
  out->child = malloc(((size_t)matched + 1) * sizeof *out->child);
  if (!out->child) goto oom;
  out->nchild = matched;
  /* Fill in row order: a cursor per group, reusing first[] shifted. */
  int *cur = malloc(((size_t)ng + 1) * sizeof *cur);
  if (!cur) goto oom;
  for (int g = 0; g < ng; g++) cur[g] = out->first[g];
  for (int c = 0; c < nc; c++)
    if (cgroup[c] >= 0) out->child[cur[cgroup[c]]++] = c;
  free(cur);
  free(slots);
  free(hashes);
  free(cgroup);
  free(a);
  return SQ_OK;
oom:
  free(slots);
  free(hashes);
  free(cgroup);
  free(a);
  sq_stitch_free(out);
  return sq_err_set(err, SQ_ENOMEM, "out of memory stitching rows");
}

/* ------------------------------------------------------------------ */
/* Key maps: the distinct keys of a set of parent rows, looked up one   */
/* child key at a time (an operation tags each streamed child row with  */
/* its parent row this way).                                            */
/* ------------------------------------------------------------------ */

void sq_keymap_free(sq_keymap *m) {
  if (!m) return;
  free(m->group_parent);
  free(m->slots_);
  free(m->hashes_);
  memset(m, 0, sizeof *m);
}

int sq_keymap_build(const sq_value *keys, int n, sq_keymap *out, sq_err *err) {
  memset(out, 0, sizeof *out);
  if (n < 0 || (n > 0 && !keys)) return sq_err_set(err, SQ_EUSAGE, "sq_keymap_build: bad arguments");
  size_t ns = 16;
  while (ns < (size_t)n * 2 + 2) ns *= 2;
  out->slots_ = calloc(ns, sizeof *out->slots_);
  out->hashes_ = malloc(((size_t)n + 1) * sizeof *out->hashes_);
  out->group_parent = malloc(((size_t)n + 1) * sizeof *out->group_parent);
  if (!out->slots_ || !out->hashes_ || !out->group_parent) {
    sq_keymap_free(out);
    return sq_err_set(err, SQ_ENOMEM, "out of memory stitching rows");
  }
  out->keys_ = keys;
  out->mask_ = ns - 1;
  for (int p = 0; p < n; p++) {
    kval a;
    uint64_t h;
    if (!row_key(keys, p, 1, &a, &h)) continue;
    size_t s = (size_t)h & out->mask_;
    int found = 0;
    for (; out->slots_[s]; s = (s + 1) & out->mask_) {
      int cand = out->slots_[s] - 1;
      if (out->hashes_[cand] != h) continue;
      kval b;
      uint64_t h2;
      row_key(keys, out->group_parent[cand], 1, &b, &h2);
      if (key_eq(&a, &b)) {
        found = 1;
        break;
      }
    }
    if (found) continue;
    int g = out->ngroups++;
    out->hashes_[g] = h;
    out->group_parent[g] = p;
    out->slots_[s] = g + 1;
  }
  return SQ_OK;
}

int sq_keymap_find(const sq_keymap *m, const sq_value *key) {
  if (!m || !m->slots_) return -1;
  kval a;
  uint64_t h;
  if (!row_key(key, 0, 1, &a, &h)) return -1;
  for (size_t s = (size_t)h & m->mask_; m->slots_[s]; s = (s + 1) & m->mask_) {
    int cand = m->slots_[s] - 1;
    if (m->hashes_[cand] != h) continue;
    kval b;
    uint64_t h2;
    row_key(m->keys_, m->group_parent[cand], 1, &b, &h2);
    if (key_eq(&a, &b)) return cand;
  }
  return -1;
}
