-- lua_floor_bench.lua: the Lua floor of the benchmark -- the same workloads
-- and the same prepared statements as raw_bench.c, run through lua_floor.so
-- (lua_floor.c), which builds the Lua tables sqorm builds and nothing else.
--
--   lua5.4 bench/lua_floor_bench.lua <sqlite|mysql|postgres> <workload|all>
--
-- lua_floor.so is loaded from bench/build (run.sh builds it there) or
-- $LUA_FLOOR_BUILD. Rows come back as instances (array part in column
-- order, one shared metatable whose C __index maps names to slots, so the
-- loops below read p.coins exactly as sqorm_bench.lua does); scan also runs
-- with hash-keyed raw rows and reports them as the client "lua_floor_raw"
-- (sqorm's raw = true). Writes bind Lua values and return the affected row
-- count: for writes and round trips the floor is raw_c.

local here = arg[0]:match("^(.*)/[^/]*$") or "."
local build = os.getenv("LUA_FLOOR_BUILD") or (here .. "/build")
package.path = here .. "/?.lua;" .. package.path
package.cpath = build .. "/?.so;" .. package.cpath

local B = require "benchlib"
local F = require "lua_floor"

local fmt = string.format

-- The instance shape: the columns of SEL_COLS, in order.
local COLS = { "id", "name", "coins", "goods", "created_at", "updated_at" }
local MT = F.metatable(COLS)

-- Timestamps formatted once a second, as sqorm does (lsq_now).
local last_sec, last_ts = -1, nil
local os_time, os_date = os.time, os.date
local function now()
  local t = os_time()
  if t ~= last_sec then
    last_sec, last_ts = t, os_date("!%Y-%m-%d %H:%M:%S", t)
  end
  return last_ts
end

-- Connection ------------------------------------------------------------

local function open(dialect)
  local ctx = { dialect = dialect }
  if dialect == "sqlite" then
    ctx.path = B.sqlite_tempfile("lua_floor_bench")
    ctx.conn = F.open_sqlite(ctx.path)
    ctx.conn:exec("PRAGMA journal_mode=WAL")
    ctx.conn:exec("PRAGMA synchronous=NORMAL")
  else
    local s = B.server(dialect)
    local opener = dialect == "mysql" and F.open_mysql or F.open_postgres
    ctx.conn = opener(s.host, s.port, s.user, s.password, s.database)
  end
  return ctx
end

local function close(ctx)
  ctx.conn:exec("DROP TABLE IF EXISTS players")
  ctx.conn:close()
  if ctx.path then B.remove_sqlite(ctx.path) end
end

-- Helpers ---------------------------------------------------------------

local function reset_table(ctx, seed_rows)
  local conn = ctx.conn
  conn:exec("DROP TABLE IF EXISTS players")
  conn:exec(B.CREATE_SQL[ctx.dialect])
  if seed_rows > 0 then
    conn:exec(B.seed_sql(ctx.dialect, seed_rows))
    if B.AFTER_SEED[ctx.dialect] then conn:exec(B.AFTER_SEED[ctx.dialect]) end
    local got = conn:scalar("SELECT COUNT(*) FROM players")
    assert(got == seed_rows, fmt("seeded %d rows, wanted %d", got, seed_rows))
  end
end

local function expect_count(conn, want)
  local got = conn:scalar("SELECT COUNT(*) FROM players")
  assert(got == want, fmt("table has %d rows, expected %d", got, want))
end

local INSERT = "INSERT INTO players (" .. B.INS_COLS .. ") VALUES "
local SELECT_BY_ID = "SELECT " .. B.SEL_COLS .. " FROM players WHERE id = ?"
local UPDATE_BY_ID = "UPDATE players SET coins = ?, updated_at = ? WHERE id = ?"

local function multi_insert_sql(rows)
  local t = {}
  for i = 1, rows do t[i] = "(?, ?, ?, ?, ?)" end
  return INSERT .. table.concat(t, ", ")
end

-- Workloads -------------------------------------------------------------

local W = {}

function W.insert_single(ctx)
  local conn = ctx.conn
  reset_table(ctx, 0)
  local ins = conn:prepare(INSERT .. "(?, ?, ?, ?, ?)")
  local n = B.scaled(B.N_INSERT_SINGLE)
  B.clock_start()
  for i = 0, n - 1 do
    local ts = now()
    if ins:exec("single_" .. i, i % 1000, i % 100, ts, ts) ~= 1 then
      error("insert did not insert")
    end
  end
  B.clock_stop()
  ins:close()
  expect_count(conn, n)
  return n
end

function W.bulk_insert(ctx)
  local conn = ctx.conn
  reset_table(ctx, 0)
  local n = B.scaled(B.N_BULK)
  local batch = math.min(B.BULK_BATCH, n)
  local full = conn:prepare(multi_insert_sql(batch))
  local tail = n % batch ~= 0 and conn:prepare(multi_insert_sql(n % batch)) or nil
  local args = {}
  B.clock_start()
  local done = 0
  while done < n do
    local k = math.min(batch, n - done)
    local ts = now()
    for j = 0, k - 1 do
      local i, o = done + j, 5 * j
      args[o + 1], args[o + 2], args[o + 3], args[o + 4], args[o + 5] =
        "bulk_" .. i, i % 1000, i % 100, ts, ts
    end
    if (k == batch and full or tail):exec_array(args, 5 * k) ~= k then
      error("bulk insert: short insert")
    end
    done = done + k
  end
  B.clock_stop()
  full:close()
  if tail then tail:close() end
  expect_count(conn, n)
  return n
end

function W.pk_lookup(ctx)
  local conn = ctx.conn
  local seed = B.scaled(B.SEED_ROWS)
  reset_table(ctx, seed)
  local sel = conn:prepare(SELECT_BY_ID, MT)
  local n = B.scaled(B.N_PK_LOOKUP)
  local random = math.random
  math.randomseed(42)
  local sink = 0
  B.clock_start()
  for _ = 1, n do
    local p = sel:one(random(seed))
    if not p then error("pk lookup missed") end
    sink = sink + p.coins
  end
  B.clock_stop()
  sel:close()
  return n
end

-- scan: instances (client "lua_floor") and raw rows ("lua_floor_raw",
-- printed here in the same RESULT format), raw first as in sqorm_bench.
function W.scan(ctx)
  local conn = ctx.conn
  local seed = B.scaled(B.SEED_ROWS)
  reset_table(ctx, seed)
  local want = B.scan_expected(seed)
  local sel = conn:prepare("SELECT " .. B.SEL_COLS .. " FROM players WHERE coins > ?", MT)

  local total = 0
  local t0 = B.clock()
  for _ = 1, B.SCAN_REPEAT do
    local list = sel:list_raw(B.SCAN_THRESHOLD)
    if #list ~= want then error(fmt("raw scan returned %d rows, expected %d", #list, want)) end
    total = total + #list
  end
  local secs = B.clock() - t0
  io.write(("RESULT %s %s %s %d %.6f %.1f %d\n"):format("scan", ctx.dialect, "lua_floor_raw",
    total, secs, secs > 0 and total / secs or 0, B.peak_rss_kib()))
  io.stdout:flush()
  collectgarbage()

  total = 0
  B.clock_start()
  for _ = 1, B.SCAN_REPEAT do
    local list = sel:list(B.SCAN_THRESHOLD)
    if #list ~= want then error(fmt("scan returned %d rows, expected %d", #list, want)) end
    total = total + #list
  end
  B.clock_stop()
  sel:close()
  return total
end

function W.update(ctx)
  local conn = ctx.conn
  local seed = B.scaled(B.SEED_ROWS)
  reset_table(ctx, seed)
  local before = conn:scalar("SELECT SUM(coins) FROM players")
  local sel = conn:prepare(SELECT_BY_ID, MT)
  local upd = conn:prepare(UPDATE_BY_ID)
  local n = B.scaled(B.N_UPDATE)
  local random = math.random
  math.randomseed(42)
  B.clock_start()
  for _ = 1, n do
    local p = sel:one(random(seed))
    if not p then error("update: row missing") end
    if upd:exec(p.coins + 1, now(), p.id) ~= 1 then error("update: no row updated") end
  end
  B.clock_stop()
  sel:close()
  upd:close()
  local after = conn:scalar("SELECT SUM(coins) FROM players")
  assert(after - before == n, fmt("update: coins moved by %d, expected %d", after - before, n))
  return n
end

function W.txn_transfer(ctx)
  local conn = ctx.conn
  local seed = math.max(2, B.scaled(B.SEED_ROWS))
  reset_table(ctx, seed)
  local before = conn:scalar("SELECT SUM(coins) FROM players")
  local begin = B.BEGIN_SQL[ctx.dialect]
  local sel = conn:prepare("SELECT " .. B.SEL_COLS .. " FROM players WHERE id IN (?, ?)" ..
    B.LOCK_CLAUSE[ctx.dialect], MT)
  local upd = conn:prepare(UPDATE_BY_ID)
  local n = B.scaled(B.N_TRANSFER)
  local random = math.random
  math.randomseed(42)
  B.clock_start()
  for _ = 1, n do
    local from, to = random(seed), nil
    repeat to = random(seed) until to ~= from
    local amount = random(10)
    conn:exec(begin)
    local pair = sel:list(from, to)
    local a, b = pair[1], pair[2]
    if not (a and b) then error("transfer: rows missing") end
    if a.id ~= from then a, b = b, a end
    local ts = now()
    if upd:exec(a.coins - amount, ts, a.id) ~= 1 or upd:exec(b.coins + amount, ts, b.id) ~= 1 then
      error("transfer: update missed")
    end
    conn:exec("COMMIT")
  end
  B.clock_stop()
  sel:close()
  upd:close()
  -- Transfers conserve coins: every transaction committed whole.
  assert(conn:scalar("SELECT SUM(coins) FROM players") == before, "transfer: total coins changed")
  return n
end

function W.stream(ctx)
  local conn = ctx.conn
  local n = B.scaled(B.N_STREAM)
  reset_table(ctx, n)
  local sel = conn:prepare("SELECT " .. B.SEL_COLS .. " FROM players", MT)
  local sink, rows = 0, 0
  B.clock_start()
  for p in sel:each() do
    rows = rows + 1
    sink = sink + p.coins
  end
  B.clock_stop()
  sel:close()
  if rows ~= n then error(fmt("stream read %d rows, expected %d", rows, n)) end
  return rows
end

B.main("lua_floor", W, open, close)
