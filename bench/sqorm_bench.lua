-- sqorm_bench.lua: the sqorm client of the benchmark - the same workloads
-- as raw_bench.c and luasql_bench.lua, written the way sqorm users write
-- them: a Player model, create / bulk_create / find_by_pk / find_all /
-- save / db:transaction / each.
--
--   lua5.4 bench/sqorm_bench.lua <sqlite|mysql|postgres> <workload|all>
--
-- The C module is loaded from the build tree next to this directory
-- (../build, or $SQORM_BUILD); lua/sqorm/*.lua from ../lua or the build
-- tree. The table is created with the same DDL as the other clients
-- (benchlib's CREATE_SQL) and seeded server-side the same way; the model
-- maps onto it. Besides the instance figures, scan also runs with
-- raw = true and reports it as the client "sqorm_raw".

local here = arg[0]:match("^(.*)/[^/]*$") or "."
local build = os.getenv("SQORM_BUILD") or (here .. "/../build")
package.path = here .. "/?.lua;" .. build .. "/share/?.lua;" .. build .. "/share/?/init.lua;" ..
  here .. "/../lua/?.lua;" .. here .. "/../lua/?/init.lua;" .. package.path
package.cpath = build .. "/lib/?.so;" .. package.cpath

local B = require "benchlib"
local sqorm = require "sqorm"
local T, op = sqorm.types, sqorm.op

local fmt = string.format

-- Connection ------------------------------------------------------------

local function open(dialect)
  local ctx = { dialect = dialect }
  if dialect == "sqlite" then
    ctx.path = B.sqlite_tempfile("sqorm_bench")
    -- One connection, kept open, so the PRAGMAs below stay in force.
    ctx.db = sqorm.connect{ dialect = "sqlite", storage = ctx.path, logging = false,
                            pool = { max = 1, min = 1, idle_timeout = 86400 } }
    ctx.db:exec("PRAGMA journal_mode=WAL")
    ctx.db:exec("PRAGMA synchronous=NORMAL")
  else
    local s = B.server(dialect)
    ctx.db = sqorm.connect{ dialect = dialect, host = s.host, port = s.port, user = s.user,
                            password = s.password, database = s.database, ssl = { mode = "disable" },
                            logging = false, pool = { max = 1, min = 1, idle_timeout = 86400 } }
  end
  ctx.db:authenticate()
  ctx.Player = ctx.db:define("player", {
    { "id", T.INTEGER, primary_key = true, auto_increment = true },
    { "name", T.STRING(32), unique = true },
    { "coins", T.INTEGER },
    { "goods", T.INTEGER },
  }, { table_name = "players", timestamps = true })
  return ctx
end

local function close(ctx)
  ctx.db:exec("DROP TABLE IF EXISTS players")
  ctx.db:close()
  if ctx.path then B.remove_sqlite(ctx.path) end
end

-- Helpers ---------------------------------------------------------------

local function reset_table(ctx, seed_rows)
  local db = ctx.db
  db:exec("DROP TABLE IF EXISTS players")
  db:exec(B.CREATE_SQL[ctx.dialect])
  if seed_rows > 0 then
    db:exec(B.seed_sql(ctx.dialect, seed_rows))
    if B.AFTER_SEED[ctx.dialect] then db:exec(B.AFTER_SEED[ctx.dialect]) end
    local got = ctx.Player:count()
    assert(got == seed_rows, fmt("seeded %d rows, wanted %d", got, seed_rows))
  end
end

local function expect_count(ctx, want)
  local got = ctx.Player:count()
  assert(got == want, fmt("table has %d rows, expected %d", got, want))
end

-- Workloads -------------------------------------------------------------

local W = {}

function W.insert_single(ctx)
  local Player = ctx.Player
  reset_table(ctx, 0)
  local n = B.scaled(B.N_INSERT_SINGLE)
  B.clock_start()
  for i = 0, n - 1 do
    -- timestamps = true fills created_at / updated_at per row
    local p = Player:create{ name = "single_" .. i, coins = i % 1000, goods = i % 100 }
    if not p.id then error("insert did not insert") end
  end
  B.clock_stop()
  expect_count(ctx, n)
  return n
end

-- bulk_insert: the instances (client "sqorm"), then, in a process of its
-- own (this script again, with SQORM_BENCH_BULK=noret, whose RESULT and
-- CPU lines are passed on), returning = false (client "sqorm_noret": the
-- count, no instances). Each is thus the first timed run of a fresh
-- process and a fresh server session, as raw_c's is: on PostgreSQL a
-- session's first executions of the 1,000-row statement are planned one
-- by one (custom plans, 4x the time of later ones), so a variant run
-- second in a process would be measured warm. SQORM_BENCH_BULK=instances
-- runs only the first part (what bench/callgrind.sh measures by default).
local BULK = os.getenv("SQORM_BENCH_BULK")

local function bulk_rows(done, k)
  local rows = {}
  for j = 1, k do
    local i = done + j - 1
    rows[j] = { name = "bulk_" .. i, coins = i % 1000, goods = i % 100 }
  end
  return rows
end

function W.bulk_insert(ctx)
  local Player = ctx.Player
  reset_table(ctx, 0)
  local n = B.scaled(B.N_BULK)
  local batch = math.min(B.BULK_BATCH, n)
  if BULK == "noret" then
    local noret = { returning = false }
    B.clock_start()
    local done = 0
    while done < n do
      local k = math.min(batch, n - done)
      local rows = bulk_rows(done, k)
      if Player:bulk_create(rows, noret) ~= k then error("bulk insert (returning = false): short insert") end
      done = done + k
    end
    B.clock_stop()
    expect_count(ctx, n)
    return n
  end
  B.clock_start()
  local done = 0
  while done < n do
    local k = math.min(batch, n - done)
    local rows = bulk_rows(done, k)
    local got = Player:bulk_create(rows)
    if #got ~= k then error("bulk insert: short insert") end
    done = done + k
  end
  B.clock_stop()
  expect_count(ctx, n)
  if BULK ~= "instances" then
    -- the returning = false run, in its own process (it inherits the CPU pin)
    local interp = -1
    while arg[interp - 1] do interp = interp - 1 end -- the interpreter, before its options
    local cmd = ("SQORM_BENCH_BULK=noret %q %q %s bulk_insert"):format(arg[interp] or "lua5.4", arg[0], ctx.dialect)
    local f = assert(io.popen(cmd, "r"))
    local out = f:read("a")
    local ok = f:close()
    if not ok or not out:find("^RESULT ") then error("bulk insert (returning = false) process failed") end
    io.write(out)
  end
  return n
end

function W.pk_lookup(ctx)
  local Player = ctx.Player
  local seed = B.scaled(B.SEED_ROWS)
  reset_table(ctx, seed)
  local n = B.scaled(B.N_PK_LOOKUP)
  local random = math.random
  math.randomseed(42)
  local sink = 0
  B.clock_start()
  for _ = 1, n do
    local p = Player:find_by_pk(random(seed))
    if not p then error("pk lookup missed") end
    sink = sink + p.coins
  end
  B.clock_stop()
  return n
end

-- scan: instances (client "sqorm"), and raw = true ("sqorm_raw", printed
-- here with the same RESULT format).
function W.scan(ctx)
  local Player = ctx.Player
  local seed = B.scaled(B.SEED_ROWS)
  reset_table(ctx, seed)
  local want = B.scan_expected(seed)
  local where = { coins = op.gt(B.SCAN_THRESHOLD) }

  local total = 0
  local t0 = B.clock()
  for _ = 1, B.SCAN_REPEAT do
    local list = Player:find_all{ where = where, raw = true }
    if #list ~= want then error(fmt("raw scan returned %d rows, expected %d", #list, want)) end
    total = total + #list
  end
  local secs = B.clock() - t0
  io.write(("RESULT %s %s %s %d %.6f %.1f %d\n"):format("scan", ctx.dialect, "sqorm_raw", total, secs,
    secs > 0 and total / secs or 0, B.peak_rss_kib()))
  io.stdout:flush()
  collectgarbage()

  total = 0
  B.clock_start()
  for _ = 1, B.SCAN_REPEAT do
    local list = Player:find_all{ where = where }
    if #list ~= want then error(fmt("scan returned %d rows, expected %d", #list, want)) end
    total = total + #list
  end
  B.clock_stop()
  return total
end

function W.update(ctx)
  local Player = ctx.Player
  local seed = B.scaled(B.SEED_ROWS)
  reset_table(ctx, seed)
  local before = Player:sum("coins")
  local n = B.scaled(B.N_UPDATE)
  local random = math.random
  math.randomseed(42)
  B.clock_start()
  for _ = 1, n do
    local p = Player:find_by_pk(random(seed))
    if not p then error("update: row missing") end
    p.coins = p.coins + 1
    p:save() -- UPDATE coins, updated_at WHERE id = ?
  end
  B.clock_stop()
  -- every save changed exactly one row by one coin
  local after = Player:sum("coins")
  assert(after - before == n, fmt("update: coins moved by %d, expected %d", after - before, n))
  return n
end

function W.txn_transfer(ctx)
  local Player, db = ctx.Player, ctx.db
  local seed = math.max(2, B.scaled(B.SEED_ROWS))
  reset_table(ctx, seed)
  local before = Player:sum("coins")
  local n = B.scaled(B.N_TRANSFER)
  local random = math.random
  math.randomseed(42)
  local lock = ctx.dialect ~= "sqlite" and "update" or nil
  B.clock_start()
  for _ = 1, n do
    local from, to = random(seed), nil
    repeat to = random(seed) until to ~= from
    local amount = random(10)
    db:transaction(function()
      local pair = Player:find_all{ where = { id = { from, to } }, lock = lock }
      local a, b = pair[1], pair[2]
      if not (a and b) then error("transfer: rows missing") end
      if a.id ~= from then a, b = b, a end
      a.coins, b.coins = a.coins - amount, b.coins + amount
      a:save()
      b:save()
    end)
  end
  B.clock_stop()
  -- Transfers conserve coins: every transaction committed whole.
  assert(Player:sum("coins") == before, "transfer: total coins changed")
  return n
end

function W.stream(ctx)
  local Player = ctx.Player
  local n = B.scaled(B.N_STREAM)
  reset_table(ctx, n)
  local sink, rows = 0, 0
  B.clock_start()
  for p in Player:each() do
    rows = rows + 1
    sink = sink + p.coins
  end
  B.clock_stop()
  if rows ~= n then error(fmt("stream read %d rows, expected %d", rows, n)) end
  return rows
end

B.main(BULK == "noret" and "sqorm_noret" or "sqorm", W, open, close)
