/*
 * lroute.h - read replicas in the binding: which pool an operation runs
 * on (lroute.c). Included by lop.h.
 *
 * A db connected with `replication = { write, read = {...}, sticky,
 * fallback, backoff }` holds an sq_replset (src/core/replset.c); db->pool
 * is then its primary's pool (a reference of the db's own), so every
 * path that knows nothing of replicas runs on the primary.
 *
 * The route of an op is a hint its builder sets after lsq_op_begin
 * (which resets it to LSQ_ROUTE_PRIMARY):
 *   LSQ_ROUTE_PRIMARY  the default: the primary; an op of a write kind
 *                      (RAW, COMMIT and the later write kinds) that
 *                      succeeds is a write of the running coroutine
 *                      (read-your-writes, `sticky`).
 *   LSQ_ROUTE_READ     a read: a replica in round robin, unless the
 *                      running coroutine wrote less than `sticky` seconds
 *                      ago (then the primary), or none is healthy
 *                      (the primary with fallback, else kind connection).
 *   LSQ_ROUTE_NOWRITE  the primary, and never counts as a write (a read
 *                      with use_primary or a lock, a read-only tx's end).
 * The hint matters only for an op whose target lsq_op_run picks (no
 * target set by the builder, no transaction open in the coroutine).
 *
 * lsq_op_run calls lsq_route_target instead of targeting db->pool, before
 * the op runs (so in async mode the route is chosen before the op is
 * submitted), and lsq_route_after once the op has completed, on the Lua
 * thread: when it returns 1 the op was retargeted (its replica was
 * unreachable before any row arrived: marked failed, skipped for a
 * while) and must run (be submitted) again.
 */
#ifndef LROUTE_H
#define LROUTE_H

#include "lmodel.h"

enum { LSQ_ROUTE_PRIMARY = 0, LSQ_ROUTE_READ = 1, LSQ_ROUTE_NOWRITE = 2 };

struct lsq_op;

/* The replication state of a db (db->route; NULL without replication). */
typedef struct lsq_route {
  sq_replset *rs;
  double sticky;    /* seconds; 0: off */
  double main_last; /* the main thread's last write (sq_replset_now), 0: none */
} lsq_route;

/* connect: 1 when the options table at opts has `replication`. */
int lsq_route_wanted(lua_State *L, int opts);
/* connect with replication: the url (a string at urlidx, 0: none) and the
 * options table at opts; opens the set and fills db->route, db->pool,
 * db->dialect. Does not raise (except memory errors). */
int lsq_route_connect(lua_State *L, lsq_db *db, int urlidx, int opts, sq_err *err);
/* close: drops the set (db->pool is closed by the caller). */
void lsq_route_close(lsq_db *db);
/* db:pool_stats() with replication. */
int lsq_route_pool_stats(lua_State *L, lsq_db *db);

/* Targets the op of h at the pool its route says (hd: the holder).
 * SQ_ECONNECTION when no replica is available and fallback is off. */
int lsq_route_target(lua_State *L, struct lsq_op *h, const sq_holder *hd, sq_err *err);
/* After the op of h completed (see above). */
int lsq_route_after(lua_State *L, struct lsq_op *h);
/* The running coroutine wrote on the db at dbidx now (no-op without
 * replication or sticky). */
void lsq_route_wrote(lua_State *L, int dbidx);
/* When the running coroutine last wrote on the db at dbidx
 * (sq_replset_now's clock), 0: never, or no replication or sticky. A
 * transaction's COMMIT counts as a write only when its coroutine wrote
 * since BEGIN (ltx.c). */
double lsq_route_last_write(lua_State *L, int dbidx);

/* Sets the hint of a read: LSQ_ROUTE_READ, or LSQ_ROUTE_NOWRITE when it
 * must see the primary (use_primary, a lock). */
#define LSQ_ROUTE_READ_OR_PRIMARY(primary) ((primary) ? LSQ_ROUTE_NOWRITE : LSQ_ROUTE_READ)

/* connect options applied to a config (ldb.c): every key of the table at
 * idx as sqorm.connect reads it. */
int lsq_conn_options(lua_State *L, int idx, sq_config *cfg, sq_err *err);

#endif
