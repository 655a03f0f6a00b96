// bench.js: the Sequelize peer of sqorm's benchmark -- the same seven
// workloads as raw_bench.c, luasql_bench.lua and sqorm_bench.lua, written
// the way Sequelize's documentation writes them: a Player model (define),
// create / bulkCreate / findByPk / findAll / save / sequelize.transaction.
//
//   node --expose-gc bench/peers/sequelize/bench.js <sqlite|mysql|postgres> <workload|all>
//
// Counts, DDL and seed SQL come from bench/benchspec.lua (benchlib), so
// SCALE and BENCH_ROWS mean the same here. Prints the same line as the
// other clients:
//   RESULT <workload> <db> sequelize <ops> <seconds> <ops_per_sec> <peak_rss_kib>
// Exit status 3 means "this peer can't run here" (a driver package is not
// installed): run.sh reports it and goes on.
//
// Choices (bench/README.md has them too):
// - pool max 1, as the other clients hold one connection; the library's
//   defaults otherwise (mysql2 text protocol with client-side escaping,
//   pg's extended protocol without named statements, logging off).
// - stream: Sequelize has no streaming read, so the table is walked with
//   keyset pages of 1,000 rows (findAll where id > last order by id limit
//   1000), the usual Sequelize idiom for big tables; memory stays bounded.
// - warm-up: V8 compiles hot code only after thousands of calls, so each
//   workload first runs once untimed and smaller (up to 1,000 round trips,
//   2,000 bulk rows, one scan, a 20,000-row stream), then measured; Lua
//   and CPython have no JIT to warm. BENCH_WARMUP=0 turns it off.
// - SQLite: Sequelize opens a new sqlite3 connection per transaction and
//   closes it at the end (its own behaviour, kept); each new connection is
//   given PRAGMA synchronous=NORMAL, the setting every other client uses
//   (journal_mode=WAL is stored in the database file).
'use strict';

const fs = require('fs');
const os = require('os');
const path = require('path');
const { execFileSync } = require('child_process');

const CLIENT = 'sequelize';
const benchDir = path.resolve(__dirname, '..', '..');
const WORKLOADS = ['insert_single', 'bulk_insert', 'pk_lookup', 'scan', 'update',
  'txn_transfer', 'stream'];

function usage() {
  process.stderr.write('usage: node bench.js <sqlite|mysql|postgres> <workload|all>\n');
  process.exit(2);
}

function unavailable(msg) {
  process.stderr.write(`${CLIENT}: unavailable: ${msg}\n`);
  process.exit(3);
}

const [dialect, which] = process.argv.slice(2);
if (!['sqlite', 'mysql', 'postgres'].includes(dialect) || !which) usage();
const selected = WORKLOADS.filter((w) => which === 'all' || which === w);
if (!selected.length) usage();

const driverPkg = { sqlite: 'sqlite3', mysql: 'mysql2', postgres: 'pg' }[dialect];
let Sequelize, DataTypes, Op, Transaction;
try {
  ({ Sequelize, DataTypes, Op, Transaction } = require('sequelize'));
  require(driverPkg);
} catch (e) {
  unavailable(`npm package ${e.message.match(/'([^']+)'/)?.[1] || driverPkg} not installed ` +
    `(run: cd bench/peers/sequelize && npm ci): ${e.message.split('\n')[0]}`);
}

const S = JSON.parse(execFileSync('lua5.4', [path.join(benchDir, 'benchspec.lua'), dialect]));

// Clock, memory ----------------------------------------------------------

const now = () => Number(process.hrtime.bigint()) / 1e9;
let tStart = 0;
let tStop = 0;
const clockStart = () => { tStart = now(); };
const clockStop = () => { tStop = now(); };

function peakRssKib() {
  try {
    const m = fs.readFileSync('/proc/self/status', 'utf8').match(/VmHWM:\s*(\d+)/);
    return m ? Number(m[1]) : -1;
  } catch (e) {
    return -1;
  }
}

function resetPeakRss() {
  if (global.gc) global.gc();
  try { fs.writeFileSync('/proc/self/clear_refs', '5'); } catch (e) { /* best effort */ }
}

// Warm-up (see the top): the counts of the untimed first pass.
const WARMUP = process.env.BENCH_WARMUP !== '0';
let warm = false;
const WARM_OPS = 1000;
const WARM_BULK = 2000;
const count = (n, cap = WARM_OPS) => (warm ? Math.min(n, cap) : n);

function check(cond, msg) {
  if (!cond) throw new Error(msg);
}

// Connection --------------------------------------------------------------

async function open() {
  const ctx = { dialect };
  const common = { logging: false, pool: { max: 1, min: 0, idle: 86400000 } };
  if (dialect === 'sqlite') {
    ctx.dir = fs.mkdtempSync(path.join(process.env.TMPDIR || os.tmpdir(), 'sequelize_bench.'));
    ctx.path = path.join(ctx.dir, 'bench.db');
    ctx.sequelize = new Sequelize({ dialect: 'sqlite', storage: ctx.path, ...common });
    // Every connection Sequelize opens (one per transaction, see above)
    // gets the synchronous setting the other clients use.
    const cm = ctx.sequelize.connectionManager;
    const getConnection = cm.getConnection.bind(cm);
    const tuned = new WeakSet();
    cm.getConnection = async (options) => {
      const conn = await getConnection(options);
      if (!tuned.has(conn)) {
        tuned.add(conn);
        await new Promise((resolve, reject) =>
          conn.run('PRAGMA synchronous=NORMAL', (err) => (err ? reject(err) : resolve())));
      }
      return conn;
    };
    await ctx.sequelize.query('PRAGMA journal_mode=WAL');
  } else {
    const s = S.server;
    ctx.sequelize = new Sequelize(s.database, s.user, s.password, {
      host: s.host, port: s.port, dialect,
      // No TLS, as every client of the benchmark (run.sh points all of
      // them at the servers' plain ports).
      dialectOptions: dialect === 'postgres' ? { ssl: false } : {},
      ...common,
    });
  }
  await ctx.sequelize.authenticate();
  ctx.Player = ctx.sequelize.define('player', {
    id: { type: DataTypes.INTEGER, primaryKey: true, autoIncrement: true },
    name: { type: DataTypes.STRING(32), unique: true },
    coins: DataTypes.INTEGER,
    goods: DataTypes.INTEGER,
  }, { tableName: 'players', timestamps: true, createdAt: 'created_at', updatedAt: 'updated_at' });
  return ctx;
}

async function close(ctx) {
  await ctx.sequelize.query('DROP TABLE IF EXISTS players');
  await ctx.sequelize.close();
  if (ctx.dir) fs.rmSync(ctx.dir, { recursive: true, force: true });
}

// Helpers -----------------------------------------------------------------

async function resetTable(ctx, seedRows, seedSql) {
  const q = (sql) => ctx.sequelize.query(sql);
  await q('DROP TABLE IF EXISTS players');
  await q(S.create_sql);
  if (seedRows > 0) {
    await q(seedSql);
    if (S.after_seed) await q(S.after_seed);
    const got = await ctx.Player.count();
    check(got === seedRows, `seeded ${got} rows, wanted ${seedRows}`);
  }
}

async function expectCount(ctx, want) {
  const got = await ctx.Player.count();
  check(got === want, `table has ${got} rows, expected ${want}`);
}

// The same generator as Lua's math.random is not needed: any fixed
// sequence of ids in 1..n will do, and a seeded one repeats run to run.
function rng(seed) {
  let s = seed >>> 0;
  return (n) => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return 1 + (((t ^ (t >>> 14)) >>> 0) % n);
  };
}

// Workloads ---------------------------------------------------------------

const W = {};

W.insert_single = async (ctx) => {
  const { Player } = ctx;
  await resetTable(ctx, 0);
  const n = count(S.n_insert_single);
  clockStart();
  for (let i = 0; i < n; i++) {
    // timestamps: true fills created_at / updated_at
    const p = await Player.create({ name: `single_${i}`, coins: i % 1000, goods: i % 100 });
    if (!p.id) throw new Error('insert did not insert');
  }
  clockStop();
  await expectCount(ctx, n);
  return n;
};

W.bulk_insert = async (ctx) => {
  const { Player } = ctx;
  await resetTable(ctx, 0);
  const n = count(S.n_bulk, WARM_BULK);
  const batch = Math.min(S.bulk_batch, n);
  clockStart();
  for (let done = 0; done < n;) {
    const k = Math.min(batch, n - done);
    const rows = new Array(k);
    for (let j = 0; j < k; j++) {
      const i = done + j;
      rows[j] = { name: `bulk_${i}`, coins: i % 1000, goods: i % 100 };
    }
    const got = await Player.bulkCreate(rows);
    if (got.length !== k) throw new Error('bulk insert: short insert');
    done += k;
  }
  clockStop();
  await expectCount(ctx, n);
  return n;
};

W.pk_lookup = async (ctx) => {
  const { Player } = ctx;
  const seed = S.seed_rows;
  await resetTable(ctx, seed, S.seed_sql);
  const n = count(S.n_pk_lookup);
  const random = rng(42);
  let sink = 0;
  clockStart();
  for (let i = 0; i < n; i++) {
    const p = await Player.findByPk(random(seed));
    if (!p) throw new Error('pk lookup missed');
    sink += p.coins;
  }
  clockStop();
  return n;
};

W.scan = async (ctx) => {
  const { Player } = ctx;
  const seed = S.seed_rows;
  await resetTable(ctx, seed, S.seed_sql);
  const want = S.scan_expected;
  let total = 0;
  clockStart();
  for (let r = 0; r < (warm ? 1 : S.scan_repeat); r++) {
    const list = await Player.findAll({ where: { coins: { [Op.gt]: S.scan_threshold } } });
    if (list.length !== want) throw new Error(`scan returned ${list.length} rows, expected ${want}`);
    total += list.length;
  }
  clockStop();
  return total;
};

W.update = async (ctx) => {
  const { Player } = ctx;
  const seed = S.seed_rows;
  await resetTable(ctx, seed, S.seed_sql);
  const before = Number(await Player.sum('coins'));
  const n = count(S.n_update);
  const random = rng(42);
  clockStart();
  for (let i = 0; i < n; i++) {
    const p = await Player.findByPk(random(seed));
    if (!p) throw new Error('update: row missing');
    p.coins += 1;
    await p.save(); // UPDATE coins, updated_at WHERE id = ?
  }
  clockStop();
  const after = Number(await Player.sum('coins'));
  check(after - before === n, `update: coins moved by ${after - before}, expected ${n}`);
  return n;
};

W.txn_transfer = async (ctx) => {
  const { Player, sequelize } = ctx;
  const seed = S.seed_rows_transfer;
  await resetTable(ctx, seed, S.seed_sql_transfer);
  const before = Number(await Player.sum('coins'));
  const n = count(S.n_transfer);
  const random = rng(42);
  // SQLite: BEGIN IMMEDIATE instead of SELECT ... FOR UPDATE, as the others.
  const txOpts = dialect === 'sqlite' ? { type: Transaction.TYPES.IMMEDIATE } : {};
  clockStart();
  for (let i = 0; i < n; i++) {
    const from = random(seed);
    let to;
    do to = random(seed); while (to === from);
    const amount = random(10);
    await sequelize.transaction(txOpts, async (t) => {
      const pair = await Player.findAll({
        where: { id: [from, to] },
        lock: dialect === 'sqlite' ? undefined : t.LOCK.UPDATE,
        transaction: t,
      });
      let [a, b] = pair;
      if (!(a && b)) throw new Error('transfer: rows missing');
      if (a.id !== from) [a, b] = [b, a];
      a.coins -= amount;
      b.coins += amount;
      await a.save({ transaction: t });
      await b.save({ transaction: t });
    });
  }
  clockStop();
  check(Number(await Player.sum('coins')) === before, 'transfer: total coins changed');
  return n;
};

W.stream = async (ctx) => {
  const { Player } = ctx;
  const n = warm ? S.warm_rows : S.n_stream;
  await resetTable(ctx, n, warm ? S.seed_sql_warm : S.seed_sql_stream);
  let sink = 0;
  let rows = 0;
  let last = 0;
  clockStart();
  for (;;) {
    const page = await Player.findAll({
      where: { id: { [Op.gt]: last } }, order: [['id', 'ASC']], limit: 1000,
    });
    if (page.length === 0) break;
    for (const p of page) {
      rows++;
      sink += p.coins;
    }
    last = page[page.length - 1].id;
  }
  clockStop();
  check(rows === n, `stream read ${rows} rows, expected ${n}`);
  return rows;
};

// Main --------------------------------------------------------------------

(async () => {
  let ctx;
  try {
    ctx = await open();
    for (const w of selected) {
      process.stderr.write(`# ${CLIENT} ${dialect} ${w} (SCALE=${S.scale})\n`);
      if (WARMUP) {
        warm = true;
        await W[w](ctx);
        warm = false;
      }
      resetPeakRss();
      const ops = await W[w](ctx);
      const secs = tStop - tStart;
      process.stdout.write(`RESULT ${w} ${dialect} ${CLIENT} ${ops} ${secs.toFixed(6)} ` +
        `${(secs > 0 ? ops / secs : 0).toFixed(1)} ${peakRssKib()}\n`);
    }
    await close(ctx);
  } catch (e) {
    process.stderr.write(`${CLIENT} bench failed: ${e && e.stack ? e.stack : e}\n`);
    if (ctx && ctx.dir) fs.rmSync(ctx.dir, { recursive: true, force: true });
    process.exit(1);
  }
})();
