-- bench/async_bench.lua - async mode against blocking, on one Lua state.
--
--   lua5.4 bench/async_bench.lua [URL ...]
--   (default: $SQORM_TEST_MYSQL_URL and $SQORM_TEST_PG_URL)
--
-- Work: 64 "sessions", each doing ITER rounds of 4 primary-key lookups
-- (Model:find_by_pk) and one read-modify-write transaction (SELECT ...
-- FOR UPDATE, UPDATE, COMMIT) on a 1000-row table.
--   async:    64 coroutines (sqorm.spawn) on a db with async = true and
--             pool.max = 8; the main loop is a 1 ms tick: it waits on
--             sqorm.pollfd() for at most 1 ms (select(2) via luasocket),
--             then sqorm.poll(max, seconds): a tick's share of resumes,
--             ASYNC_BENCH_POLL="max,seconds" (default "8,0.001"; "all":
--             plain sqorm.poll(), every waiting coroutine).
--   blocking: the same rounds one after another on one thread (async =
--             false); a "tick" can only run between two calls.
-- Both modes connect with pool = { max = 8, min = 8 }: the 8 connections
-- (TLS, authentication) are opened by sqorm.connect, before the clock,
-- as a game server opens them at startup.
--   idle:     the control: the same 1 ms tick loop, sqorm.poll() included,
--             for 2 s with no work at all, just before the async run - the
--             stall the machine itself gives a sleeping thread (on a busy
--             machine a 1 ms select can sleep tens of ms).
-- Prints throughput (rounds/s and statements/s) and the longest stall of
-- the tick loop: the longest time between two ticks while the work ran
-- (it must stay under 5 ms in async mode), the longest single poll call,
-- the 99th percentile of the tick gaps, and the load average. With
-- ASYNC_BENCH_RUNS=N (default 1) each database runs N times (blocking,
-- async, blocking, async, ...) and a "median" line follows.
-- ASYNC_BENCH_NICE=N (or "0,10": each run does the async mode once per
-- value, interleaved) sets pool.worker_nice of the async db; unset, the
-- option is left out (the default).
local sqorm = require "sqorm"
local socket = require "socket"
local now = socket.gettime

local SESSIONS, ITER, ROWS = 64, tonumber(os.getenv("ASYNC_BENCH_ITER") or 40), 1000
local RUNS = tonumber(os.getenv("ASYNC_BENCH_RUNS") or 1)
local MODES = os.getenv("ASYNC_BENCH_MODES") or "blocking,async" -- e.g. "async" alone, for a profile
local POLL = os.getenv("ASYNC_BENCH_POLL") or "8,0.001"
local POLL_MAX, POLL_SECONDS
if POLL ~= "all" then
  POLL_MAX, POLL_SECONDS = POLL:match("^(%d+),([%d.]+)$")
  POLL_MAX, POLL_SECONDS = tonumber(POLL_MAX), tonumber(POLL_SECONDS)
  assert(POLL_MAX and POLL_SECONDS, "ASYNC_BENCH_POLL: \"max,seconds\" or \"all\"")
end
local STMTS_PER_ROUND = 4 + 4 -- 4 lookups + BEGIN, SELECT, UPDATE, COMMIT
local NICES = {}
for v in (os.getenv("ASYNC_BENCH_NICE") or ""):gmatch("[^,]+") do
  NICES[#NICES + 1] = assert(math.tointeger(tonumber(v)), "ASYNC_BENCH_NICE: integers 0..19, comma-separated")
end
if #NICES == 0 then NICES[1] = false end -- pool.worker_nice not given
local function nice_label(n) return n and ("async n" .. n) or "async" end

local function setup(url)
  local db = sqorm.connect(url)
  local tname = "async_bench_" .. math.random(1, 1e6)
  db:exec(("CREATE TABLE %s (id INTEGER PRIMARY KEY, coins INTEGER NOT NULL)"):format(tname))
  local values, binds = {}, {}
  for i = 1, ROWS do
    values[#values + 1] = "(?, ?)"
    binds[#binds + 1] = i
    binds[#binds + 1] = 1000
  end
  db:exec(("INSERT INTO %s (id, coins) VALUES %s"):format(tname, table.concat(values, ", ")), binds)
  return db, tname
end

local function model(db, tname)
  return db:define("acct", {
    { "id", sqorm.types.INTEGER, primary_key = true },
    { "coins", sqorm.types.INTEGER },
  }, { table_name = tname, timestamps = false })
end

-- One round of a session (s) on db / model M.
local function round(db, M, tname, s, i)
  for k = 1, 4 do
    local id = (s * 131 + i * 17 + k * 7) % ROWS + 1
    assert(M:find_by_pk(id))
  end
  local id = (s * 37 + i) % ROWS + 1
  db:transaction(function()
    local c = db:query(("SELECT coins FROM %s WHERE id = ? FOR UPDATE"):format(tname), { id })[1].coins
    db:exec(("UPDATE %s SET coins = ? WHERE id = ?"):format(tname), { tonumber(c) + 1, id })
  end)
end

-- The 99th percentile of the sorted gaps, and how many exceed 5 ms.
local function gap_stats(gaps)
  table.sort(gaps)
  local over = 0
  for i = #gaps, 1, -1 do
    if gaps[i] <= 0.005 then break end
    over = over + 1
  end
  return gaps[math.max(1, math.ceil(#gaps * 0.99))], over
end

local function run_blocking(url, tname)
  local db = sqorm.connect(url, { pool = { max = 8, min = 8 } })
  local M = model(db, tname)
  local t0 = now()
  local last, stall = t0, 0
  for i = 1, ITER do
    for s = 1, SESSIONS do
      round(db, M, tname, s, i)
      local t = now() -- the earliest a tick could run
      if t - last > stall then stall = t - last end
      last = t
    end
  end
  local took = now() - t0
  db:close()
  return took, stall
end

-- The control: the tick loop alone for `seconds` (nothing pending, so
-- each tick is the select timing out and an empty poll).
local function run_idle(seconds)
  local fd = { getfd = function() return sqorm.pollfd() end, dirty = function() return false end }
  local t0 = now()
  local last, stall, longest_poll, gaps = t0, 0, 0, {}
  while now() - t0 < seconds do
    socket.select({ fd }, nil, 0.001)
    local t = now()
    if t - last > stall then stall = t - last end
    gaps[#gaps + 1] = t - last
    sqorm.poll(POLL_MAX, POLL_SECONDS)
    last = now()
    if last - t > longest_poll then longest_poll = last - t end
  end
  local p99, over = gap_stats(gaps)
  return now() - t0, stall, longest_poll, p99, over
end

local function run_async(url, tname, nice)
  local db = sqorm.connect(url, { async = true, pool = { max = 8, min = 8, acquire_timeout = 60,
    worker_nice = nice or nil } })
  local M = model(db, tname)
  local fd = { getfd = function() return sqorm.pollfd() end, dirty = function() return false end }
  local failed = 0
  sqorm.on_error(function(err)
    failed = failed + 1
    io.stderr:write(tostring(err), "\n")
  end)
  local t0 = now()
  for s = 1, SESSIONS do
    sqorm.spawn(function()
      for i = 1, ITER do round(db, M, tname, s, i) end
    end)
  end
  local last, stall, ticks, longest_poll, gaps = now(), 0, 0, 0, {}
  while sqorm.pending() > 0 do
    socket.select({ fd }, nil, 0.001) -- the 1 ms tick, woken early by completions
    local t = now()
    if t - last > stall then stall = t - last end
    gaps[#gaps + 1] = t - last
    sqorm.poll(POLL_MAX, POLL_SECONDS)
    ticks = ticks + 1
    last = now()
    if last - t > longest_poll then longest_poll = last - t end
  end
  local took = now() - t0
  sqorm.on_error(nil)
  db:close()
  assert(failed == 0, failed .. " sessions failed")
  local p99, over = gap_stats(gaps)
  return took, stall, longest_poll, p99, over
end

local function median(t)
  local s = {}
  for i, v in ipairs(t) do s[i] = v end
  table.sort(s)
  local n = #s
  return n % 2 == 1 and s[(n + 1) // 2] or (s[n // 2] + s[n // 2 + 1]) / 2
end

local function loadavg()
  local f = io.open("/proc/loadavg")
  if not f then return "?" end
  local l = f:read("l")
  f:close()
  return l:match("^(%S+ %S+ %S+)") or "?"
end

local urls = { ... }
if #urls == 0 then
  urls[#urls + 1] = os.getenv("SQORM_TEST_MYSQL_URL")
  urls[#urls + 1] = os.getenv("SQORM_TEST_PG_URL")
end
assert(#urls > 0, "usage: lua5.4 bench/async_bench.lua URL... (or the test servers' SQORM_TEST_*_URL)")
math.randomseed(os.time())
local rounds = SESSIONS * ITER
print(("async_bench: %d sessions x %d rounds (4 pk lookups + 1 read-modify-write transaction), pool 8 (min 8), "
  .. "poll %s, %d run(s), pool.worker_nice %s"):format(SESSIONS, ITER,
  POLL_MAX and ("(%d, %g)"):format(POLL_MAX, POLL_SECONDS) or "()", RUNS,
  os.getenv("ASYNC_BENCH_NICE") or "not given"))
-- longest poll ms: the longest single sqorm.poll() call (the Lua work of
-- resuming coroutines); the rest of a stall is the wait for the CPU.
-- p99 gap ms: the 99th percentile of the time between two ticks.
-- gaps>5ms: how many tick gaps exceeded 5 ms (idle: in its 2 s).
local head = "%-9s %-9s %8s %10s %10s %13s %12s %11s %9s  %s"
local line = "%-9s %-9s %8.2f %10.0f %10.0f %13.2f %12s %11s %9s  %s"
print(head:format("dialect", "mode", "seconds", "rounds/s", "stmts/s", "longest stall", "longest poll",
  "p99 gap ms", "gaps>5ms", "load average"))
for _, url in ipairs(urls) do
  local db, tname = setup(url)
  local dialect = db:dialect()
  local m = { brate = {}, bstall = {}, istall = {}, iover = {} }
  for k = 1, #NICES do m[k] = { arate = {}, astall = {}, apoll = {}, agap = {}, aover = {} } end
  for _ = 1, RUNS do
    local bt, bs = 0 / 0, 0 / 0
    if MODES:find("blocking", 1, true) then
      bt, bs = run_blocking(url, tname)
      print(line:format(dialect, "blocking", bt, rounds / bt, rounds * STMTS_PER_ROUND / bt, bs * 1e3, "", "",
        "", loadavg()))
    end
    if MODES:find("async", 1, true) then
      local _, is, ip, ig, io_ = run_idle(2)
      print(line:format(dialect, "idle", 2, 0, 0, is * 1e3, ("%.2f"):format(ip * 1e3), ("%.2f"):format(ig * 1e3),
        io_, loadavg()))
      m.istall[#m.istall + 1], m.iover[#m.iover + 1] = is * 1e3, io_
      for k, nice in ipairs(NICES) do
        local at, as, ap, ag, ao = run_async(url, tname, nice)
        print(line:format(dialect, nice_label(nice), at, rounds / at, rounds * STMTS_PER_ROUND / at, as * 1e3,
          ("%.2f"):format(ap * 1e3), ("%.2f"):format(ag * 1e3), ao, loadavg()))
        local a = m[k]
        a.arate[#a.arate + 1], a.astall[#a.astall + 1] = rounds / at, as * 1e3
        a.apoll[#a.apoll + 1], a.agap[#a.agap + 1], a.aover[#a.aover + 1] = ap * 1e3, ag * 1e3, ao
      end
    end
    m.brate[#m.brate + 1], m.bstall[#m.bstall + 1] = rounds / bt, bs * 1e3
  end
  if RUNS > 1 then
    local blocking = MODES:find("blocking", 1, true) and ("blocking %.0f rounds/s (stall %.2f ms)"):format(
      median(m.brate), median(m.bstall))
    if not MODES:find("async", 1, true) then print(("%-9s median: %s"):format(dialect, blocking)) end
    for k, nice in ipairs(MODES:find("async", 1, true) and NICES or {}) do
      local a = m[k]
      print(("%-9s median: %s%s %.0f rounds/s%s, longest stall %.2f ms, longest poll %.2f ms, p99 gap %.2f ms, "
        .. "gaps>5ms %g; idle control: longest stall %.2f ms, gaps>5ms %g"):format(dialect,
        blocking and blocking .. ", " or "", nice_label(nice), median(a.arate),
        blocking and (" (%.2fx)"):format(median(a.arate) / median(m.brate)) or "",
        median(a.astall), median(a.apoll), median(a.agap), median(a.aover), median(m.istall), median(m.iover)))
    end
  end
  local total = tonumber(db:query("SELECT SUM(coins) AS n FROM " .. tname)[1].n)
  local nmodes = (MODES:find("blocking", 1, true) and 1 or 0) + (MODES:find("async", 1, true) and #NICES or 0)
  assert(total == ROWS * 1000 + nmodes * rounds * RUNS, "lost updates: " .. total)
  db:exec("DROP TABLE " .. tname)
  db:close()
end
