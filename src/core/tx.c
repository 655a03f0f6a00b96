/*
 * tx.c - transactions and streaming cursors: one object owns a
 * transaction's connection, its savepoints and the cursors opened on it
 * (the contract is in sqorm.h, "Transactions and cursors").
 *
 * Why one owner: a cursor, a savepoint and the statements of a
 * transaction all share one connection, and each of them used to hold a
 * plain pointer to it. When the transaction ended, the connection went
 * back to the pool (and could be closed and freed there) while a cursor
 * or a savepoint still pointed at it. Here only the sq_tx holds the
 * connection; a cursor opened on it is on the transaction's list and is
 * closed before the transaction ends, and a savepoint is an id on the
 * transaction's stack, checked on every use.
 *
 * Finalisers: a garbage collector may run a finaliser in the middle of
 * any other statement - on the same connection, for a savepoint or a
 * cursor of the transaction that is running it. So the *_abandon and
 * *_forget calls do no I/O at all: an abandoned cursor is left on its
 * transaction's list for the next call on the transaction to close; an
 * abandoned transaction (or pooled cursor) gives its connection back with
 * sq_pool_release_later, and the pool rolls it back before lending it.
 */
#include "internal.h"

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct sp_entry {
  unsigned id;
  int forgotten; /* its owner dropped it unfinished: part of its parent now */
} sp_entry;

struct sq_tx {
  atomic_int refs;
  int state;            /* SQ_TX_* */
  sq_pool *pool;        /* a reference, while conn is held */
  sq_conn *conn;        /* NULL once it holds no connection */
  int pins;             /* sq_tx_conn uses not yet done */
  int release_pending;  /* failed while pinned: release when the last pin goes */
  int abandon_pending;  /* abandoned while pinned: abandon when the last pin goes */
  unsigned next_sp;     /* savepoint ids: 1, 2, ... never reused */
  sp_entry *sps;        /* the savepoint stack, innermost last */
  int nsp, capsp;
  sq_cursor *cursors;   /* cursors on conn: open, or abandoned by their owner */
  int nabandoned;       /* abandoned cursors on the list */
  sq_err fail;          /* why it failed (state SQ_TX_FAILED) */
};

struct sq_cursor {
  sq_tx *tx;              /* a reference (dropped when abandoned); NULL for a pooled cursor */
  struct sq_cursor *prev, *next; /* tx->cursors */
  int linked;
  int depth;              /* savepoints open when it was opened */
  sq_pool *pool;          /* pooled: a reference while conn is held */
  sq_conn *conn;
  const sq_driver *drv;
  sq_dcursor *dc;
  int in_call;            /* inside a driver call; still set after a longjmp out of the sink */
  int abandoned;          /* its owner is gone: the transaction frees it */
  int closed;
  char why[160];          /* closed by its transaction or savepoint: why */
  /* Cursors opened by an operation (op.c): the driver holds &fwd, which
   * passes rows on to whatever sink the current fetch operation set. */
  sq_row_sink fwd;
  const sq_row_sink *target;
};

/* ------------------------------------------------------------------ */
/* Cursors on the transaction's list                                    */
/* ------------------------------------------------------------------ */

static void link_cursor(sq_tx *tx, sq_cursor *c) {
  c->prev = NULL;
  c->next = tx->cursors;
  if (tx->cursors) tx->cursors->prev = c;
  tx->cursors = c;
  c->linked = 1;
}

static void unlink_cursor(sq_tx *tx, sq_cursor *c) {
  if (!c->linked) return;
  if (c->prev) c->prev->next = c->next;
  else tx->cursors = c->next;
  if (c->next) c->next->prev = c->prev;
  c->prev = c->next = NULL;
  c->linked = 0;
}

/* Closes the driver cursor of c (I/O: unread rows are drained). A
 * cursor left in the middle of a driver call by a longjmp can't be
 * trusted to leave the connection in a known state: it goes. */
static void close_driver_cursor(sq_cursor *c) {
  if (c->in_call && c->conn) sq_conn_mark_dead(c->conn);
  c->in_call = 0;
  if (c->dc) c->drv->cursor_close(c->dc);
  c->dc = NULL;
}

/* Closes (I/O) the cursors of tx opened at a depth above `depth`,
 * saying why; abandoned ones are freed. */
static void close_cursors(sq_tx *tx, int depth, const char *why) {
  sq_cursor *c = tx->cursors;
  while (c) {
    sq_cursor *next = c->next;
    if (c->depth > depth || c->abandoned) {
      close_driver_cursor(c);
      unlink_cursor(tx, c);
      c->conn = NULL;
      if (c->abandoned) {
        tx->nabandoned--;
        free(c);
      } else if (!c->closed) {
        c->closed = 1;
        snprintf(c->why, sizeof c->why, "%s", why);
      }
    }
    c = next;
  }
}

/* Closes (I/O) the cursors abandoned since the last call: the point
 * where the transaction is used next is the first safe one. */
static void close_abandoned(sq_tx *tx) {
  sq_cursor *c = tx->cursors;
  while (c && tx->nabandoned > 0) {
    sq_cursor *next = c->next;
    if (c->abandoned) {
      close_driver_cursor(c);
      unlink_cursor(tx, c);
      tx->nabandoned--;
      free(c);
    }
    c = next;
  }
}

/* ------------------------------------------------------------------ */
/* Ending                                                               */
/* ------------------------------------------------------------------ */

/* Gives the connection back (I/O: the pool resets it) once no statement
 * uses it. */
static void release_conn(sq_tx *tx) {
  if (!tx->conn) return;
  if (tx->pins > 0) {
    tx->release_pending = 1;
    return;
  }
  sq_pool *p = tx->pool;
  sq_conn *c = tx->conn;
  tx->conn = NULL;
  tx->pool = NULL;
  tx->release_pending = 0;
  c->tx = NULL;
  sq_pool_release(p, c);
  sq_pool_close(p);
}

/* The error of a transaction that can't be used: closed when its owner
 * ended it, the error that ended it when it failed. */
static int not_open(const sq_tx *tx, const char *what, sq_err *err) {
  if (tx->state == SQ_TX_FAILED && !strcmp(tx->fail.sqlstate, SQ_SQLSTATE_COMMIT_UNKNOWN)) {
    int rc = sq_err_set(err, tx->fail.kind, "%s has already ended: %s", what, tx->fail.msg);
    sq_err_native(err, tx->fail.code, tx->fail.sqlstate);
    return rc;
  }
  if (tx->state == SQ_TX_FAILED) {
    /* "deadlock" promises the caller the server rolled it back: say so */
    int rc = tx->fail.kind == SQ_EDEADLOCK
                 ? sq_err_set(err, tx->fail.kind,
                              "%s was rolled back by the server (%s); nothing was committed: roll it back and "
                              "retry it (%s)",
                              what, !strcmp(tx->fail.code, "40001") ? "serialization failure" : "deadlock",
                              tx->fail.msg)
                 : sq_err_set(err, tx->fail.kind, "%s was ended by an earlier error; nothing was committed: %s",
                              what, tx->fail.msg);
    sq_err_native(err, tx->fail.code, tx->fail.sqlstate);
    return rc;
  }
  return sq_err_set(err, SQ_ECLOSED, "%s has already ended (committed or rolled back)", what);
}

/* Ends an open transaction because a statement of it failed in a way
 * that ended it on the server (a deadlock) or lost its connection.
 * Rolls back what is left (I/O, at a point where no statement runs on
 * the connection) and gives the connection back. */
static void tx_fail(sq_tx *tx, const sq_err *why) {
  if (tx->state != SQ_TX_OPEN) return;
  tx->state = SQ_TX_FAILED;
  tx->fail = *why;
  if (tx->fail.kind == SQ_OK) sq_err_set(&tx->fail, SQ_ECONNECTION, "the transaction's connection was lost");
  char msg[160];
  snprintf(msg, sizeof msg, "the transaction it was opened in was ended by an error (%s)", sq_kind_name(tx->fail.kind));
  close_cursors(tx, -1, msg);
  tx->nsp = 0;
  if (!sq_conn_is_dead(tx->conn)) {
    sq_err e;
    sq_err_clear(&e);
    if (sq_conn_driver(tx->conn)->rollback(sq_conn_handle(tx->conn), &e)) sq_conn_mark_dead(tx->conn);
  }
  release_conn(tx);
}

/* After a driver call on the transaction's connection failed with rc /
 * err: a deadlock or a lost connection ends the transaction. */
static void note_result(sq_tx *tx, int rc, const sq_err *err) {
  if (tx->state != SQ_TX_OPEN) return;
  if (rc == SQ_EDEADLOCK || sq_conn_is_dead(tx->conn)) {
    sq_err e = *err;
    if (rc == SQ_OK || e.kind == SQ_OK) sq_err_set(&e, SQ_ECONNECTION, "the transaction's connection was lost");
    tx_fail(tx, &e);
  }
}

/* Checks that tx can run a statement now; closes abandoned cursors. */
static int ready(sq_tx *tx, const char *what, sq_err *err) {
  if (tx->state != SQ_TX_OPEN) return not_open(tx, what, err);
  if (sq_conn_is_dead(tx->conn)) {
    sq_err e;
    sq_err_clear(&e);
    sq_err_set(&e, SQ_ECONNECTION, "the transaction's connection was lost");
    tx_fail(tx, &e);
    return not_open(tx, what, err);
  }
  if (tx->nabandoned) close_abandoned(tx);
  return SQ_OK;
}

/* ------------------------------------------------------------------ */
/* Transactions                                                         */
/* ------------------------------------------------------------------ */

int sq_tx_begin(sq_pool *p, const sq_holder *h, int isolation, sq_tx **out, sq_err *err) {
  if (out) *out = NULL;
  if (!p || !out) return sq_err_set(err, SQ_EUSAGE, "sq_tx_begin: bad arguments");
  sq_tx *tx = calloc(1, sizeof *tx);
  if (!tx) return sq_err_set(err, SQ_ENOMEM, "out of memory");
  sq_conn *c;
  int rc = sq_pool_acquire_as(p, -1, h, &c, err);
  if (rc) {
    free(tx);
    return rc;
  }
  rc = sq_conn_driver(c)->begin(sq_conn_handle(c), isolation, err);
  if (rc) {
    if (rc == SQ_ECONNECTION) sq_conn_mark_dead(c);
    sq_pool_release(p, c);
    free(tx);
    return rc;
  }
  sq_pool_retain(p);
  atomic_init(&tx->refs, 1);
  tx->pool = p;
  tx->conn = c;
  c->tx = tx;
  tx->state = SQ_TX_OPEN;
  *out = tx;
  return SQ_OK;
}

const char *sq_tx_begin_sql(int dialect, int isolation) {
  static const char *const pg[] = {"BEGIN", "BEGIN ISOLATION LEVEL READ UNCOMMITTED",
                                    "BEGIN ISOLATION LEVEL READ COMMITTED",
                                    "BEGIN ISOLATION LEVEL REPEATABLE READ",
                                    "BEGIN ISOLATION LEVEL SERIALIZABLE"};
  static const char *const my[] = {"START TRANSACTION",
                                    "SET TRANSACTION ISOLATION LEVEL READ UNCOMMITTED; START TRANSACTION",
                                    "SET TRANSACTION ISOLATION LEVEL READ COMMITTED; START TRANSACTION",
                                    "SET TRANSACTION ISOLATION LEVEL REPEATABLE READ; START TRANSACTION",
                                    "SET TRANSACTION ISOLATION LEVEL SERIALIZABLE; START TRANSACTION"};
  if (isolation < SQ_ISO_DEFAULT || isolation > SQ_ISO_SERIALIZABLE) isolation = SQ_ISO_DEFAULT;
  switch (dialect) {
  case SQ_DIALECT_POSTGRES: return pg[isolation];
  case SQ_DIALECT_MYSQL: return my[isolation];
  default: return isolation == SQ_ISO_SERIALIZABLE ? "BEGIN IMMEDIATE" : "BEGIN";
  }
}

/* Refuses to end a transaction a statement is using right now. */
static int pinned(const sq_tx *tx, int own, const char *verb, sq_err *err) {
  if (tx->pins - own <= 0) return SQ_OK;
  return sq_err_set(err, SQ_EUSAGE,
                    "cannot %s the transaction while one of its statements is running (from a callback "
                    "inside that statement); end it after the statement returns", verb);
}

static int open_savepoints_from(const sq_tx *tx, int from, const char *verb, sq_err *err) {
  int n = 0, dropped = 0;
  for (int i = from; i < tx->nsp; i++) {
    n++;
    dropped += tx->sps[i].forgotten != 0;
  }
  return sq_err_set(err, SQ_EUSAGE,
                    "cannot %s: %d savepoint%s opened inside it (a nested db:begin()) %s still open%s; "
                    "commit or roll back the savepoint first, or roll back the transaction",
                    verb, n, n == 1 ? "" : "s", n == 1 ? "is" : "are",
                    dropped ? (dropped == n ? ", dropped without commit or rollback"
                                            : ", some dropped without commit or rollback")
                            : "");
}

/*
 * A commit (or a savepoint's release) while a savepoint opened inside it
 * is still open is refused: that savepoint's work may be half done (its
 * owner may have caught an error and dropped it), and nothing but its
 * owner can say whether it should be kept. Rolling back is always
 * allowed. Nothing changes; the caller commits or rolls back the inner
 * savepoint first, or rolls the whole transaction back.
 */
static int open_savepoints(const sq_tx *tx, const char *verb, sq_err *err) {
  return open_savepoints_from(tx, 0, verb, err);
}

/*
 * A COMMIT whose connection was lost after it was sent (the link broke
 * while its reply was awaited, or the client gave up waiting) may have
 * been committed by the server or not: nobody on this side can know.
 * That is SQLSTATE 08007, "transaction resolution unknown": the error
 * keeps kind connection (and the driver's code) and says so, so that a
 * caller never takes it for "nothing was committed" and retries a
 * transfer that went through. A driver that refused before sending
 * (08003, "connection does not exist") did send nothing.
 */
static int commit_outcome_unknown(sq_tx *tx, int rc, const sq_err *err) {
  if (!strcmp(err->sqlstate, "08003")) return 0;
  return rc == SQ_ECONNECTION || (rc == SQ_ETIMEOUT && sq_conn_is_dead(tx->conn));
}

static void mark_unknown(sq_err *err) {
  char was[sizeof err->msg - 200];
  size_t n = strnlen(err->msg, sizeof was - 1);
  memcpy(was, err->msg, n);
  was[n] = '\0';
  char code[sizeof err->code];
  snprintf(code, sizeof code, "%s", err->code);
  sq_err_set(err, SQ_ECONNECTION,
             "the connection was lost during COMMIT: whether the transaction was committed is unknown "
             "(check before retrying it): %s", was);
  sq_err_native(err, code, SQ_SQLSTATE_COMMIT_UNKNOWN);
}

/* own: pins held by the caller itself (an operation running the commit
 * on the transaction's connection holds one): they don't count as a
 * statement in progress, and the release waits for their end. */
static int tx_commit(sq_tx *tx, int own, sq_err *err) {
  sq_err_clear(err);
  if (!tx) return sq_err_set(err, SQ_EUSAGE, "sq_tx_commit: bad arguments");
  if (tx->state != SQ_TX_OPEN) return not_open(tx, "the transaction", err);
  if (pinned(tx, own, "commit", err)) return err->kind;
  if (sq_conn_is_dead(tx->conn)) {
    sq_err e;
    sq_err_clear(&e);
    sq_err_set(&e, SQ_ECONNECTION, "the transaction's connection was lost; nothing was committed");
    tx_fail(tx, &e);
    return not_open(tx, "the transaction", err);
  }
  if (tx->nsp > 0) return open_savepoints(tx, "commit the transaction", err);
  close_cursors(tx, -1, "the transaction it was opened in was committed");
  const sq_driver *drv = sq_conn_driver(tx->conn);
  int rc = drv->commit(sq_conn_handle(tx->conn), err);
  if (rc) {
    if (rc == SQ_ECONNECTION) sq_conn_mark_dead(tx->conn);
    if (commit_outcome_unknown(tx, rc, err)) mark_unknown(err);
    sq_err e = *err;
    tx_fail(tx, &e); /* rolls back what is left, gives the connection back */
    return rc;
  }
  tx->state = SQ_TX_DONE;
  release_conn(tx);
  return SQ_OK;
}

int sq_tx_commit(sq_tx *tx, sq_err *err) { return tx_commit(tx, 0, err); }
int sq_tx_commit_pinned(sq_tx *tx, sq_err *err) { return tx_commit(tx, 1, err); }

static int tx_rollback(sq_tx *tx, int own, sq_err *err) {
  sq_err_clear(err);
  if (!tx) return sq_err_set(err, SQ_EUSAGE, "sq_tx_rollback: bad arguments");
  if (tx->state == SQ_TX_FAILED) { /* rolled back already: now the owner knows */
    tx->state = SQ_TX_DONE;
    return SQ_OK;
  }
  if (tx->state != SQ_TX_OPEN) return not_open(tx, "the transaction", err);
  if (pinned(tx, own, "roll back", err)) return err->kind;
  close_cursors(tx, -1, "the transaction it was opened in was rolled back");
  tx->nsp = 0;
  if (!sq_conn_is_dead(tx->conn)) {
    sq_err e;
    sq_err_clear(&e);
    /* A rollback that fails leaves the connection in an unknown state:
     * it is discarded, which ends the transaction on the server too. */
    if (sq_conn_driver(tx->conn)->rollback(sq_conn_handle(tx->conn), &e)) sq_conn_mark_dead(tx->conn);
  }
  tx->state = SQ_TX_DONE;
  release_conn(tx);
  return SQ_OK;
}

int sq_tx_rollback(sq_tx *tx, sq_err *err) { return tx_rollback(tx, 0, err); }
int sq_tx_rollback_pinned(sq_tx *tx, sq_err *err) { return tx_rollback(tx, 1, err); }

sq_tx *sq_tx_adopt(sq_pool *p, sq_conn *c) {
  sq_tx *tx = calloc(1, sizeof *tx);
  if (!tx) return NULL;
  sq_pool_retain(p);
  atomic_init(&tx->refs, 1);
  tx->pool = p;
  tx->conn = c;
  c->tx = tx;
  tx->state = SQ_TX_OPEN;
  return tx;
}

void sq_tx_stopped(sq_tx *tx, const sq_err *why) {
  if (!tx || tx->state != SQ_TX_OPEN) return;
  tx->state = SQ_TX_FAILED;
  tx->fail = *why;
  if (tx->fail.kind == SQ_OK) sq_err_set(&tx->fail, SQ_ECANCELED, "the transaction was stopped and rolled back");
  char msg[160];
  snprintf(msg, sizeof msg, "the transaction it was opened in was ended by an error (%s)", sq_kind_name(tx->fail.kind));
  close_cursors(tx, -1, msg);
  tx->nsp = 0;
  release_conn(tx);
}

void sq_tx_abandon(sq_tx *tx) {
  if (!tx || tx->state != SQ_TX_OPEN) return;
  if (tx->pins > 0) {
    /* A statement is using the connection right now: the last
     * sq_tx_conn_done abandons it. */
    tx->abandon_pending = 1;
    return;
  }
  tx->state = SQ_TX_DONE;
  tx->nsp = 0;
  /* Every driver cursor goes back with the connection: the pool closes
   * it before anything else runs there. Drivers allow one open cursor
   * per connection; a second one (a driver that allowed more) is closed
   * here, the one exception to "no I/O". */
  sq_dcursor *orphan = NULL;
  sq_cursor *c = tx->cursors;
  while (c) {
    sq_cursor *next = c->next;
    if (c->in_call && c->conn) sq_conn_mark_dead(c->conn);
    c->in_call = 0;
    if (c->dc) {
      if (!orphan) orphan = c->dc;
      else c->drv->cursor_close(c->dc);
      c->dc = NULL;
    }
    unlink_cursor(tx, c);
    c->conn = NULL;
    if (c->abandoned) {
      free(c);
    } else {
      c->closed = 1;
      snprintf(c->why, sizeof c->why, "the transaction it was opened in was abandoned (rolled back)");
    }
    c = next;
  }
  tx->nabandoned = 0;
  sq_pool *p = tx->pool;
  sq_conn *conn = tx->conn;
  tx->conn = NULL;
  tx->pool = NULL;
  tx->release_pending = 0;
  if (conn) conn->tx = NULL;
  if (conn) sq_pool_release_later(p, conn, orphan);
  if (p) sq_pool_close(p);
}

int sq_tx_state(const sq_tx *tx) { return tx ? tx->state : SQ_TX_DONE; }

sq_pool *sq_tx_pool(const sq_tx *tx) { return tx && tx->conn ? tx->pool : NULL; }

void sq_tx_retain(sq_tx *tx) {
  if (tx) atomic_fetch_add_explicit(&tx->refs, 1, memory_order_relaxed);
}

void sq_tx_free(sq_tx *tx) {
  if (!tx) return;
  if (atomic_fetch_sub_explicit(&tx->refs, 1, memory_order_acq_rel) != 1) return;
  sq_tx_abandon(tx);
  /* Only abandoned cursors can be left (a live one holds a reference). */
  while (tx->cursors) {
    sq_cursor *c = tx->cursors;
    unlink_cursor(tx, c);
    free(c);
  }
  free(tx->sps);
  free(tx);
}

/* ------------------------------------------------------------------ */
/* Statements                                                           */
/* ------------------------------------------------------------------ */

int sq_tx_conn(sq_tx *tx, sq_conn **out, sq_err *err) {
  if (out) *out = NULL;
  if (!tx || !out) return sq_err_set(err, SQ_EUSAGE, "sq_tx_conn: bad arguments");
  int rc = ready(tx, "the transaction", err);
  if (rc) return rc;
  tx->pins++;
  *out = tx->conn;
  return SQ_OK;
}

void sq_tx_conn_done(sq_tx *tx, const sq_err *result) {
  if (!tx) return;
  if (tx->pins > 0) tx->pins--;
  if (tx->state == SQ_TX_OPEN) {
    sq_err none;
    sq_err_clear(&none);
    if (!result) result = &none;
    note_result(tx, result->kind, result);
  }
  if (tx->pins == 0) {
    if (tx->abandon_pending) {
      tx->abandon_pending = 0;
      sq_tx_abandon(tx);
    }
    if (tx->release_pending) release_conn(tx);
  }
}

int sq_tx_pins(const sq_tx *tx) { return tx ? tx->pins : 0; }

sq_tx *sq_conn_tx(const sq_conn *c) { return c ? c->tx : NULL; }

sq_conn *sq_tx_peek_conn(const sq_tx *tx) { return tx && tx->state == SQ_TX_OPEN ? tx->conn : NULL; }

/* ------------------------------------------------------------------ */
/* Savepoints                                                           */
/* ------------------------------------------------------------------ */

unsigned sq_tx_next_savepoint(const sq_tx *tx) { return tx ? tx->next_sp + 1 : 0; }

void sq_tx_savepoint_name(unsigned id, char *buf, size_t n) { snprintf(buf, n, "sq_sp_%u", id); }

static int find_sp(const sq_tx *tx, unsigned id) {
  for (int i = tx->nsp - 1; i >= 0; i--)
    if (tx->sps[i].id == id) return i;
  return -1;
}

int sq_tx_savepoint(sq_tx *tx, unsigned *id, sq_err *err) {
  sq_err_clear(err);
  if (!tx || !id) return sq_err_set(err, SQ_EUSAGE, "sq_tx_savepoint: bad arguments");
  int rc = ready(tx, "the transaction", err);
  if (rc) return rc;
  if (tx->nsp == tx->capsp) {
    int cap = tx->capsp ? tx->capsp * 2 : 8;
    sp_entry *n = realloc(tx->sps, sizeof *n * (size_t)cap);
    if (!n) return sq_err_set(err, SQ_ENOMEM, "out of memory");
    tx->sps = n;
    tx->capsp = cap;
  }
  unsigned sid = ++tx->next_sp;
  char name[24];
  sq_tx_savepoint_name(sid, name, sizeof name);
  rc = sq_conn_driver(tx->conn)->savepoint(sq_conn_handle(tx->conn), name, err);
  if (rc) {
    if (rc == SQ_ECONNECTION) sq_conn_mark_dead(tx->conn);
    note_result(tx, rc, err);
    return rc;
  }
  tx->sps[tx->nsp].id = sid;
  tx->sps[tx->nsp].forgotten = 0;
  tx->nsp++;
  *id = sid;
  return SQ_OK;
}

/* The common part of release and rollback-to. */
static int end_savepoint(sq_tx *tx, unsigned id, int rollback, int own, sq_err *err) {
  sq_err_clear(err);
  if (!tx) return sq_err_set(err, SQ_EUSAGE, "sq_tx_savepoint: bad arguments");
  if (tx->state != SQ_TX_OPEN) return not_open(tx, "the transaction this savepoint belongs to", err);
  int k = find_sp(tx, id);
  if (k < 0)
    return sq_err_set(err, SQ_ECLOSED,
                      "the savepoint has already ended (released or rolled back, by itself or with an "
                      "enclosing savepoint)");
  if (pinned(tx, own, rollback ? "roll back a savepoint of" : "release a savepoint of", err)) return err->kind;
  int rc = ready(tx, "the transaction this savepoint belongs to", err);
  if (rc) return rc;
  if (!rollback && k < tx->nsp - 1) return open_savepoints_from(tx, k + 1, "release the savepoint", err);
  close_cursors(tx, k, rollback ? "the savepoint it was opened in was rolled back"
                                : "the savepoint it was opened in was released");
  tx->nsp = k; /* it and every savepoint above it end here */
  char name[24];
  sq_tx_savepoint_name(id, name, sizeof name);
  const sq_driver *drv = sq_conn_driver(tx->conn);
  sq_dconn *h = sq_conn_handle(tx->conn);
  if (rollback) {
    rc = drv->rollback_to(h, name, err);
    if (!rc) rc = drv->release(h, name, err);
  } else {
    rc = drv->release(h, name, err);
  }
  if (rc) {
    if (rc == SQ_ECONNECTION) sq_conn_mark_dead(tx->conn);
    note_result(tx, rc, err);
  }
  return rc;
}

int sq_tx_savepoint_release(sq_tx *tx, unsigned id, sq_err *err) { return end_savepoint(tx, id, 0, 0, err); }

int sq_tx_savepoint_rollback(sq_tx *tx, unsigned id, sq_err *err) { return end_savepoint(tx, id, 1, 0, err); }

int sq_tx_savepoint_end_pinned(sq_tx *tx, unsigned id, int rollback, sq_err *err) {
  return end_savepoint(tx, id, rollback, 1, err);
}

void sq_tx_savepoint_forget(sq_tx *tx, unsigned id) {
  if (!tx) return;
  int k = find_sp(tx, id);
  if (k >= 0) tx->sps[k].forgotten = 1;
}

int sq_tx_savepoint_is_open(const sq_tx *tx, unsigned id) {
  if (!tx || tx->state != SQ_TX_OPEN) return 0;
  int k = find_sp(tx, id);
  return k >= 0 && !tx->sps[k].forgotten;
}

/* ------------------------------------------------------------------ */
/* Cursors                                                              */
/* ------------------------------------------------------------------ */

int sq_cursor_open(sq_pool *p, const sq_holder *h, sq_tx *tx, const char *sql, size_t len,
                   const sq_value *params, int nparams, const sq_row_sink *sink, sq_cursor **out,
                   sq_err *err) {
  sq_err_clear(err);
  if (out) *out = NULL;
  if (!out || !sql || (!p && !tx)) return sq_err_set(err, SQ_EUSAGE, "sq_cursor_open: bad arguments");
  sq_cursor *c = calloc(1, sizeof *c);
  if (!c) return sq_err_set(err, SQ_ENOMEM, "out of memory");
  c->closed = 1; /* until it holds a statement */
  *out = c;
  int rc;
  if (tx) {
    sq_tx_retain(tx);
    c->tx = tx;
    rc = ready(tx, "the transaction", err);
    if (rc) return rc;
    c->conn = tx->conn;
    c->depth = tx->nsp;
    link_cursor(tx, c);
  } else {
    rc = sq_pool_acquire_as(p, -1, h, &c->conn, err);
    if (rc) return rc;
    sq_pool_retain(p);
    c->pool = p;
  }
  c->drv = sq_conn_driver(c->conn);
  c->closed = 0;
  if (sq_conn_is_dead(c->conn)) {
    rc = sq_err_set(err, SQ_ECONNECTION, "connection is dead (lost or closed by the server)");
  } else {
    c->in_call = 1;
    rc = c->drv->cursor_open(sq_conn_handle(c->conn), sql, len, params, nparams, sink, &c->dc, err);
    c->in_call = 0;
    if (rc) {
      c->dc = NULL;
      if (rc == SQ_ECONNECTION || (c->drv->is_dead && c->drv->is_dead(sq_conn_handle(c->conn))))
        sq_conn_mark_dead(c->conn);
    }
  }
  if (rc) {
    sq_err e = *err;
    sq_cursor_close(c);
    if (tx) note_result(tx, rc, &e);
    *err = e;
  }
  return rc;
}

/* A fetch of c failed with rc: a dead connection is marked so, and the
 * transaction notes the failure (which may close c with it). */
static void fetch_failed(sq_cursor *c, int rc, sq_err *err) {
  if (rc == SQ_ECONNECTION || (c->drv->is_dead && c->drv->is_dead(sq_conn_handle(c->conn))))
    sq_conn_mark_dead(c->conn);
  if (c->tx) {
    sq_err e = *err;
    note_result(c->tx, rc, &e);
    *err = e;
  }
}

int sq_cursor_fetch(sq_cursor *c, int *has_row, sq_err *err) {
  *has_row = 0;
  sq_err_clear(err);
  if (!c) return sq_err_set(err, SQ_EUSAGE, "sq_cursor_fetch: bad arguments");
  if (c->closed || !c->dc) {
    if (c->why[0]) return sq_err_set(err, SQ_ECLOSED, "the cursor was closed: %s", c->why);
    return sq_err_set(err, SQ_ECLOSED, "the cursor is closed");
  }
  c->in_call = 1;
  int rc = c->drv->cursor_fetch(c->dc, has_row, err);
  c->in_call = 0;
  if (rc) {
    *has_row = 0;
    fetch_failed(c, rc, err);
  }
  return rc;
}

int sq_cursor_fetch_n(sq_cursor *c, int max, int *got, int *eof, sq_err *err) {
  *got = 0;
  *eof = 0;
  sq_err_clear(err);
  int rc = SQ_OK, has = 1;
  if (!c) return sq_err_set(err, SQ_EUSAGE, "sq_cursor_fetch: bad arguments");
  c->in_call = 1;
  while (*got < max) {
    if (c->closed || !c->dc) {
      c->in_call = 0;
      if (c->why[0]) return sq_err_set(err, SQ_ECLOSED, "the cursor was closed: %s", c->why);
      return sq_err_set(err, SQ_ECLOSED, "the cursor is closed");
    }
    has = 0;
    rc = c->drv->cursor_fetch(c->dc, &has, err);
    if (rc || !has) break;
    (*got)++;
  }
  c->in_call = 0;
  if (rc) {
    fetch_failed(c, rc, err);
    return rc;
  }
  if (!has) *eof = 1;
  return SQ_OK;
}

int sq_cursor_is_open(const sq_cursor *c) { return c && !c->closed && c->dc; }

const char *sq_cursor_closed_reason(const sq_cursor *c) { return c && c->closed && c->why[0] ? c->why : NULL; }

void sq_cursor_fail(sq_cursor *c) {
  if (!c) return;
  if (c->conn) sq_conn_mark_dead(c->conn);
  sq_cursor_close(c);
}

void sq_cursor_close(sq_cursor *c) {
  if (!c) return;
  if (c->dc || c->in_call) close_driver_cursor(c);
  if (c->tx) unlink_cursor(c->tx, c);
  if (c->pool) {
    sq_pool *p = c->pool;
    sq_conn *conn = c->conn;
    c->pool = NULL;
    c->conn = NULL;
    if (conn) sq_pool_release(p, conn);
    sq_pool_close(p);
  }
  c->conn = NULL;
  c->closed = 1;
}

void sq_cursor_abandon(sq_cursor *c) {
  if (!c) return;
  if (c->tx) {
    sq_tx *tx = c->tx;
    c->tx = NULL;
    if (c->linked && (c->dc || c->in_call)) {
      /* Still open on the transaction's connection, which may be in the
       * middle of another statement right now: the transaction closes
       * it at its next use. */
      c->abandoned = 1;
      tx->nabandoned++;
    } else {
      unlink_cursor(tx, c);
      free(c);
    }
    sq_tx_free(tx); /* may end the transaction, which then frees c */
    return;
  }
  if (c->pool) {
    if (c->in_call && c->conn) sq_conn_mark_dead(c->conn);
    sq_pool *p = c->pool;
    if (c->conn) sq_pool_release_later(p, c->conn, c->dc);
    sq_pool_close(p);
  }
  free(c);
}

void sq_cursor_free(sq_cursor *c) {
  if (!c) return;
  sq_cursor_close(c);
  sq_tx *tx = c->tx;
  free(c);
  sq_tx_free(tx);
}

/* ------------------------------------------------------------------ */
/* Cursors opened by operations (op.c)                                  */
/* ------------------------------------------------------------------ */

static int fwd_columns(void *ud, int ncols, const sq_column *cols, sq_err *err) {
  sq_cursor *c = ud;
  if (!c->target || !c->target->columns) return 0;
  return c->target->columns(c->target->ud, ncols, cols, err);
}

static int fwd_row(void *ud, int ncols, const sq_value *vals, sq_err *err) {
  sq_cursor *c = ud;
  if (!c->target || !c->target->row) return 0;
  return c->target->row(c->target->ud, ncols, vals, err);
}

sq_cursor *sq_cursor_prepare(void) {
  sq_cursor *c = calloc(1, sizeof *c);
  if (!c) return NULL;
  c->closed = 1; /* until it holds a statement */
  c->fwd.ud = c;
  c->fwd.columns = fwd_columns;
  c->fwd.row = fwd_row;
  return c;
}

const sq_row_sink *sq_cursor_fwd_sink(sq_cursor *c) { return &c->fwd; }

void sq_cursor_set_target(sq_cursor *c, const sq_row_sink *sink) {
  if (c) c->target = sink;
}

void sq_cursor_attach(sq_cursor *c, sq_pool *p, sq_conn *conn, sq_tx *tx, sq_dcursor *dc) {
  if (tx) {
    sq_tx_retain(tx);
    c->tx = tx;
    c->conn = tx->conn;
    c->depth = tx->nsp;
    link_cursor(tx, c);
  } else {
    sq_pool_retain(p);
    c->pool = p;
    c->conn = conn;
  }
  c->drv = sq_conn_driver(c->conn);
  c->dc = dc;
  c->closed = 0;
}

sq_conn *sq_cursor_conn(const sq_cursor *c) { return c ? c->conn : NULL; }

sq_tx *sq_cursor_tx(const sq_cursor *c) { return c ? c->tx : NULL; }

void sq_cursor_close_stmt(sq_cursor *c) {
  if (c && (c->dc || c->in_call)) close_driver_cursor(c);
}
