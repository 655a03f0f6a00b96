"""bench.py: the SQLAlchemy peer of sqorm's benchmark, as ORM and as Core.

The same seven workloads as raw_bench.c, luasql_bench.lua and
sqorm_bench.lua, written the way SQLAlchemy 1.4's documentation writes them
(2.0 style, future=True): the ORM with a declarative Player class, a Session,
session.add / add_all / get / scalars(select(...)) / commit / begin; Core with
a Connection, insert() / select() / update() statements built once with
bound parameters, and commit-as-you-go.

    /usr/bin/python3 bench/peers/sqlalchemy/bench.py <orm|core> <sqlite|mysql|postgres> <workload|all>

Debian's python3-sqlalchemy (1.4, with its C extensions from
python3-sqlalchemy-ext), python3-pymysql and python3-psycopg2. Counts, DDL
and seed SQL come from bench/benchspec.lua (benchlib). Prints
    RESULT <workload> <db> sqlalchemy_<orm|core> <ops> <seconds> <ops_per_sec> <peak_rss_kib>
Exit status 3 means "this peer can't run here" (a package is missing):
run.sh reports it and goes on.

Choices (bench/README.md has them too):
- The library's defaults: transactional Sessions and Connections (a write
  is committed by commit(); psycopg2 sends BEGIN before the first
  statement, PyMySQL starts the transaction implicitly), the compiled
  statement cache, psycopg2's execute_values batching for executemany,
  PyMySQL's multi-row executemany, the ORM's unit of work (which on MySQL
  without RETURNING inserts the rows of add_all one by one to learn their
  ids: SQLAlchemy 1.4's behaviour).
- One Session (ORM) or one Connection (Core) per workload, as a script or
  a game loop keeps one; scan drops each list before the next repeat, so
  the identity map never hands back objects of the previous repeat.
- SQLite: QueuePool instead of 1.4's NullPool for file databases (which
  reopens the file for every transaction; 2.0 made QueuePool the default),
  and PRAGMA synchronous=NORMAL on connect, the setting every client uses.
  For txn_transfer the documented recipe for real SQLite transactions
  (isolation_level=None on connect, BEGIN IMMEDIATE on begin), since
  pysqlite would otherwise run the SELECT outside the transaction.
- stream: yield_per=1000 (server-side cursor on PostgreSQL, unbuffered
  cursor on MySQL), the documented way to read a large result.
"""

import datetime
import gc
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

WORKLOADS = ["insert_single", "bulk_insert", "pk_lookup", "scan", "update",
             "txn_transfer", "stream"]
HERE = os.path.dirname(os.path.abspath(__file__))
BENCH = os.path.dirname(os.path.dirname(HERE))


def usage():
    sys.stderr.write("usage: bench.py <orm|core> <sqlite|mysql|postgres> <workload|all>\n")
    sys.exit(2)


if len(sys.argv) != 4 or sys.argv[1] not in ("orm", "core") or \
        sys.argv[2] not in ("sqlite", "mysql", "postgres"):
    usage()
MODE, DIALECT, WHICH = sys.argv[1:]
CLIENT = "sqlalchemy_" + MODE
SELECTED = [w for w in WORKLOADS if WHICH in ("all", w)]
if not SELECTED:
    usage()


def unavailable(msg):
    sys.stderr.write("%s: unavailable: %s\n" % (CLIENT, msg))
    sys.exit(3)


try:
    import sqlalchemy
    from sqlalchemy import (Column, DateTime, Integer, String, bindparam, create_engine,
                            event, insert, select, text, update, func)
    from sqlalchemy.orm import Session, declarative_base
    from sqlalchemy.pool import QueuePool
    if DIALECT == "mysql":
        import pymysql  # noqa: F401
    elif DIALECT == "postgres":
        import psycopg2  # noqa: F401
except ImportError as e:
    unavailable("%s (Debian: apt-get install python3-sqlalchemy python3-sqlalchemy-ext "
                "python3-pymysql python3-psycopg2)" % e)
if not sqlalchemy.__version__.startswith("1.4"):
    unavailable("SQLAlchemy %s found, the benchmark is written for 1.4" % sqlalchemy.__version__)

S = json.loads(subprocess.check_output(["lua5.4", os.path.join(BENCH, "benchspec.lua"), DIALECT]))

# Clock, memory ---------------------------------------------------------------

t_start = t_stop = 0.0


def clock_start():
    global t_start
    t_start = time.perf_counter()


def clock_stop():
    global t_stop
    t_stop = time.perf_counter()


def peak_rss_kib():
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return -1


def reset_peak_rss():
    gc.collect()
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
    except OSError:
        pass


def check(cond, msg):
    if not cond:
        raise RuntimeError(msg)


# Model -----------------------------------------------------------------------

def utcnow():
    return datetime.datetime.utcnow().replace(microsecond=0)


Base = declarative_base()


class Player(Base):
    __tablename__ = "players"
    id = Column(Integer, primary_key=True, autoincrement=True)
    name = Column(String(32), unique=True)
    coins = Column(Integer)
    goods = Column(Integer)
    created_at = Column(DateTime, default=utcnow)
    updated_at = Column(DateTime, default=utcnow, onupdate=utcnow)


players = Player.__table__

# Connection ------------------------------------------------------------------


class Ctx:
    pass


def make_engine(ctx, immediate=False):
    if DIALECT == "sqlite":
        engine = create_engine("sqlite:///" + ctx.path, future=True, poolclass=QueuePool,
                               pool_size=1)

        @event.listens_for(engine, "connect")
        def on_connect(dbapi_conn, record):
            if immediate:
                dbapi_conn.isolation_level = None  # SQLAlchemy emits BEGIN itself
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.close()

        if immediate:
            @event.listens_for(engine, "begin")
            def on_begin(conn):
                conn.exec_driver_sql("BEGIN IMMEDIATE")
        return engine
    s = S["server"]
    if DIALECT == "mysql":
        url = "mysql+pymysql://%s:%s@%s:%d/%s?charset=utf8mb4"
    else:
        # No TLS, as every client of the benchmark.
        url = "postgresql+psycopg2://%s:%s@%s:%d/%s?sslmode=disable"
    from urllib.parse import quote_plus
    return create_engine(url % (quote_plus(s["user"]), quote_plus(s["password"]), s["host"],
                                s["port"], s["database"]), future=True, pool_size=1)


def open_ctx():
    ctx = Ctx()
    ctx.dir = None
    if DIALECT == "sqlite":
        ctx.dir = tempfile.mkdtemp(prefix="sqlalchemy_bench.", dir=os.environ.get("TMPDIR"))
        ctx.path = os.path.join(ctx.dir, "bench.db")
    ctx.engine = make_engine(ctx)
    with ctx.engine.connect() as conn:
        if DIALECT == "sqlite":
            conn.exec_driver_sql("PRAGMA journal_mode=WAL")
        conn.commit()
    return ctx


def close_ctx(ctx):
    with ctx.engine.begin() as conn:
        conn.exec_driver_sql("DROP TABLE IF EXISTS players")
    ctx.engine.dispose()
    if ctx.dir:
        shutil.rmtree(ctx.dir, ignore_errors=True)


def scalar(ctx, sql):
    with ctx.engine.connect() as conn:
        return int(conn.exec_driver_sql(sql).scalar() or 0)


def driver_exec(conn, sql):
    """Runs SQL as is on the DBAPI cursor: the seed SQL has `%` in it,
    which PyMySQL and psycopg2 would read as a parameter marker."""
    cur = conn.connection.cursor()
    try:
        cur.execute(sql)
    finally:
        cur.close()


def reset_table(ctx, seed_rows, seed_sql=None):
    with ctx.engine.begin() as conn:
        driver_exec(conn, "DROP TABLE IF EXISTS players")
        driver_exec(conn, S["create_sql"])
        if seed_rows > 0:
            driver_exec(conn, seed_sql)
    if seed_rows > 0:
        if S.get("after_seed"):
            # VACUUM can't run inside a transaction block.
            with ctx.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
                conn.exec_driver_sql(S["after_seed"])
        got = scalar(ctx, "SELECT COUNT(*) FROM players")
        check(got == seed_rows, "seeded %d rows, wanted %d" % (got, seed_rows))


def expect_count(ctx, want):
    got = scalar(ctx, "SELECT COUNT(*) FROM players")
    check(got == want, "table has %d rows, expected %d" % (got, want))


def rng(seed):
    import random
    r = random.Random(seed)
    return lambda n: r.randint(1, n)


# ORM workloads ----------------------------------------------------------------

class ORM:
    @staticmethod
    def insert_single(ctx):
        reset_table(ctx, 0)
        n = S["n_insert_single"]
        with Session(ctx.engine, future=True) as session:
            clock_start()
            for i in range(n):
                # default= / onupdate= fill created_at / updated_at
                session.add(Player(name="single_%d" % i, coins=i % 1000, goods=i % 100))
                session.commit()
            clock_stop()
        expect_count(ctx, n)
        return n

    @staticmethod
    def bulk_insert(ctx):
        reset_table(ctx, 0)
        n = S["n_bulk"]
        batch = min(S["bulk_batch"], n)
        with Session(ctx.engine, future=True) as session:
            clock_start()
            done = 0
            while done < n:
                k = min(batch, n - done)
                rows = [Player(name="bulk_%d" % i, coins=i % 1000, goods=i % 100)
                        for i in range(done, done + k)]
                session.add_all(rows)
                session.commit()
                done += k
            clock_stop()
        expect_count(ctx, n)
        return n

    @staticmethod
    def pk_lookup(ctx):
        seed = S["seed_rows"]
        reset_table(ctx, seed, S["seed_sql"])
        n = S["n_pk_lookup"]
        random = rng(42)
        sink = 0
        with Session(ctx.engine, future=True) as session:
            clock_start()
            for _ in range(n):
                p = session.get(Player, random(seed))
                if p is None:
                    raise RuntimeError("pk lookup missed")
                sink += p.coins
            clock_stop()
        return n

    @staticmethod
    def scan(ctx):
        seed = S["seed_rows"]
        reset_table(ctx, seed, S["seed_sql"])
        want = S["scan_expected"]
        stmt = select(Player).where(Player.coins > S["scan_threshold"])
        total = 0
        with Session(ctx.engine, future=True) as session:
            clock_start()
            for _ in range(S["scan_repeat"]):
                lst = session.scalars(stmt).all()
                if len(lst) != want:
                    raise RuntimeError("scan returned %d rows, expected %d" % (len(lst), want))
                total += len(lst)
                lst = None  # next repeat builds its objects anew
            clock_stop()
        return total

    @staticmethod
    def update(ctx):
        seed = S["seed_rows"]
        reset_table(ctx, seed, S["seed_sql"])
        before = scalar(ctx, "SELECT SUM(coins) FROM players")
        n = S["n_update"]
        random = rng(42)
        with Session(ctx.engine, future=True) as session:
            clock_start()
            for _ in range(n):
                p = session.get(Player, random(seed))
                if p is None:
                    raise RuntimeError("update: row missing")
                p.coins = p.coins + 1
                session.commit()  # UPDATE coins, updated_at WHERE id = ?
            clock_stop()
        after = scalar(ctx, "SELECT SUM(coins) FROM players")
        check(after - before == n, "update: coins moved by %d, expected %d" % (after - before, n))
        return n

    @staticmethod
    def txn_transfer(ctx):
        seed = S["seed_rows_transfer"]
        reset_table(ctx, seed, S["seed_sql_transfer"])
        before = scalar(ctx, "SELECT SUM(coins) FROM players")
        engine = txn_engine(ctx)
        n = S["n_transfer"]
        random = rng(42)
        lock = DIALECT != "sqlite"
        with Session(engine, future=True) as session:
            clock_start()
            for _ in range(n):
                frm = random(seed)
                to = random(seed)
                while to == frm:
                    to = random(seed)
                amount = random(10)
                with session.begin():
                    stmt = select(Player).where(Player.id.in_([frm, to]))
                    if lock:
                        stmt = stmt.with_for_update()
                    pair = session.scalars(stmt).all()
                    if len(pair) != 2:
                        raise RuntimeError("transfer: rows missing")
                    a, b = pair
                    if a.id != frm:
                        a, b = b, a
                    a.coins = a.coins - amount
                    b.coins = b.coins + amount
            clock_stop()
        txn_engine_done(ctx, engine)
        check(scalar(ctx, "SELECT SUM(coins) FROM players") == before,
              "transfer: total coins changed")
        return n

    @staticmethod
    def stream(ctx):
        n = S["n_stream"]
        reset_table(ctx, n, S["seed_sql_stream"])
        sink = rows = 0
        stmt = select(Player).execution_options(yield_per=1000)
        with Session(ctx.engine, future=True) as session:
            clock_start()
            for p in session.scalars(stmt):
                rows += 1
                sink += p.coins
            clock_stop()
        check(rows == n, "stream read %d rows, expected %d" % (rows, n))
        return rows


def txn_engine(ctx):
    """The engine for txn_transfer: on SQLite, one whose transactions are
    real (BEGIN IMMEDIATE); elsewhere the usual one."""
    if DIALECT != "sqlite":
        return ctx.engine
    ctx.engine.dispose()
    return make_engine(ctx, immediate=True)


def txn_engine_done(ctx, engine):
    if engine is not ctx.engine:
        engine.dispose()


# Core workloads ---------------------------------------------------------------

SEL_BY_ID = select(players).where(players.c.id == bindparam("pk"))
UPD_BY_ID = update(players).where(players.c.id == bindparam("pk"))


class Core:
    @staticmethod
    def insert_single(ctx):
        reset_table(ctx, 0)
        n = S["n_insert_single"]
        stmt = insert(players)
        with ctx.engine.connect() as conn:
            clock_start()
            for i in range(n):
                res = conn.execute(stmt, {"name": "single_%d" % i, "coins": i % 1000,
                                          "goods": i % 100})
                conn.commit()
                if not res.inserted_primary_key[0]:
                    raise RuntimeError("insert did not insert")
            clock_stop()
        expect_count(ctx, n)
        return n

    @staticmethod
    def bulk_insert(ctx):
        reset_table(ctx, 0)
        n = S["n_bulk"]
        batch = min(S["bulk_batch"], n)
        stmt = insert(players)
        with ctx.engine.connect() as conn:
            clock_start()
            done = 0
            while done < n:
                k = min(batch, n - done)
                res = conn.execute(stmt, [{"name": "bulk_%d" % i, "coins": i % 1000,
                                           "goods": i % 100} for i in range(done, done + k)])
                conn.commit()
                if res.rowcount not in (k, -1):
                    raise RuntimeError("bulk insert: short insert (%d)" % res.rowcount)
                done += k
            clock_stop()
        expect_count(ctx, n)
        return n

    @staticmethod
    def pk_lookup(ctx):
        seed = S["seed_rows"]
        reset_table(ctx, seed, S["seed_sql"])
        n = S["n_pk_lookup"]
        random = rng(42)
        sink = 0
        with ctx.engine.connect() as conn:
            clock_start()
            for _ in range(n):
                row = conn.execute(SEL_BY_ID, {"pk": random(seed)}).one_or_none()
                if row is None:
                    raise RuntimeError("pk lookup missed")
                sink += row.coins
            clock_stop()
        return n

    @staticmethod
    def scan(ctx):
        seed = S["seed_rows"]
        reset_table(ctx, seed, S["seed_sql"])
        want = S["scan_expected"]
        stmt = select(players).where(players.c.coins > bindparam("threshold"))
        total = 0
        with ctx.engine.connect() as conn:
            clock_start()
            for _ in range(S["scan_repeat"]):
                lst = conn.execute(stmt, {"threshold": S["scan_threshold"]}).all()
                if len(lst) != want:
                    raise RuntimeError("scan returned %d rows, expected %d" % (len(lst), want))
                total += len(lst)
                lst = None
            clock_stop()
        return total

    @staticmethod
    def update(ctx):
        seed = S["seed_rows"]
        reset_table(ctx, seed, S["seed_sql"])
        before = scalar(ctx, "SELECT SUM(coins) FROM players")
        n = S["n_update"]
        random = rng(42)
        with ctx.engine.connect() as conn:
            clock_start()
            for _ in range(n):
                row = conn.execute(SEL_BY_ID, {"pk": random(seed)}).one_or_none()
                if row is None:
                    raise RuntimeError("update: row missing")
                # onupdate= sets updated_at
                res = conn.execute(UPD_BY_ID, {"pk": row.id, "coins": row.coins + 1})
                conn.commit()
                if res.rowcount != 1:
                    raise RuntimeError("update: no row updated")
            clock_stop()
        after = scalar(ctx, "SELECT SUM(coins) FROM players")
        check(after - before == n, "update: coins moved by %d, expected %d" % (after - before, n))
        return n

    @staticmethod
    def txn_transfer(ctx):
        seed = S["seed_rows_transfer"]
        reset_table(ctx, seed, S["seed_sql_transfer"])
        before = scalar(ctx, "SELECT SUM(coins) FROM players")
        engine = txn_engine(ctx)
        n = S["n_transfer"]
        random = rng(42)
        sel = select(players).where(players.c.id.in_(bindparam("ids", expanding=True)))
        if DIALECT != "sqlite":
            sel = sel.with_for_update()
        with engine.connect() as conn:
            clock_start()
            for _ in range(n):
                frm = random(seed)
                to = random(seed)
                while to == frm:
                    to = random(seed)
                amount = random(10)
                with conn.begin():
                    pair = conn.execute(sel, {"ids": [frm, to]}).all()
                    if len(pair) != 2:
                        raise RuntimeError("transfer: rows missing")
                    a, b = pair
                    if a.id != frm:
                        a, b = b, a
                    ra = conn.execute(UPD_BY_ID, {"pk": a.id, "coins": a.coins - amount})
                    rb = conn.execute(UPD_BY_ID, {"pk": b.id, "coins": b.coins + amount})
                    if ra.rowcount != 1 or rb.rowcount != 1:
                        raise RuntimeError("transfer: update missed")
            clock_stop()
        txn_engine_done(ctx, engine)
        check(scalar(ctx, "SELECT SUM(coins) FROM players") == before,
              "transfer: total coins changed")
        return n

    @staticmethod
    def stream(ctx):
        n = S["n_stream"]
        reset_table(ctx, n, S["seed_sql_stream"])
        sink = rows = 0
        with ctx.engine.connect() as conn:
            clock_start()
            for row in conn.execution_options(yield_per=1000).execute(select(players)):
                rows += 1
                sink += row.coins
            clock_stop()
        check(rows == n, "stream read %d rows, expected %d" % (rows, n))
        return rows


# Main -------------------------------------------------------------------------

def main():
    impl = ORM if MODE == "orm" else Core
    ctx = None
    try:
        ctx = open_ctx()
        for w in SELECTED:
            sys.stderr.write("# %s %s %s (SCALE=%g)\n" % (CLIENT, DIALECT, w, S["scale"]))
            reset_peak_rss()
            ops = getattr(impl, w)(ctx)
            secs = t_stop - t_start
            sys.stdout.write("RESULT %s %s %s %d %.6f %.1f %d\n" % (
                w, DIALECT, CLIENT, ops, secs, ops / secs if secs > 0 else 0, peak_rss_kib()))
            sys.stdout.flush()
        close_ctx(ctx)
    except Exception:
        import traceback
        sys.stderr.write("%s bench failed: %s\n" % (CLIENT, traceback.format_exc()))
        if ctx is not None and ctx.dir:
            shutil.rmtree(ctx.dir, ignore_errors=True)
        sys.exit(1)


main()
