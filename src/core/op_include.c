/*
 * op_include.c - the include plan of an SQ_OPER_SELECT (sqorm.h,
 * sq_oper_set_includes): keys kept from the rows of each set as they
 * stream by, then one batched statement per to-many include and chunk of
 * keys, run by op.c on the op's connection, with each child row tagged
 * with its parent row. Pure C, no globals: runs on whatever thread runs
 * the op.
 */
#include "internal.h"

#include <stdlib.h>
#include <string.h>

typedef struct inc_ref {
  const sq_include *inc;
  int pset;          /* the set whose rows hold the keys */
  int key_col;       /* the result column of pset holding them */
  sq_value *keys;    /* one per row of pset (NULL values kept: row index = position) */
  int nkeys, cap;
} inc_ref;

struct sq_incplan {
  sq_arena *a;
  sq_oper_setinfo *sets;
  int nsets, capsets;
  inc_ref *refs;
  int nrefs, caprefs;
  int nmain_refs;    /* refs keyed on set 0 (kept across restarts) */
  sq_select_sql *sqls; /* rendered batches (their cols are the sets' cols) */
  int nsqls, capsqls;
  /* the set being loaded */
  int cur;
  sq_keymap map;
  const sq_value *cur_keys;
  int cur_parent_col;
};

static void *grow(void *p, int *cap, int need, size_t size) {
  if (need <= *cap) return p;
  int n = *cap ? *cap * 2 : 8;
  while (n < need) n *= 2;
  void *q = realloc(p, (size_t)n * size);
  if (q) *cap = n;
  return q;
}

static int add_set(sq_incplan *p, const sq_include *inc, int pset, const sq_rcol *cols, int ncols, int parent_col,
                   sq_err *err) {
  sq_oper_setinfo *s = grow(p->sets, &p->capsets, p->nsets + 1, sizeof *s);
  if (!s) return sq_err_set(err, SQ_ENOMEM, "out of memory");
  p->sets = s;
  sq_oper_setinfo *x = &s[p->nsets];
  x->inc = inc;
  x->parent_set = pset;
  x->cols = cols;
  x->ncols = ncols;
  x->parent_col = parent_col;
  return p->nsets++;
}

static int add_refs(sq_incplan *p, int pset, const sq_select_sql *s, sq_err *err) {
  for (int i = 0; i < s->nbatches; i++) {
    inc_ref *r = grow(p->refs, &p->caprefs, p->nrefs + 1, sizeof *r);
    if (!r) return sq_err_set(err, SQ_ENOMEM, "out of memory");
    p->refs = r;
    inc_ref *x = &r[p->nrefs++];
    memset(x, 0, sizeof *x);
    x->inc = s->batches[i].inc;
    x->pset = pset;
    x->key_col = s->batches[i].key_col;
  }
  return SQ_OK;
}

int sq_incplan_new(sq_arena *a, const sq_select_sql *main, sq_incplan **out, sq_err *err) {
  *out = NULL;
  sq_incplan *p = calloc(1, sizeof *p);
  sq_rcol *cols = main->ncols ? sq_arena_alloc(a, sizeof *cols * (size_t)main->ncols) : NULL;
  if (!p || (main->ncols && !cols)) {
    free(p);
    return sq_err_set(err, SQ_ENOMEM, "out of memory");
  }
  if (main->ncols) memcpy(cols, main->cols, sizeof *cols * (size_t)main->ncols);
  p->a = a;
  p->cur = -1;
  if (add_set(p, NULL, -1, cols, main->ncols, main->parent_col, err) < 0 || add_refs(p, 0, main, err)) {
    sq_incplan_free(p);
    return err->kind;
  }
  p->nmain_refs = p->nrefs;
  *out = p;
  return SQ_OK;
}

static void drop_run(sq_incplan *p) {
  for (int i = 0; i < p->nsqls; i++) sq_select_sql_free(&p->sqls[i]);
  p->nsqls = 0;
  for (int i = 0; i < p->nrefs; i++) {
    free(p->refs[i].keys);
    p->refs[i].keys = NULL;
    p->refs[i].nkeys = p->refs[i].cap = 0;
  }
  sq_keymap_free(&p->map);
  p->cur = -1;
}

void sq_incplan_restart(sq_incplan *p) {
  drop_run(p);
  p->nrefs = p->nmain_refs;
  p->nsets = 1;
}

void sq_incplan_free(sq_incplan *p) {
  if (!p) return;
  drop_run(p);
  free(p->sqls);
  free(p->refs);
  free(p->sets);
  free(p);
}

int sq_incplan_nsets(const sq_incplan *p) { return p ? p->nsets : 0; }
const sq_oper_setinfo *sq_incplan_set(const sq_incplan *p, int set) {
  return p && set >= 0 && set < p->nsets ? &p->sets[set] : NULL;
}

int sq_incplan_row(sq_incplan *p, int set, const sq_value *vals, int ncols, int64_t *parent, sq_err *err) {
  if (set > 0 && set == p->cur) {
    int g = p->cur_parent_col >= 0 && p->cur_parent_col < ncols ? sq_keymap_find(&p->map, &vals[p->cur_parent_col]) : -1;
    *parent = g >= 0 ? p->map.group_parent[g] : -1;
  }
  for (int i = 0; i < p->nrefs; i++) {
    inc_ref *r = &p->refs[i];
    if (r->pset != set) continue;
    sq_value *k = grow(r->keys, &r->cap, r->nkeys + 1, sizeof *k);
    if (!k) return sq_err_set(err, SQ_ENOMEM, "out of memory");
    r->keys = k;
    sq_value v = r->key_col >= 0 && r->key_col < ncols ? vals[r->key_col] : sq_null();
    if (v.type == SQ_VTEXT || v.type == SQ_VBLOB) {
      char *c = sq_arena_alloc(p->a, v.u.s.n + 1);
      if (!c) return sq_err_set(err, SQ_ENOMEM, "out of memory");
      if (v.u.s.n) memcpy(c, v.u.s.p, v.u.s.n);
      c[v.u.s.n] = '\0';
      v.u.s.p = c;
    }
    k[r->nkeys++] = v;
  }
  return SQ_OK;
}

int sq_incplan_run(sq_incplan *p, int dialect, sq_incplan_exec exec, void *ud, sq_err *err) {
  /* refs grow while we go: nested includes of each set come after it */
  for (int i = 0; i < p->nrefs; i++) {
    inc_ref r = p->refs[i];
    sq_keymap_free(&p->map);
    p->cur = -1;
    int rc = sq_keymap_build(r.keys, r.nkeys, &p->map, err);
    if (rc) return rc;
    if (p->map.ngroups == 0) continue;
    int max = 0;
    if ((rc = sq_include_batch_max(r.inc, dialect, &max, err))) return rc;
    sq_value *chunk = malloc(sizeof *chunk * (size_t)(p->map.ngroups < max ? p->map.ngroups : max));
    if (!chunk) return sq_err_set(err, SQ_ENOMEM, "out of memory");
    int set = -1;
    for (int g0 = 0; g0 < p->map.ngroups && !rc; g0 += max) {
      int n = p->map.ngroups - g0 < max ? p->map.ngroups - g0 : max;
      for (int j = 0; j < n; j++) chunk[j] = r.keys[p->map.group_parent[g0 + j]];
      sq_select_sql *s = grow(p->sqls, &p->capsqls, p->nsqls + 1, sizeof *s);
      if (!s) {
        rc = sq_err_set(err, SQ_ENOMEM, "out of memory");
        break;
      }
      p->sqls = s;
      sq_select_sql *bs = &s[p->nsqls];
      if ((rc = sq_render_include_batch(r.inc, dialect, chunk, n, bs, err))) break;
      p->nsqls++;
      if (set < 0) {
        set = add_set(p, r.inc, r.pset, bs->cols, bs->ncols, bs->parent_col, err);
        if (set < 0 || (rc = add_refs(p, set, bs, err))) {
          rc = err->kind ? err->kind : SQ_ENOMEM;
          break;
        }
      }
      p->cur = set;
      p->cur_parent_col = bs->parent_col;
      p->cur_keys = r.keys;
      rc = exec(ud, set, bs, err);
    }
    free(chunk);
    p->cur = -1;
    if (rc) return rc;
  }
  return SQ_OK;
}
