/*
 * rowset.c - sq_rowset: an owned copy of what a row sink received.
 *
 * An operation that runs on a worker thread can't hand rows to the Lua
 * binding as they come (no lua_State may be touched there), so it
 * records them: every columns and row call of its sink becomes an event
 * in the rowset, values deep-copied, and the binding later replays the
 * events, in the same order, through the very sink an inline run would
 * have fed directly. One result-building path, two schedules.
 *
 * Events are packed into chunks (the first 4 KiB, each next one twice
 * the last up to 64 KiB, or one event's size when it is bigger; a
 * primary-key lookup touches one small chunk, not 64 KiB of fresh pages
 * on a worker thread): a header, the values (or column descriptions),
 * then the bytes of their strings, which the copied values point at. Chunks never move,
 * so those pointers stay valid until the rowset is cleared or freed.
 * Recording costs one bump allocation and one copy per row; replay walks
 * the chunks in order.
 */
#include "sqorm.h"

#include <stdalign.h>
#include <stdlib.h>
#include <string.h>

#define CHUNK 65536
#define FIRST_CHUNK 4096
#define ALIGN 16

enum { EV_COLUMNS = 1, EV_ROW };

typedef struct ev {
  size_t size;     /* bytes of the event, header included, a multiple of ALIGN */
  int kind;        /* EV_* */
  int set;
  int ncols;
  int64_t parent;
  /* then ncols sq_column (EV_COLUMNS) or sq_value (EV_ROW), then bytes */
} ev;

#define EV_HEAD ((sizeof(ev) + ALIGN - 1) & ~(size_t)(ALIGN - 1))

typedef struct chunk {
  struct chunk *next;
  size_t cap, used;
  alignas(ALIGN) unsigned char data[];
} chunk;

struct sq_rowset {
  chunk *head, *tail;
  int64_t rows;
  int events;
};

int sq_rowset_new(sq_rowset **out, sq_err *err) {
  *out = calloc(1, sizeof **out);
  if (!*out) return sq_err_set(err, SQ_ENOMEM, "out of memory");
  return SQ_OK;
}

void sq_rowset_clear(sq_rowset *rs) {
  if (!rs) return;
  /* keep the biggest regular chunk: the next run starts from its size */
  chunk *keep = NULL, *c;
  for (c = rs->head; c; c = c->next)
    if (c->cap <= CHUNK && (!keep || c->cap > keep->cap)) keep = c;
  c = rs->head;
  while (c) {
    chunk *next = c->next;
    if (c != keep) free(c);
    c = next;
  }
  if (keep) {
    keep->next = NULL;
    keep->used = 0;
  }
  rs->head = rs->tail = keep;
  rs->rows = 0;
  rs->events = 0;
}

void sq_rowset_free(sq_rowset *rs) {
  if (!rs) return;
  chunk *c = rs->head;
  while (c) {
    chunk *next = c->next;
    free(c);
    c = next;
  }
  free(rs);
}

int64_t sq_rowset_rows(const sq_rowset *rs) { return rs ? rs->rows : 0; }

/* Room for an event of n bytes at the end of the rowset (NULL when out
 * of memory). */
static ev *reserve(sq_rowset *rs, size_t n) {
  n = (n + ALIGN - 1) & ~(size_t)(ALIGN - 1);
  chunk *t = rs->tail;
  if (!t || t->cap - t->used < n) {
    size_t cap = t ? t->cap * 2 : FIRST_CHUNK;
    if (cap > CHUNK) cap = CHUNK;
    if (cap < n) cap = n;
    if (t && t->used == 0 && t->cap >= n) {
      /* the kept empty chunk */
    } else {
      chunk *c = malloc(sizeof *c + cap);
      if (!c) return NULL;
      c->next = NULL;
      c->cap = cap;
      c->used = 0;
      if (t) t->next = c;
      else rs->head = c;
      rs->tail = t = c;
    }
  }
  ev *e = (ev *)(void *)(t->data + t->used);
  t->used += n;
  e->size = n;
  rs->events++;
  return e;
}

static int rec_columns(void *ud, int set, int ncols, const sq_column *cols, sq_err *err) {
  sq_rowset *rs = ud;
  size_t n = EV_HEAD + sizeof(sq_column) * (size_t)ncols;
  for (int i = 0; i < ncols; i++) n += cols[i].name_len + 1;
  ev *e = reserve(rs, n);
  if (!e) return sq_err_set(err, SQ_ENOMEM, "out of memory (recording the result columns)");
  e->kind = EV_COLUMNS;
  e->set = set;
  e->ncols = ncols;
  e->parent = -1;
  sq_column *c = (sq_column *)(void *)((unsigned char *)e + EV_HEAD);
  char *bytes = (char *)(c + ncols);
  for (int i = 0; i < ncols; i++) {
    c[i] = cols[i];
    if (cols[i].name_len) memcpy(bytes, cols[i].name, cols[i].name_len);
    bytes[cols[i].name_len] = '\0';
    c[i].name = bytes;
    bytes += cols[i].name_len + 1;
  }
  return 0;
}

static int rec_row(void *ud, int set, int64_t parent, int ncols, const sq_value *vals, sq_err *err) {
  sq_rowset *rs = ud;
  size_t n = EV_HEAD + sizeof(sq_value) * (size_t)ncols;
  for (int i = 0; i < ncols; i++)
    if (vals[i].type == SQ_VTEXT || vals[i].type == SQ_VBLOB) n += vals[i].u.s.n + 1;
  ev *e = reserve(rs, n);
  if (!e) return sq_err_set(err, SQ_ENOMEM, "out of memory (recording a result row)");
  e->kind = EV_ROW;
  e->set = set;
  e->ncols = ncols;
  e->parent = parent;
  sq_value *v = (sq_value *)(void *)((unsigned char *)e + EV_HEAD);
  char *bytes = (char *)(v + ncols);
  for (int i = 0; i < ncols; i++) {
    v[i] = vals[i];
    if (vals[i].type == SQ_VTEXT || vals[i].type == SQ_VBLOB) {
      if (vals[i].u.s.n) memcpy(bytes, vals[i].u.s.p, vals[i].u.s.n);
      bytes[vals[i].u.s.n] = '\0';
      v[i].u.s.p = bytes;
      bytes += vals[i].u.s.n + 1;
    }
  }
  rs->rows++;
  return 0;
}

void sq_rowset_sink(sq_rowset *rs, sq_oper_sink *out) {
  memset(out, 0, sizeof *out);
  out->ud = rs;
  out->columns = rec_columns;
  out->row = rec_row;
}

int sq_rowset_replay(const sq_rowset *rs, const sq_oper_sink *sink, sq_err *err) {
  if (!rs || !sink) return SQ_OK;
  for (const chunk *c = rs->head; c; c = c->next) {
    size_t off = 0;
    while (off < c->used) {
      const ev *e = (const ev *)(const void *)(c->data + off);
      const unsigned char *body = (const unsigned char *)e + EV_HEAD;
      int rc = 0;
      if (e->kind == EV_COLUMNS) {
        if (sink->columns) rc = sink->columns(sink->ud, e->set, e->ncols, (const sq_column *)(const void *)body, err);
      } else if (sink->row) {
        rc = sink->row(sink->ud, e->set, e->parent, e->ncols, (const sq_value *)(const void *)body, err);
      }
      if (rc) {
        if (err->kind == SQ_OK) sq_err_set(err, SQ_EUSAGE, "row callback stopped");
        return err->kind;
      }
      off += e->size;
    }
  }
  return SQ_OK;
}
