/*
 * lop.h - operations in the binding: the holder of an sq_oper, the sinks
 * that build Lua values from its rows, and lsq_op_run, the one choke
 * point every database-touching binding function runs its operation
 * through (its contract is at the top of lop.c).
 */
#ifndef LOP_H
#define LOP_H

#include "lmodel.h"
#include "lroute.h"

#define LSQ_OPH_MT "sqorm.Operation"

/* User values of a holder: what must survive between the protected calls
 * of one operation (and, in async mode, across its yield). */
enum {
  OUV_OUT = 1, /* the result being built: the row list, the one row, the value */
  OUV_ERR,     /* a Lua error that escaped the sink (re-raised by lsq_op_raise) */
  OUV_AUX,     /* names of result columns that are no model column (extras), for a sink
                * whose rows come in other frames than their columns (a cursor) */
  OUV_MAP,     /* a column map too big for the sink's own */
  OUV_INC,     /* the include sink's state table (linclude.c) */
  OUV_ANCHOR,  /* async, while in flight: the frame of the call (lasync.c); empty otherwise */
  OUV_COUNT = OUV_ANCHOR
};

/* The sink of a holder. */
enum { LSINK_NONE = 0, LSINK_ROWS, LSINK_MODEL, LSINK_SCALAR, LSINK_INCLUDE /* linclude.c */ };

/* lsq_op.lflags */
enum {
  LOP_NOLOG = 1,       /* lsq_op_run logs nothing: the caller does (transactions) */
  LOP_NOLOG_AFTER = 2  /* lsq_op_run writes "Executing" lines only */
};

/*
 * A holder: a userdata (sqorm.Operation) owning one sq_oper, freed by its
 * __gc, so a raise anywhere never leaks an operation. Idle holders are
 * reused (lsq_op_get, from a free list that lsq_op_done refills): a
 * reused op keeps its arena block and allocates nothing once warm. The sink state lives here too: C memory that
 * survives until the operation's continuation has built its results.
 */
typedef struct lsq_op {
  sq_oper *op;
  int busy;          /* in use by a call */
  int shared;        /* made by lsq_op_get beside the cached one: goes back to the free list when done */
  int pooled;        /* on the free list now */
  lua_State *L;      /* the thread whose stack the sink uses now */
  int hidx;          /* the holder's index in the frame the sink runs in now */
  int base;          /* the holder's index in the frame of the function that runs the op */
  int dbidx;         /* the db, in that frame */
  int midx;          /* the model of a model sink (or of a model's op), in that frame; 0: none */
  lsq_db *db;
  lua_KFunction k;   /* the continuation */
  lua_KContext kctx;
  unsigned lflags;   /* LOP_* */
  int nlogged;       /* log records announced before the run (later ones: the run's own) */
  int raised;        /* a Lua error escaped the sink: OUV_ERR holds it */
  int sink;          /* LSINK_* */
  char what[96];     /* what a pooled connection is held for (sq_holder.what), or "" */
  /* replication (lroute.h): the route hint (LSQ_ROUTE_*, set after
   * lsq_op_begin), the replica the op was sent to (-1: none) and how many
   * replicas it was sent to again */
  int route, rindex, rtries;
  int async;         /* LOP_ASYNC_*: where its async run is (lasync.c) */
  int atop;          /* the stack top when it was suspended */
  int nanchor;       /* slots filled in its OUV_ANCHOR table (lasync.c) */
  struct lsq_op *aprev, *anext; /* the state's in-flight list (lasync.c) */
  lsq_rows rows;     /* LSINK_ROWS */
  lsq_isink isink;   /* LSINK_MODEL */
  struct lsq_incsink *inc; /* LSINK_INCLUDE (in the op's arena) */
  struct {
    int fn;          /* sq_fn */
    const sq_col *col;
    int got;
  } scalar;          /* LSINK_SCALAR */
} lsq_op;

/* lsq_op.async */
enum {
  LOP_ASYNC_NONE = 0, /* not submitted (or done and resumed) */
  LOP_ASYNC_FLIGHT,   /* submitted: its completion has not been popped */
  LOP_ASYNC_DONE      /* completed and popped: its coroutine may go on */
};

/* Pushes an idle holder, busy from now until lsq_op_done; h->base is
 * its index: keep it there until the op's continuation is done. */
lsq_op *lsq_op_get(lua_State *L);
/* The same for an op on the db at dbidx (cheaper: see lop.c). */
lsq_op *lsq_op_get_db(lua_State *L, int dbidx);
/* Pushes a holder of its own (never shared: a cursor keeps one). */
lsq_op *lsq_op_new(lua_State *L);
/* The holder at idx, with h->base set to idx (absolute). */
lsq_op *lsq_op_at(lua_State *L, int idx);
/* Starts an operation of kind on the holder; returns the op to build. The
 * holder's sink stays as it was until a lsq_op_sink_* call. */
sq_oper *lsq_op_begin(lsq_op *h, int kind);
/* Sinks. rows: plain tables keyed by column name, into a list (db:query).
 * model: the model at midx (which stays there until the continuation is
 * done) builds what mode says (SINK_LIST, SINK_ONE;
 * the flags of the returned isink - raw, bare, identity, across - may be
 * set after). scalar: the value of an aggregate (fn) over col. keep: use
 * the holder's sink as it is for the next op (a cursor's fetches). */
void lsq_op_sink_rows(lua_State *L, lsq_op *h);
lsq_isink *lsq_op_sink_model(lua_State *L, lsq_op *h, int midx, int mode);
void lsq_op_sink_scalar(lua_State *L, lsq_op *h, int fn, const sq_col *col);
void lsq_op_sink_keep(lua_State *L, lsq_op *h);
/* Pushes (in the current frame) what the holder's sink needs, and points
 * the sink at it; the protected calls and replays do this first. midx:
 * the model's index in this frame (0 when the sink needs none). */
void lsq_op_sink_enter(lua_State *L, lsq_op *h, int midx);
/* The sq_oper_sink of the holder (lsink.c), and giving it to the op with
 * the protect hook (lop.c). */
void lsq_op_sink_of(lsq_op *h, sq_oper_sink *s);
void lsq_op_attach_sink(lsq_op *h);

/* Runs the op of h (at h->base) for the db at dbidx (see lop.c) and
 * returns k(L, LUA_OK, ctx)'s results. */
int lsq_op_run(lua_State *L, int dbidx, lsq_op *h, lua_KFunction k, lua_KContext ctx);
/* In a continuation, with the holder h (passed as its context, or found
 * at its index):
 * lsq_op_failed: 1 when the op failed.
 * lsq_op_raise: raises the op's error (the Lua error its sink raised, as
 * it was), the holder made idle first.
 * lsq_op_push_out: pushes the holder's OUV_OUT value; returns its type.
 * lsq_op_done: the holder is idle again (its user values cleared). */
static inline int lsq_op_failed(const lsq_op *h) { return sq_oper_rc(h->op) != SQ_OK; }
int lsq_op_raise(lua_State *L, lsq_op *h);
int lsq_op_push_out(lua_State *L, lsq_op *h);
void lsq_op_done(lua_State *L, lsq_op *h);
/* The holder at hidx (in the running frame) of an op that was orphaned
 * (sq_oper_orphan: its coroutine died while it ran) is idle again - the
 * cached one or a shared one; a cursor's own holder stays as it is. */
void lsq_op_orphaned(lua_State *L, lsq_op *h, int hidx);
/* Raises err (a build error, before lsq_op_run), the holder made idle
 * first. */
int lsq_op_fail(lua_State *L, lsq_op *h, const sq_err *err);
void lsq_op_open(lua_State *L);

/* Pushes the "Executing" / "Executed" line of an op's log record i to the
 * db's logging function (no raise protection). */
void lsq_op_log(lua_State *L, int dbidx, const sq_oper *op, int i, int executed);

/* lasync.c: async mode (see its top). lsq_async_run submits the op of h
 * (built, prepared and targeted) to the pool's workers and suspends the
 * running coroutine; k (op_k) continues once the completion was popped.
 * Returns -1 without suspending when the op completed at once (call k
 * directly). lsq_async_drain: cancels every op this state has in flight
 * and waits for them (no Lua runs): finalisers call it before they free
 * what an op may be using. */
int lsq_async_run(lua_State *L, lsq_op *h);
/* The continuation after an op completed (lop.c). */
int lsq_op_k(lua_State *L, int status, lua_KContext ctx);
void lsq_async_drain(lua_State *L);
void lsq_async_open(lua_State *L, int modidx);

#endif
