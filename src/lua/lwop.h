/*
 * lwop.h - shared by the write paths (lwrite.c, lsave.c, lbulk.c,
 * lsync.c): each builds one write or schema operation (sq_oper, see
 * sqorm.h "Write and schema operations") in its holder, with every value
 * it sends converted into the op's arena before any user Lua runs
 * (validators, the logging function), runs it through lsq_op_run and
 * builds its Lua results in a continuation (lop.c's contract).
 */
#ifndef LWOP_H
#define LWOP_H

#include "lop.h"

#include <string.h>

/* A query builder over the op's arena (as lfind.c's). */
#define WOP_QB(b, sc, err, h, mod, name)                 \
  sq_err err;                                            \
  sq_err_clear(&err);                                    \
  lsq_scratch sc;                                        \
  memset(&sc, 0, sizeof sc);                             \
  sc.arena = sq_oper_arena((h)->op);                     \
  lsq_qb b = {L, mod, &sc, &err, name, 0, NULL}

/* A copy of the text of now (lsq_now) in the op's arena (NULL: out of
 * memory), so the op owns it. */
static inline char *lsq_op_now(lsq_op *h, const char *now) {
  size_t n = strlen(now);
  char *t = sq_arena_alloc(sq_oper_arena(h->op), n + 1);
  if (t) memcpy(t, now, n + 1);
  return t;
}

/* The context of a write's continuation, in the op's arena (valid until
 * the holder is done). */
static inline void *lsq_op_ctx(lsq_op *h, size_t size) { return sq_arena_alloc(sq_oper_arena(h->op), size); }

/* Raises out of memory after making the holder idle. */
static inline int lsq_op_nomem(lua_State *L, lsq_op *h) {
  sq_err e;
  sq_err_clear(&e);
  sq_err_set(&e, SQ_ENOMEM, "out of memory");
  return lsq_op_fail(L, h, &e);
}

/* Raises the error object on the stack top after making the holder idle
 * (a validation error). */
static inline int lsq_op_throw(lua_State *L, lsq_op *h) {
  lsq_op_done(L, h);
  return lua_error(L);
}

#endif
