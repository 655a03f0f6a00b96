-- benchlib.lua: what every Lua benchmark client shares.
--
-- luasql_bench.lua uses it, and sqorm_bench.lua should too, so both clients
-- count, seed, time and report in exactly the same way as raw_bench.c:
-- the same SCALE rule, the same table contents, the same RESULT line.
--
--   local here = arg[0]:match("^(.*)/[^/]*$") or "."
--   package.path = here .. "/?.lua;" .. package.path
--   local B = require "benchlib"
--   B.main("myclient", { insert_single = function(ctx) ... end, ... })
--
-- A workload function does its own setup, brackets the measured part with
-- B.clock_start() / B.clock_stop(), checks its work (error() on a mismatch)
-- and returns the number of operations.

local B = {}

B.WORKLOADS = {
  "insert_single", "bulk_insert", "pk_lookup", "scan", "update",
  "txn_transfer", "stream",
}

B.DIALECTS = { sqlite = true, mysql = true, postgres = true }

-- Counts at SCALE=1; every one goes through B.scaled().
B.N_INSERT_SINGLE = 5000
B.N_BULK = 100000
B.BULK_BATCH = 1000
B.SEED_ROWS = 100000        -- table size for reads and updates
B.N_PK_LOOKUP = 20000
B.SCAN_THRESHOLD = 499      -- coins = i % 1000, so half the rows pass
B.SCAN_REPEAT = 5
B.N_UPDATE = 5000
B.N_TRANSFER = 2000
B.N_STREAM = 1000000

B.INS_COLS = "name, coins, goods, created_at, updated_at"
B.SEL_COLS = "id, name, coins, goods, created_at, updated_at"
B.SEED_TS = "2024-01-01 00:00:00"

-- SCALE is a positive float; a scaled count never drops below one, so a
-- smoke run still exercises every code path.
B.scale = tonumber(os.getenv("SCALE") or "1")
if not B.scale or B.scale <= 0 then
  io.stderr:write("SCALE must be a positive number\n")
  os.exit(2)
end

function B.scaled(n)
  local v = math.floor(n * B.scale + 0.5)
  return v < 1 and 1 or v
end

-- The size sweep (run.sh's ROWS=...): BENCH_ROWS=N sets the rows of
-- bulk_insert, the size of the table the reads use (so scan returns about
-- N / 2 rows per repeat) and the rows streamed to exactly N, whatever SCALE
-- is (run.sh sets SCALE=1 for it). The other counts stay as they are.
B.rows = tonumber(os.getenv("BENCH_ROWS") or "")
if B.rows then
  if B.rows ~= math.floor(B.rows) or B.rows < 1 then
    io.stderr:write("BENCH_ROWS must be a positive row count\n")
    os.exit(2)
  end
  B.rows = math.tointeger(B.rows)
  -- scaled() of these gives N back at SCALE=1; any other SCALE is undone.
  B.N_BULK, B.SEED_ROWS, B.N_STREAM = B.rows / B.scale, B.rows / B.scale, B.rows / B.scale
end

-- Rows of a seeded table that pass the scan filter.
function B.scan_expected(seed_rows)
  local full, part = seed_rows // 1000, seed_rows % 1000
  local extra = part > B.SCAN_THRESHOLD and part - B.SCAN_THRESHOLD or 0
  return full * (999 - B.SCAN_THRESHOLD) + extra
end

-- Wall-clock seconds. Pure Lua has no sub-second wall clock (os.clock is
-- CPU time, which leaves out every wait on the server), so use LuaSocket's
-- gettime (Debian: lua-socket) and fall back to /proc/uptime, whose 10 ms
-- resolution is fine for SCALE=1 runs but coarse for smoke runs.
local ok, socket = pcall(require, "socket")
if ok and socket.gettime then
  B.clock = socket.gettime
  B.clock_source = "socket.gettime"
else
  B.clock = function()
    local f = assert(io.open("/proc/uptime"))
    local up = f:read("n")
    f:close()
    return up
  end
  B.clock_source = "/proc/uptime"
end

-- The measured part's process CPU time (os.clock) is kept too: a
-- "CPU <workload> <db> <client> <ops> <cpu_seconds>" line follows each
-- RESULT line (run.sh reads only RESULT lines; bench/compare.sh reads
-- both: the client's own CPU per op barely moves when a busy machine
-- makes the wall clock useless).
local t_start, t_stop, c_start, c_stop = 0, 0, 0, 0
function B.clock_start()
  c_start = os.clock()
  t_start = B.clock()
end
function B.clock_stop()
  t_stop = B.clock()
  c_stop = os.clock()
end

-- Peak RSS of this process in KiB (VmHWM).
function B.peak_rss_kib()
  local f = io.open("/proc/self/status")
  if not f then return -1 end
  local s = f:read("a")
  f:close()
  return tonumber(s:match("VmHWM:%s*(%d+)")) or -1
end

-- Resets VmHWM so each workload of an `all` run reports its own peak
-- (Linux >= 4.0; best effort). A full GC first drops the previous
-- workload's garbage from the baseline.
function B.reset_peak_rss()
  collectgarbage("collect")
  local f = io.open("/proc/self/clear_refs", "w")
  if f then f:write("5"); f:close() end
end

-- UTC "YYYY-MM-DD HH:MM:SS", computed per row as an ORM would.
function B.timestamp_now()
  return os.date("!%Y-%m-%d %H:%M:%S")
end

-- Connection settings from the same variables as the test suite.
function B.server(dialect)
  local p = dialect == "mysql" and "SQORM_TEST_MYSQL_" or "SQORM_TEST_PG_"
  local function env(k, d)
    local v = os.getenv(p .. k)
    return (v and v ~= "") and v or d
  end
  return {
    host = env("HOST", "127.0.0.1"),
    port = tonumber(env("PORT", dialect == "mysql" and "3306" or "5432")),
    user = env("USER", "sqorm"),
    password = env("PASSWORD", "sqorm_pw"),
    database = env("DB", "sqorm_test"),
  }
end

-- A SQLite database file in a new private directory under $TMPDIR (or
-- /tmp), as raw_bench uses; B.remove_sqlite(path) deletes it afterwards.
function B.sqlite_tempfile(tag)
  local p = io.popen("mktemp -d \"${TMPDIR:-/tmp}/" .. tag .. ".XXXXXX\"")
  local dir = p and p:read("l")
  if p then p:close() end
  if not dir or dir == "" then error("mktemp -d failed") end
  return dir .. "/bench.db"
end

function B.remove_sqlite(path)
  for _, sfx in ipairs{ "", "-wal", "-shm", "-journal" } do
    os.remove(path .. sfx)
  end
  os.remove(path:match("^(.*)/[^/]*$"))  -- the now empty directory
end

-- DDL and seeding SQL, identical to raw_bench.c. The sqorm client may create
-- the table through its own model sync instead, as long as the columns match.
B.CREATE_SQL = {
  sqlite = "CREATE TABLE players (id INTEGER PRIMARY KEY AUTOINCREMENT, " ..
    "name VARCHAR(32) UNIQUE, coins INTEGER, goods INTEGER, " ..
    "created_at DATETIME, updated_at DATETIME)",
  mysql = "CREATE TABLE players (id INT AUTO_INCREMENT PRIMARY KEY, " ..
    "name VARCHAR(32) UNIQUE, coins INT, goods INT, " ..
    "created_at DATETIME, updated_at DATETIME) ENGINE=InnoDB",
  postgres = "CREATE TABLE players (id SERIAL PRIMARY KEY, " ..
    "name VARCHAR(32) UNIQUE, coins INTEGER, goods INTEGER, " ..
    "created_at TIMESTAMP, updated_at TIMESTAMP)",
}

-- SQLite takes its write lock up front instead of SELECT ... FOR UPDATE.
B.BEGIN_SQL = {
  sqlite = "BEGIN IMMEDIATE", mysql = "BEGIN", postgres = "BEGIN",
}
B.LOCK_CLAUSE = { sqlite = "", mysql = " FOR UPDATE", postgres = " FOR UPDATE" }

-- Hint bits and statistics are set before the timed reads start.
B.AFTER_SEED = { postgres = "VACUUM ANALYZE players" }

local DIGITS = "(SELECT 0 AS d UNION ALL SELECT 1 UNION ALL SELECT 2 " ..
  "UNION ALL SELECT 3 UNION ALL SELECT 4 UNION ALL SELECT 5 UNION ALL " ..
  "SELECT 6 UNION ALL SELECT 7 UNION ALL SELECT 8 UNION ALL SELECT 9)"

-- One server-side statement inserting rows 1..n: fast, and the client's
-- memory is untouched, so the stream workload's peak RSS is its own.
function B.seed_sql(dialect, n)
  local ts = B.SEED_TS
  if dialect == "sqlite" then
    return ("WITH RECURSIVE s(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM s " ..
      "WHERE i < %d) INSERT INTO players (%s) SELECT 'player_' || i, " ..
      "i %% 1000, i %% 100, '%s', '%s' FROM s"):format(n, B.INS_COLS, ts, ts)
  elseif dialect == "postgres" then
    return ("INSERT INTO players (%s) SELECT 'player_' || i, i %% 1000, " ..
      "i %% 100, TIMESTAMP '%s', TIMESTAMP '%s' FROM generate_series(1, %d) " ..
      "AS s(i)"):format(B.INS_COLS, ts, ts, n)
  end
  -- MySQL family: a cross join of digit tables (a recursive CTE would hit
  -- MySQL 8's default recursion limit of 1000).
  local levels, p = 0, 1
  while p < n do p = p * 10; levels = levels + 1 end
  if levels == 0 then levels = 1 end
  local sum, from, mul = { "1" }, {}, 1
  for l = 0, levels - 1 do
    sum[#sum + 1] = ("%d * d%d.d"):format(mul, l)
    from[#from + 1] = ("%s d%d"):format(DIGITS, l)
    mul = mul * 10
  end
  local sql = "INSERT INTO players (%s) SELECT CONCAT('player_', i), " ..
    "i %% 1000, i %% 100, '%s', '%s' FROM (SELECT %s AS i FROM %s) s " ..
    "WHERE i <= %d"
  return sql:format(B.INS_COLS, ts, ts, table.concat(sum, " + "),
    table.concat(from, " CROSS JOIN "), n)
end

local function usage(client)
  io.stderr:write(("usage: lua5.4 %s <sqlite|mysql|postgres> <workload|all>\n"
    .. "workloads: %s\n"):format(arg and arg[0] or client,
    table.concat(B.WORKLOADS, " ")))
  os.exit(2)
end

-- Parses arg, runs the selected workloads of `impl` (name -> function(ctx))
-- and prints one RESULT line each. `open(dialect)` returns the ctx handed to
-- every workload, `close(ctx)` ends it. Any error exits non-zero.
function B.main(client, impl, open, close)
  local dialect, which = arg[1], arg[2]
  if not (dialect and B.DIALECTS[dialect] and which) then usage(client) end
  local selected = {}
  for _, w in ipairs(B.WORKLOADS) do
    if which == "all" or which == w then selected[#selected + 1] = w end
  end
  if #selected == 0 then usage(client) end
  if B.clock_source ~= "socket.gettime" then
    io.stderr:write("# lua-socket missing: timing from /proc/uptime (10 ms)\n")
  end

  local ok, err = xpcall(function()
    local ctx = open(dialect)
    for _, w in ipairs(selected) do
      local fn = impl[w] or error("client " .. client .. " lacks " .. w)
      io.stderr:write(("# %s %s %s (SCALE=%g)\n"):format(client, dialect, w,
        B.scale))
      B.reset_peak_rss()
      local ops = fn(ctx)
      local secs = t_stop - t_start
      io.write(("RESULT %s %s %s %d %.6f %.1f %d\n"):format(w, dialect, client,
        ops, secs, secs > 0 and ops / secs or 0, B.peak_rss_kib()))
      io.write(("CPU %s %s %s %d %.6f\n"):format(w, dialect, client, ops, c_stop - c_start))
      io.stdout:flush()
    end
    if close then close(ctx) end
  end, debug.traceback)
  if not ok then
    io.stderr:write(client, " bench failed: ", tostring(err), "\n")
    os.exit(1)
  end
end

return B
