-- bench/async_load_bench.lua - async mode under load (issue 15, item 4).
--
--   lua5.4 bench/async_load_bench.lua [URL ...]
--   (default: $SQORM_TEST_MYSQL_URL and $SQORM_TEST_PG_URL)
--
-- One op = one Model:find_by_pk on a 1,000-row table (a round trip and an
-- instance). OPS ops in all (env ASYNC_LOAD_OPS, default 4096), for each
-- pool.max in POOLS (default "4 16") and each number of coroutines in
-- COROS (default "1 8 64 512"), each coroutine doing OPS / coroutines ops:
--   async:    sqorm.spawn per coroutine on a db with async = true; the main
--             loop is a 1 ms tick: it waits on sqorm.pollfd() for at most
--             1 ms (select(2) via luasocket), then calls sqorm.poll();
--   blocking: the same OPS ops one after another (async = false), a "tick"
--             possible only between two calls.
-- Per run: throughput (ops/s), the latency of one op as its coroutine sees
-- it (from the call to the return, queueing in the pool included: p50 and
-- p99), the longest stall of the tick loop (the longest time from the
-- start of one tick to the start of the next while the work ran: the wait
-- plus the previous tick's poll; blocking: the longest call) and the
-- longest single sqorm.poll() (the Lua work of resuming coroutines, which
-- with hundreds of coroutines completing at once is most of a stall). Wall clock: on a shared machine compare
-- within one run.
local here = arg and arg[0] and arg[0]:match("^(.*)/[^/]*$") or "."
local build = os.getenv("SQORM_BUILD") or (here .. "/../build")
package.path = build .. "/share/?.lua;" .. build .. "/share/?/init.lua;" ..
  here .. "/../lua/?.lua;" .. here .. "/../lua/?/init.lua;" .. package.path
package.cpath = build .. "/lib/?.so;" .. package.cpath

local sqorm = require "sqorm"
local socket = require "socket"
local now = socket.gettime

local OPS = tonumber(os.getenv("ASYNC_LOAD_OPS") or "4096")
local ROWS = 1000
local function list(env, default)
  local t = {}
  for n in (os.getenv(env) or default):gmatch("%d+") do t[#t + 1] = tonumber(n) end
  return t
end
local POOLS, COROS = list("POOLS", "4 16"), list("COROS", "1 8 64 512")

local function setup(url)
  local db = sqorm.connect(url, { ssl = { mode = "disable" } })
  local tname = "async_load_" .. math.random(1, 1e6)
  db:exec(("CREATE TABLE %s (id INTEGER PRIMARY KEY, coins INTEGER NOT NULL, name VARCHAR(32))"):format(tname))
  local values, binds = {}, {}
  for i = 1, ROWS do
    values[#values + 1] = "(?, ?, ?)"
    binds[#binds + 1] = i
    binds[#binds + 1] = i % 1000
    binds[#binds + 1] = "player_" .. i
  end
  db:exec(("INSERT INTO %s (id, coins, name) VALUES %s"):format(tname, table.concat(values, ", ")), binds)
  return db, tname
end

local function model(db, tname)
  return db:define("acct", {
    { "id", sqorm.types.INTEGER, primary_key = true },
    { "coins", sqorm.types.INTEGER },
    { "name", sqorm.types.STRING(32) },
  }, { table_name = tname, timestamps = false })
end

local function pct(lat, p)
  table.sort(lat)
  local i = math.max(1, math.min(#lat, math.ceil(#lat * p)))
  return lat[i]
end

local function run_blocking(url, tname)
  local db = sqorm.connect(url, { ssl = { mode = "disable" }, pool = { max = 1 } })
  local M = model(db, tname)
  assert(M:find_by_pk(1)) -- connection opened before the clock
  local lat = {}
  local t0 = now()
  local last, stall = t0, 0
  for i = 1, OPS do
    local t = now()
    assert(M:find_by_pk((i * 17) % ROWS + 1))
    local t1 = now() -- the earliest a tick could run
    lat[i] = t1 - t
    if t1 - last > stall then stall = t1 - last end
    last = t1
  end
  local took = now() - t0
  db:close()
  return { secs = took, p50 = pct(lat, 0.5), p99 = pct(lat, 0.99), stall = stall, poll = 0 }
end

local function run_async(url, tname, pool, coros)
  local db = sqorm.connect(url, { ssl = { mode = "disable" }, async = true,
                                  pool = { max = pool, min = pool, acquire_timeout = 120 } })
  local M = model(db, tname)
  local fd = { getfd = function() return sqorm.pollfd() end, dirty = function() return false end }
  local failed = 0
  sqorm.on_error(function(err)
    failed = failed + 1
    io.stderr:write(tostring(err), "\n")
  end)
  -- open every connection of the pool before the clock starts
  for _ = 1, pool do sqorm.spawn(function() assert(M:find_by_pk(1)) end) end
  while sqorm.pending() > 0 do
    socket.select({ fd }, nil, 0.001)
    sqorm.poll()
  end
  local per = OPS // coros
  local lat, nlat = {}, 0
  local t0 = now()
  for c = 1, coros do
    sqorm.spawn(function()
      for i = 1, per do
        local t = now()
        assert(M:find_by_pk((c * 131 + i * 17) % ROWS + 1))
        nlat = nlat + 1
        lat[nlat] = now() - t
      end
    end)
  end
  local prev, stall, longest_poll = now(), 0, 0
  while sqorm.pending() > 0 do
    socket.select({ fd }, nil, 0.001) -- the 1 ms tick, woken early by completions
    local t = now()
    if t - prev > stall then stall = t - prev end -- from one tick to the next, its poll included
    prev = t
    sqorm.poll()
    local d = now() - t
    if d > longest_poll then longest_poll = d end
  end
  local took = now() - t0
  sqorm.on_error(nil)
  db:close()
  assert(failed == 0, failed .. " coroutines failed")
  assert(nlat == per * coros, "ops lost")
  return { secs = took, ops = nlat, p50 = pct(lat, 0.5), p99 = pct(lat, 0.99), stall = stall, poll = longest_poll }
end

local urls = { ... }
if #urls == 0 then
  urls[#urls + 1] = os.getenv("SQORM_TEST_MYSQL_URL")
  urls[#urls + 1] = os.getenv("SQORM_TEST_PG_URL")
end
assert(#urls > 0, "usage: lua5.4 bench/async_load_bench.lua URL... (or the test servers' SQORM_TEST_*_URL)")
math.randomseed(os.time())
print(("async_load_bench: %d find_by_pk per run; latency per op as its coroutine sees it"):format(OPS))
print("| db | mode | pool.max | coroutines | ops/s | p50 ms | p99 ms | longest tick stall ms | longest poll ms |")
print("|---|---|--:|--:|--:|--:|--:|--:|--:|")
local function row(dialect, mode, pool, coros, r, ops)
  print(("| %s | %s | %s | %s | %.0f | %.3f | %.3f | %.2f | %s |"):format(dialect, mode, pool, coros,
    ops / r.secs, r.p50 * 1e3, r.p99 * 1e3, r.stall * 1e3, mode == "blocking" and "-" or ("%.2f"):format(r.poll * 1e3)))
  io.stdout:flush()
end
for _, url in ipairs(urls) do
  local db, tname = setup(url)
  local dialect = db:dialect()
  row(dialect, "blocking", 1, 1, run_blocking(url, tname), OPS)
  for _, pool in ipairs(POOLS) do
    for _, coros in ipairs(COROS) do
      local r = run_async(url, tname, pool, coros)
      row(dialect, "async", pool, coros, r, r.ops)
    end
  end
  db:exec("DROP TABLE " .. tname)
  db:close()
end
