-- luasql_bench.lua: the baseline, i.e. the same workloads as raw_bench.c
-- written the way LuaSQL users write them.
--
--   lua5.4 bench/luasql_bench.lua <sqlite|mysql|postgres> <workload|all>
--
-- LuaSQL (Debian's lua-sql-{sqlite3,mysql,postgres}) has no bound
-- parameters, so strings go through conn:escape and numbers through
-- string.format("%d"), and every statement is parsed anew by the server.
-- Rows are fetched with cur:fetch({}, "a") (one new table per row) and the
-- integer columns converted with tonumber, since the MySQL and PostgreSQL
-- drivers hand every value back as a string; that is the work an ORM's
-- typed rows also do.

local here = arg[0]:match("^(.*)/[^/]*$") or "."
package.path = here .. "/?.lua;" .. package.path
local B = require "benchlib"

local fmt = string.format

-- Connection ------------------------------------------------------------

local function open(dialect)
  local ctx = { dialect = dialect }
  if dialect == "sqlite" then
    local env = require("luasql.sqlite3").sqlite3()
    ctx.path = B.sqlite_tempfile("luasql_bench")
    ctx.env, ctx.conn = env, assert(env:connect(ctx.path))
    assert(ctx.conn:execute("PRAGMA journal_mode=WAL"))
    assert(ctx.conn:execute("PRAGMA synchronous=NORMAL"))
  elseif dialect == "mysql" then
    local s = B.server("mysql")
    local env = require("luasql.mysql").mysql()
    ctx.env = env
    ctx.conn = assert(env:connect(s.database, s.user, s.password, s.host,
      s.port))
  else
    local s = B.server("postgres")
    local env = require("luasql.postgres").postgres()
    -- A source name containing '=' is a libpq conninfo string; that is the
    -- one way to ask LuaSQL for sslmode=disable, matching the other clients.
    local function q(v)
      return "'" .. tostring(v):gsub("[\\']", "\\%0") .. "'"
    end
    local conninfo = fmt("host=%s port=%d dbname=%s user=%s password=%s " ..
      "sslmode=disable", q(s.host), s.port, q(s.database), q(s.user),
      q(s.password))
    ctx.env, ctx.conn = env, assert(env:connect(conninfo))
  end
  return ctx
end

local function close(ctx)
  ctx.conn:execute("DROP TABLE IF EXISTS players")
  ctx.conn:close()
  ctx.env:close()
  if ctx.path then B.remove_sqlite(ctx.path) end
end

-- Helpers ---------------------------------------------------------------

-- Runs a statement that returns no rows; raises on failure.
local function exec(conn, sql)
  local res, err = conn:execute(sql)
  if not res then error(err .. "\n  in: " .. sql:sub(1, 200), 2) end
  return res
end

local function scalar(conn, sql)
  local cur = exec(conn, sql)
  local v = cur:fetch()
  cur:close()
  return tonumber(v)
end

-- Materialises the current row as a table with typed integer columns.
local function fetch_row(cur)
  local r = cur:fetch({}, "a")
  if r then
    r.id, r.coins, r.goods = tonumber(r.id), tonumber(r.coins),
      tonumber(r.goods)
  end
  return r
end

local function reset_table(ctx, seed_rows)
  local conn = ctx.conn
  exec(conn, "DROP TABLE IF EXISTS players")
  exec(conn, B.CREATE_SQL[ctx.dialect])
  if seed_rows > 0 then
    exec(conn, B.seed_sql(ctx.dialect, seed_rows))
    if B.AFTER_SEED[ctx.dialect] then exec(conn, B.AFTER_SEED[ctx.dialect]) end
    local got = scalar(conn, "SELECT COUNT(*) FROM players")
    assert(got == seed_rows, fmt("seeded %d rows, wanted %d", got, seed_rows))
  end
end

local function expect_count(conn, want)
  local got = scalar(conn, "SELECT COUNT(*) FROM players")
  assert(got == want, fmt("table has %d rows, expected %d", got, want))
end

local INSERT_HEAD = "INSERT INTO players (" .. B.INS_COLS .. ") VALUES "
local SELECT_BY_ID = "SELECT " .. B.SEL_COLS .. " FROM players WHERE id = %d"
local UPDATE_BY_ID = "UPDATE players SET coins = %d, updated_at = '%s' " ..
  "WHERE id = %d"

-- Workloads -------------------------------------------------------------

local W = {}

function W.insert_single(ctx)
  local conn = ctx.conn
  reset_table(ctx, 0)
  local n = B.scaled(B.N_INSERT_SINGLE)
  local sql = INSERT_HEAD .. "('%s', %d, %d, '%s', '%s')"
  B.clock_start()
  for i = 0, n - 1 do
    local ts = conn:escape(B.timestamp_now())
    local res = exec(conn, fmt(sql, conn:escape("single_" .. i), i % 1000,
      i % 100, ts, ts))
    if res ~= 1 then error("insert did not insert") end
  end
  B.clock_stop()
  expect_count(conn, n)
  return n
end

function W.bulk_insert(ctx)
  local conn = ctx.conn
  reset_table(ctx, 0)
  local n = B.scaled(B.N_BULK)
  local batch = math.min(B.BULK_BATCH, n)
  B.clock_start()
  local done = 0
  while done < n do
    local k = math.min(batch, n - done)
    local ts = conn:escape(B.timestamp_now())
    local tuples = {}
    for j = 1, k do
      local i = done + j - 1
      tuples[j] = fmt("('%s', %d, %d, '%s', '%s')",
        conn:escape("bulk_" .. i), i % 1000, i % 100, ts, ts)
    end
    local res = exec(conn, INSERT_HEAD .. table.concat(tuples, ", "))
    if res ~= k then error("bulk insert: short insert") end
    done = done + k
  end
  B.clock_stop()
  expect_count(conn, n)
  return n
end

function W.pk_lookup(ctx)
  local conn = ctx.conn
  local seed = B.scaled(B.SEED_ROWS)
  reset_table(ctx, seed)
  local n = B.scaled(B.N_PK_LOOKUP)
  local random = math.random
  math.randomseed(42)
  local sink = 0
  B.clock_start()
  for _ = 1, n do
    local cur = exec(conn, fmt(SELECT_BY_ID, random(seed)))
    local r = fetch_row(cur)
    cur:close()
    if not r then error("pk lookup missed") end
    sink = sink + r.coins
  end
  B.clock_stop()
  return n
end

function W.scan(ctx)
  local conn = ctx.conn
  local seed = B.scaled(B.SEED_ROWS)
  reset_table(ctx, seed)
  local want = B.scan_expected(seed)
  local sql = fmt("SELECT %s FROM players WHERE coins > %d", B.SEL_COLS,
    B.SCAN_THRESHOLD)
  local total = 0
  B.clock_start()
  for _ = 1, B.SCAN_REPEAT do
    local cur = exec(conn, sql)
    local list, k = {}, 0
    local r = fetch_row(cur)
    while r do
      k = k + 1
      list[k] = r
      r = fetch_row(cur)
    end
    if k ~= want then
      error(fmt("scan returned %d rows, expected %d", k, want))
    end
    total = total + k
  end
  B.clock_stop()
  return total
end

function W.update(ctx)
  local conn = ctx.conn
  local seed = B.scaled(B.SEED_ROWS)
  reset_table(ctx, seed)
  local n = B.scaled(B.N_UPDATE)
  local random = math.random
  math.randomseed(42)
  B.clock_start()
  for _ = 1, n do
    local cur = exec(conn, fmt(SELECT_BY_ID, random(seed)))
    local r = fetch_row(cur)
    cur:close()
    if not r then error("update: row missing") end
    r.coins = r.coins + 1
    r.updated_at = B.timestamp_now()
    local res = exec(conn, fmt(UPDATE_BY_ID, r.coins, conn:escape(r.updated_at),
      r.id))
    if res ~= 1 then error("update: no row updated") end
  end
  B.clock_stop()
  return n
end

function W.txn_transfer(ctx)
  local conn = ctx.conn
  local seed = math.max(2, B.scaled(B.SEED_ROWS))
  reset_table(ctx, seed)
  local before = scalar(conn, "SELECT SUM(coins) FROM players")
  local begin = B.BEGIN_SQL[ctx.dialect]
  local select_pair = "SELECT " .. B.SEL_COLS ..
    " FROM players WHERE id IN (%d, %d)" .. B.LOCK_CLAUSE[ctx.dialect]
  local n = B.scaled(B.N_TRANSFER)
  local random = math.random
  math.randomseed(42)
  B.clock_start()
  for _ = 1, n do
    local from, to = random(seed), nil
    repeat to = random(seed) until to ~= from
    local amount = random(10)
    exec(conn, begin)
    local cur = exec(conn, fmt(select_pair, from, to))
    local a, b = fetch_row(cur), fetch_row(cur)
    cur:close()
    if not (a and b) then error("transfer: rows missing") end
    if a.id ~= from then a, b = b, a end
    a.coins, b.coins = a.coins - amount, b.coins + amount
    local ts = conn:escape(B.timestamp_now())
    if exec(conn, fmt(UPDATE_BY_ID, a.coins, ts, a.id)) ~= 1 or
       exec(conn, fmt(UPDATE_BY_ID, b.coins, ts, b.id)) ~= 1 then
      error("transfer: update missed")
    end
    exec(conn, "COMMIT")
  end
  B.clock_stop()
  -- Transfers conserve coins: every transaction committed whole.
  assert(scalar(conn, "SELECT SUM(coins) FROM players") == before,
    "transfer: total coins changed")
  return n
end

-- LuaSQL's MySQL and PostgreSQL drivers fetch the whole result into client
-- memory before the first row (mysql_store_result, PQexec); the peak RSS
-- column shows what that costs at a million rows.
function W.stream(ctx)
  local conn = ctx.conn
  local n = B.scaled(B.N_STREAM)
  reset_table(ctx, n)
  local sink, rows = 0, 0
  B.clock_start()
  local cur = exec(conn, "SELECT " .. B.SEL_COLS .. " FROM players")
  local r = fetch_row(cur)
  while r do
    rows = rows + 1
    sink = sink + r.coins
    r = fetch_row(cur)
  end
  B.clock_stop()
  if rows ~= n then error(fmt("stream read %d rows, expected %d", rows, n)) end
  return rows
end

B.main("luasql", W, open, close)
