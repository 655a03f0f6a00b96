-- Async mode (DESIGN.md Part 2, "Async: the game tick never waits"):
-- async = true runs each operation on a worker thread of the pool while
-- the calling coroutine is suspended; sqorm.poll resumes it. On a SQLite
-- file, MariaDB and PostgreSQL.
local sqorm = require "sqorm"
local H = require "spec.helper"

local drain = H.drain

local function sleep(s)
  local t = os.clock() + s
  while os.clock() < t do end
end

-- SQLite on a file (several connections).
for _, d in ipairs(H.file_dialects()) do
  describe("async [" .. d.name .. "]", function()
    local db, sync, tname

    local function backend_sql()
      if d.name == "postgres" then return "SELECT pg_backend_pid() AS b" end
      if d.name == "mysql" then return "SELECT CONNECTION_ID() AS b" end
      return nil
    end

    -- SQL that waits on the row lock held by `sync`'s open transaction.
    local function blocked_update()
      return ("UPDATE %s SET n = n + 1 WHERE id = 1"):format(tname)
    end

    before_each(function()
      tname = H.tname("async")
      db = sqorm.connect(d.url, { async = true, pool = { max = 4 } })
      sync = sqorm.connect(d.url, d.name == "sqlite" and { connect_timeout = 10 } or nil)
      sync:exec(("CREATE TABLE %s (id INTEGER PRIMARY KEY, n INTEGER NOT NULL)"):format(tname))
      sync:exec(("INSERT INTO %s (id, n) VALUES (1, 0), (2, 0), (3, 0)"):format(tname))
      sqorm.on_error(nil)
      sqorm.scheduler(nil)
    end)

    after_each(function()
      drain()
      sync:exec("DROP TABLE " .. tname)
      db:close()
      sync:close()
      if d.path then
        for _, suffix in ipairs { "", "-wal", "-shm" } do os.remove(d.path .. suffix) end
      end
    end)

    it("resumes a coroutine once per operation (one op, one yield)", function()
      local done
      local co = coroutine.create(function()
        db:query("SELECT 1 AS one")
        db:exec(("UPDATE %s SET n = 5 WHERE id = 2"):format(tname))
        db:transaction(function()              -- BEGIN, two statements, COMMIT
          db:query(("SELECT n FROM %s WHERE id = 2"):format(tname))
          db:exec(("UPDATE %s SET n = 6 WHERE id = 2"):format(tname))
        end)
        done = db:query(("SELECT n FROM %s WHERE id = 2"):format(tname))[1].n
      end)
      assert(coroutine.resume(co))              -- runs to its first op and yields
      assert.are.equal("suspended", coroutine.status(co))
      assert.are.equal(1, sqorm.pending())
      assert.are.equal(7, drain())              -- 2 + 4 + 1 ops, each resumed once
      assert.are.equal(6, done)
      assert.are.equal("dead", coroutine.status(co))
    end)

    it("keeps a coroutine waiting on a row lock suspended while the main thread runs", function()
      local tx = sync:begin()
      sync:exec(blocked_update())            -- holds the row lock
      local got
      sqorm.spawn(function()
        db:exec(blocked_update())
        got = db:query(("SELECT n FROM %s WHERE id = 1"):format(tname))[1].n
      end)
      for _ = 1, 20 do
        sleep(0.01)
        assert.are.equal(0, sqorm.poll())
      end
      assert.are.equal(1, sqorm.pending())
      tx:commit()
      drain()
      assert.are.equal(2, got)
    end)

    it("resumes 1000 coroutines on pool.max = 4 exactly once each, with their own result", function()
      local results, resumed, max_in_use = {}, {}, 0
      for i = 1, 1000 do
        sqorm.spawn(function()
          local v = db:query("SELECT ? AS v", { i })[1].v
          resumed[i] = (resumed[i] or 0) + 1
          results[i] = tonumber(v)
        end)
      end
      while sqorm.pending() > 0 do
        sqorm.poll()
        local s = db:pool_stats()
        if s.in_use > max_in_use then max_in_use = s.in_use end
      end
      for i = 1, 1000 do
        assert.are.equal(i, results[i])
        assert.are.equal(1, resumed[i])
      end
      assert.is_true(max_in_use <= 4, "in_use went to " .. max_in_use)
      assert.are.equal(0, db:pool_stats().in_use)
    end)

    it("raises an op's error at its call site", function()
      local err
      sqorm.spawn(function()
        local ok, e = pcall(db.query, db, "SELECT * FROM no_such_table_here")
        assert(not ok)
        err = e
      end)
      drain()
      assert.is_true(sqorm.is_error(err))
      assert.are.equal("syntax", err.kind)
    end)

    it("sends an error escaping a spawned coroutine to on_error", function()
      local seen, seen_co
      sqorm.on_error(function(e, co) seen, seen_co = e, co end)
      local co = sqorm.spawn(function() db:query("SELECT * FROM no_such_table_here") end)
      drain()
      assert.are.equal("syntax", seen.kind)
      assert.are.equal(co, seen_co)
    end)

    it("raises usage naming sqorm.spawn on the main thread; async = \"auto\" blocks there", function()
      H.raises_kind("usage", "sqorm.spawn", db.query, db, "SELECT 1 AS one")
      local auto = sqorm.connect(d.url, { async = "auto" })
      assert.are.equal(1, tonumber(auto:query("SELECT 1 AS one")[1].one))
      local v
      sqorm.spawn(function() v = auto:query("SELECT 2 AS two")[1].two end)
      assert.are.equal(1, sqorm.pending())     -- in a coroutine it is async
      drain()
      assert.are.equal(2, tonumber(v))
      auto:close()
    end)

    it("times out a lock-blocked statement; the db works afterwards", function()
      local tx = sync:begin()
      sync:exec(blocked_update())
      local err
      sqorm.spawn(function()
        local ok, e = pcall(db.exec, db, blocked_update(), nil, { timeout = 0.2 })
        assert(not ok)
        err = e
      end)
      drain()
      tx:rollback()
      assert.are.equal("timeout", err.kind, tostring(err))
      local n
      sqorm.spawn(function() n = db:query(("SELECT n FROM %s WHERE id = 1"):format(tname))[1].n end)
      drain()
      assert.are.equal(0, n)
      assert.are.equal(0, db:pool_stats().in_use)
    end)

    it("takes the connect option timeout as the default", function()
      local tdb = sqorm.connect(d.url, { async = true, timeout = 0.2 })
      local tx = sync:begin()
      sync:exec(blocked_update())
      local err
      sqorm.spawn(function()
        local ok, e = pcall(tdb.exec, tdb, blocked_update())
        assert(not ok)
        err = e
      end)
      drain()
      tx:rollback()
      assert.are.equal("timeout", err.kind, tostring(err))
      tdb:close()
    end)

    it("cancels a lock-blocked statement with sqorm.cancel; the db works afterwards", function()
      local tx = sync:begin()
      sync:exec(blocked_update())
      local err
      local co = sqorm.spawn(function()
        local ok, e = pcall(db.exec, db, blocked_update())
        assert(not ok)
        err = e
      end)
      sleep(0.05)
      assert.is_true(sqorm.cancel(co))
      drain()
      tx:rollback()
      assert.are.equal("canceled", err.kind, tostring(err))
      assert.is_false(sqorm.cancel(co))
      local n
      sqorm.spawn(function() n = db:query(("SELECT n FROM %s WHERE id = 1"):format(tname))[1].n end)
      drain()
      assert.are.equal(0, n)
      assert.are.equal(0, db:pool_stats().in_use)
    end)

    -- waits (polling) until db's pool has lent nothing, at most 10 s
    local function until_released()
      local t0 = os.time()
      while db:pool_stats().in_use > 0 and os.time() - t0 < 10 do
        sqorm.poll()
        collectgarbage()
      end
      return db:pool_stats().in_use
    end

    it("gives a transaction back when its coroutine is closed while BEGIN runs (nothing committed)", function()
      local co = sqorm.spawn(function()
        db:transaction(function() db:exec(("UPDATE %s SET n = 5 WHERE id = 2"):format(tname)) end)
      end)
      assert.are.equal(1, sqorm.pending())
      assert.is_true(coroutine.close(co)) -- BEGIN is still in flight
      drain()
      assert.are.equal(0, until_released())
      assert.are.equal(0, sync:query(("SELECT n FROM %s WHERE id = 2"):format(tname))[1].n)
      -- and co, still referenced here, holds nothing
      assert.are.equal("dead", coroutine.status(co))
    end)

    it("rolls back the transaction of a coroutine closed while one of its statements runs", function()
      local tx = sync:begin()
      sync:exec(blocked_update())
      local reached = false
      local co = sqorm.spawn(function()
        db:transaction(function()
          db:query(("SELECT n FROM %s WHERE id = 2"):format(tname))
          reached = true
          db:exec(blocked_update()) -- waits for sync's lock
        end)
      end)
      local t0 = os.time()
      while not reached and os.time() - t0 < 10 do sqorm.poll() end
      assert.is_true(reached)
      assert.are.equal(1, sqorm.pending()) -- the UPDATE waits on the lock
      assert.is_true(coroutine.close(co))
      tx:rollback() -- the UPDATE now runs, in a transaction nobody will end
      drain()
      assert.are.equal(0, until_released())
      -- the pool rolls that connection back before it lends it again (it
      -- is on top of the idle ones, so the next call gets it): the
      -- UPDATE is gone and its lock with it
      sqorm.spawn(function() db:exec(blocked_update(), nil, { timeout = 10 }) end)
      drain()
      assert.are.equal(1, sync:query(("SELECT n FROM %s WHERE id = 1"):format(tname))[1].n)
      assert.are.equal("dead", coroutine.status(co))
    end)

    it("gives a transaction back at once when its coroutine is closed while fn waits on its own yield", function()
      local co = sqorm.spawn(function()
        db:transaction(function()
          db:exec(("UPDATE %s SET n = 5 WHERE id = 2"):format(tname))
          coroutine.yield("the script's own")
        end)
      end)
      drain()
      assert.are.equal("suspended", coroutine.status(co))
      assert.are.equal(1, db:pool_stats().in_use)
      assert.is_true(coroutine.close(co))
      assert.are.equal(0, db:pool_stats().in_use) -- co is still referenced: not the collector
      -- the pool rolls that connection back before it lends it again
      sqorm.spawn(function() db:query("SELECT 1 AS one") end)
      drain()
      assert.are.equal(0, sync:query(("SELECT n FROM %s WHERE id = 2"):format(tname))[1].n)
    end)

    -- A coroutine closed in the middle of a call loses its stack, and
    -- with it the call's frame (the op's holder, a cursor, the db): the
    -- collector must not take them while the op is in flight, and other
    -- coroutines' calls must go on as if nothing happened.
    local reached
    local closed_mid_call = {
      query = function()
        reached = true
        db:query("SELECT 1 AS one")
      end,
      ["transaction statement"] = function()
        db:transaction(function()
          reached = true
          -- (no lock: on SQLite, a write lock kept by the abandoned
          -- connection until the pool lends it again would stall A)
          db:query("SELECT 1 AS one")
        end)
      end,
      ["cursor fetch"] = function()
        local M = db:define("row", {
          { "id", sqorm.types.INTEGER, primary_key = true },
          { "n", sqorm.types.INTEGER },
        }, { table_name = tname, timestamps = false })
        for row in M:each { order = { "id" } } do reached = true; local _ = row end -- (fetches after 32)
      end,
    }
    for _, what in ipairs { "query", "transaction statement", "cursor fetch" } do
      it("goes on with other coroutines' calls when one closed mid-call (" .. what .. ") is collected", function()
        for i = 4, 40 do sync:exec(("INSERT INTO %s (id, n) VALUES (?, 0)"):format(tname), { i }) end
        local tx = sync:begin()
        finally(function() if tx:is_open() then tx:rollback() end end)
        sync:exec(blocked_update())
        -- A: a transaction whose statement waits for sync's lock (A's
        -- holder stays busy, so B's calls take holders of their own)
        local a_reached, a_done = false, false
        sqorm.spawn(function()
          db:transaction(function()
            a_reached = true
            db:exec(blocked_update())
          end)
          a_done = true
        end)
        local t0 = os.time()
        while not a_reached and os.time() - t0 < 10 do sqorm.poll() end
        assert.is_true(a_reached)
        -- B: a coroutine of the script's own, suspended in its call
        reached = false
        local b = coroutine.create(closed_mid_call[what])
        assert(coroutine.resume(b))
        while not reached and os.time() - t0 < 10 do sqorm.poll() end
        assert.is_true(reached)
        assert.are.equal(2, sqorm.pending())
        assert.are.equal("suspended", coroutine.status(b))
        assert.is_true(coroutine.close(b))
        collectgarbage()
        collectgarbage()
        -- nothing was cancelled or dropped: both calls still complete
        assert.are.equal(2, sqorm.pending())
        assert.is_boolean(sqorm.cancel(b)) -- (B's holder is still there)
        tx:rollback()
        drain()
        assert.is_true(a_done)
        assert.are.equal(0, until_released())
        assert.are.equal(1, sync:query(("SELECT n FROM %s WHERE id = 1"):format(tname))[1].n)
        assert.are.equal("dead", coroutine.status(b))
      end)
    end

    it("runs a transaction's statements on one backend, invisible to others until COMMIT", function()
      local b1, b2, seen_inside, seen_after
      local step = 0
      sqorm.spawn(function()
        db:transaction(function()
          db:exec(("UPDATE %s SET n = 42 WHERE id = 3"):format(tname))
          if backend_sql() then b1 = db:query(backend_sql())[1].b end
          step = 1
          -- another coroutine reads meanwhile
          sqorm.spawn(function()
            seen_inside = db:query(("SELECT n FROM %s WHERE id = 3"):format(tname))[1].n
          end)
          while not seen_inside do db:query("SELECT 1 AS one") end
          if backend_sql() then b2 = db:query(backend_sql())[1].b end
        end)
        seen_after = db:query(("SELECT n FROM %s WHERE id = 3"):format(tname))[1].n
      end)
      drain()
      assert.are.equal(1, step)
      assert.are.equal(0, seen_inside)
      assert.are.equal(42, seen_after)
      if backend_sql() then assert.are.equal(b1, b2) end
    end)

    it("completes 2 open transactions on pool.max = 2 plus 30 readers", function()
      local small = sqorm.connect(d.url, { async = true, pool = { max = 2 } })
      local done = 0
      for _ = 1, 2 do
        sqorm.spawn(function()
          small:transaction(function()
            for _ = 1, 5 do small:query(("SELECT n FROM %s WHERE id = 1"):format(tname)) end
          end)
          done = done + 1
        end)
      end
      for _ = 1, 30 do
        sqorm.spawn(function()
          small:query(("SELECT n FROM %s WHERE id = 2"):format(tname))
          done = done + 1
        end)
      end
      drain()
      assert.are.equal(32, done)
      assert.are.equal(0, small:pool_stats().in_use)
      small:close()
    end)

    it("fetches `each` a batch per yield, and `break` frees the connection", function()
      local M = db:define("row", {
        { "id", sqorm.types.INTEGER, primary_key = true },
        { "n", sqorm.types.INTEGER },
      }, { table_name = tname, timestamps = false })
      for i = 4, 100 do sync:exec(("INSERT INTO %s (id, n) VALUES (?, ?)"):format(tname), { i, i }) end
      local seen, first = 0, nil
      local co = coroutine.create(function()
        for row in M:each { order = { "id" } } do
          seen = seen + 1
          first = first or row.id
        end
        local n = 0
        for _ in M:each() do
          n = n + 1
          if n == 3 then break end
        end
      end)
      assert(coroutine.resume(co))
      local resumed = drain()
      assert.are.equal(100, seen)
      assert.are.equal(1, first)
      -- open + 4 batches of 32 (the last one short, then the end) + the
      -- second loop's open, one batch, close
      assert.is_true(resumed >= 5 and resumed < 20, "resumed " .. resumed .. " times")
      assert.are.equal(0, db:pool_stats().in_use)
    end)

    it("lets a host own its coroutines through sqorm.scheduler", function()
      local suspended, woken = 0, {}
      sqorm.scheduler {
        suspend = function() suspended = suspended + 1; coroutine.yield("sqorm") end,
        resume = function(co) woken[#woken + 1] = co end,
      }
      local v
      local co = coroutine.create(function()
        v = db:query("SELECT 7 AS v")[1].v
      end)
      local _, why = coroutine.resume(co)
      assert.are.equal("sqorm", why)
      drain()
      assert.are.same({ co }, woken)
      assert(coroutine.resume(co))             -- the host resumes it
      assert.are.equal(7, tonumber(v))
      assert.are.equal(1, suspended)
      sqorm.scheduler(nil)
    end)

    it("runs a script with sqorm.run and returns or raises what fn did", function()
      local r = sqorm.run(function(a)
        local rows = db:query("SELECT ? AS v", { a })
        return tonumber(rows[1].v) + 1
      end, 41)
      assert.are.equal(42, r)
      local err = H.raises(sqorm.run, function() db:query("SELECT * FROM no_such_table_here") end)
      assert.are.equal("syntax", err.kind)
    end)

    it("logs the queue wait apart from the server time with benchmark = true", function()
      local lines = {}
      local ldb = sqorm.connect(d.url, { async = true, pool = { max = 1 }, benchmark = true,
        logging = function(s) lines[#lines + 1] = s end })
      local tx = sync:begin()
      sync:exec(blocked_update())
      sqorm.spawn(function() ldb:exec(blocked_update()) end)       -- holds the one connection
      sqorm.spawn(function() ldb:query("SELECT 1 AS queued_one") end) -- waits for it
      sleep(0.1)
      tx:rollback()
      drain()
      local found
      for _, l in ipairs(lines) do
        if l:find("queued_one", 1, true) and l:find("Executed", 1, true) then found = l end
      end
      assert.is_truthy(found and found:find("%(queued [%d.]+ms%)"), table.concat(lines, "\n"))
      ldb:close()
    end)

    if d.name ~= "sqlite" then it("raises a deadlock at its call site in a coroutine; the transaction stays over " ..
       "until rollback", function()
      -- A locks row 1, B rows 2 and 3; A asks for row 2 and waits, then B
      -- for row 1: A is the victim (InnoDB: the lighter transaction;
      -- PostgreSQL: the one that waited first). Both on this Lua thread.
      local nap = d.name == "mysql" and "DO SLEEP(0.5)" or "SELECT pg_sleep(0.5)"
      local a_locked, b_locked, a_err, a_after, b_done = false, false, nil, nil, false
      sqorm.spawn(function()
        local tx = db:begin()
        db:exec(("UPDATE %s SET n = n + 100 WHERE id = 1"):format(tname))
        a_locked = true
        while not b_locked do db:query("SELECT 1 AS one") end
        local ok, e = pcall(db.exec, db, ("UPDATE %s SET n = n + 100 WHERE id = 2"):format(tname))
        a_err = not ok and e or "no error"
        -- the transaction is over: nothing may autocommit
        ok, e = pcall(db.exec, db, ("UPDATE %s SET n = 5 WHERE id = 3"):format(tname))
        a_after = not ok and e or "no error"
        tx:rollback()
      end)
      sqorm.spawn(function()
        while not a_locked do db:query("SELECT 1 AS one") end
        db:transaction(function()
          db:exec(("UPDATE %s SET n = n + 1 WHERE id >= 2"):format(tname))
          b_locked = true
          db:exec(nap)                 -- A is waiting for row 2 by now
          db:exec(("UPDATE %s SET n = n + 10 WHERE id = 1"):format(tname))
        end)
        b_done = true
      end)
      drain(60)
      assert.are.equal("deadlock", type(a_err) == "table" and a_err.kind, tostring(a_err))
      assert.are.equal("deadlock", type(a_after) == "table" and a_after.kind, tostring(a_after))
      assert.is_true(b_done)
      local n = function(id)
        return tonumber(sync:query(("SELECT n FROM %s WHERE id = ?"):format(tname), { id })[1].n)
      end
      assert.are.equal(10, n(1))      -- B's; A's +100 is gone
      assert.are.equal(1, n(3))       -- B's +1; A's "= 5" never ran
      assert.are.equal(0, db:pool_stats().in_use)
    end) end

    -- Until every op submitted to pdb (pool.max = 1) ran: its only
    -- worker posts each completion before it runs the next op, so all
    -- but (at most) the last completion wait to be popped.
    local function until_all_ran(pdb)
      local socket = require "socket"
      local t0 = os.time()
      repeat
        local st = pdb:pool_stats()
        if st.in_use == 0 and st.waiting == 0 then return end
        socket.sleep(0.005)
      until os.time() - t0 > 30
      error("ops still running after 30 s")
    end

    it("resumes at most max coroutines per sqorm.poll(max); the rest wait, none lost or reordered", function()
      -- pool.max = 1: the ops run (and complete) in submission order, so
      -- the resumes go round robin over the coroutines.
      local pdb = sqorm.connect(d.url, { async = true, pool = { max = 1 } })
      local N, K, order = 12, 4, {}
      for i = 1, N do
        sqorm.spawn(function()
          for k = 1, K do
            local v = pdb:query("SELECT ? AS v", { i * 100 + k })[1].v
            assert(tonumber(v) == i * 100 + k)
            order[#order + 1] = i * 100 + k
          end
        end)
      end
      assert.are.equal(N, sqorm.pending())
      until_all_ran(pdb)
      assert.are.equal(3, sqorm.poll(3))   -- 11 or 12 waited: 3 resumed, the rest wait
      assert.are.equal(N, sqorm.pending())  -- (the 3 resumed have their next op in flight)
      assert.are.same({ 101, 201, 301 }, order)
      local calls = 0
      while sqorm.pending() > 0 do
        local n = sqorm.poll(3)
        assert.is_true(n <= 3, "poll(3) resumed " .. n)
        calls = calls + 1
        assert(calls < 1e7, "no progress")
      end
      local want = {}
      for k = 1, K do
        for i = 1, N do want[#want + 1] = i * 100 + k end
      end
      assert.are.same(want, order)           -- each exactly once, in order
      assert.are.equal(0, sqorm.poll(3))
      pdb:close()
    end)

    it("stops resuming once poll's time budget is spent (always at least one)", function()
      local pdb = sqorm.connect(d.url, { async = true, pool = { max = 1 } })
      local got = {}
      for i = 1, 6 do
        sqorm.spawn(function()
          local v = tonumber(pdb:query("SELECT ? AS v", { i })[1].v)
          got[#got + 1] = v
        end)
      end
      until_all_ran(pdb)
      -- a budget of a nanosecond: the first resume spends it
      assert.are.equal(1, sqorm.poll(nil, 1e-9))
      assert.are.same({ 1 }, got)
      assert.are.equal(1, sqorm.poll(10, 1e-9))
      assert.are.same({ 1, 2 }, got)
      drain()
      assert.are.same({ 1, 2, 3, 4, 5, 6 }, got)
      assert.are.equal(0, sqorm.poll(nil, 1))
      pdb:close()
    end)

    it("refuses a bad max or budget for sqorm.poll with usage", function()
      for _, args in ipairs { { 0 }, { -1 }, { 1.5 }, { "x" }, { nil, 0 }, { nil, -1 }, { nil, "x" } } do
        local ok, err = pcall(sqorm.poll, args[1], args[2])
        assert.is_false(ok)
        assert.are.equal("usage", err.kind)
        assert.is_truthy(err.message:find("sqorm.poll", 1, true))
      end
    end)

    it("counts pending ops and exposes a pollfd", function()
      local fd = sqorm.pollfd()
      assert.is_true(math.type(fd) == "integer" and fd >= 0)
      assert.are.equal(0, sqorm.pending())
      sqorm.spawn(function() db:query("SELECT 1 AS one") end)
      sqorm.spawn(function() db:query("SELECT 1 AS one") end)
      assert.are.equal(2, sqorm.pending())
      drain()
      assert.are.equal(0, sqorm.pending())
    end)
  end)
end

-- pool.worker_nice: the workers run that many nice levels below the
-- thread that started them (Linux: read back from /proc); the timer and
-- canceller keep its priority. Bad values raise usage at connect.
local function read_file(path)
  local f = io.open(path)
  if not f then return nil end
  local s = f:read("a")
  f:close()
  return s
end

-- The nice value in a /proc/.../stat text: the 17th field after the
-- ")" that ends the thread's name.
local function stat_nice(stat)
  local fields = {}
  for w in stat:match("^.*%)%s*(.*)$"):gmatch("%S+") do fields[#fields + 1] = w end
  return tonumber(fields[17])
end

-- { name = count at each nice } for this process's sqorm threads.
local function sqorm_threads()
  local seen = {}
  local pid = read_file("/proc/self/stat"):match("^(%d+)") -- ours (a popen'd shell has its own /proc/self)
  local ls = io.popen("ls /proc/" .. pid .. "/task")
  for tid in ls:lines() do
    local comm = read_file(("/proc/%s/task/%s/comm"):format(pid, tid))
    local stat = read_file(("/proc/%s/task/%s/stat"):format(pid, tid))
    comm = comm and comm:gsub("%s+$", "")
    if comm and stat and comm:match("^sqorm%-") then
      seen[comm] = seen[comm] or {}
      local n = stat_nice(stat)
      seen[comm][n] = (seen[comm][n] or 0) + 1
    end
  end
  ls:close()
  return seen
end

local linux = read_file("/proc/thread-self/stat") ~= nil

for _, d in ipairs(H.file_dialects()) do
  describe("async pool.worker_nice [" .. d.name .. "]", function()
    after_each(function()
      H.drain()
      if d.path then
        for _, suffix in ipairs { "", "-wal", "-shm" } do os.remove(d.path .. suffix) end
      end
    end)

    it("refuses a value outside 0..19 with usage naming the option", function()
      for _, v in ipairs { 20, -1, 1.5, "ten", true, {} } do
        H.raises_kind("usage", "pool.worker_nice", sqorm.connect, d.url,
          { async = true, pool = { worker_nice = v } })
      end
      local url = d.url .. (d.url:find("?", 1, true) and "&" or "?") .. "pool.worker_nice=42"
      H.raises_kind("usage", "pool.worker_nice", sqorm.connect, url)
    end)

    it("refuses a second connect of a named pool with another value", function()
      local name = "nice_" .. d.name
      local a = sqorm.connect(d.url, { name = name, async = true, pool = { worker_nice = 5 } })
      H.raises_kind("usage", "pool.worker_nice 5 vs 6", sqorm.connect, d.url,
        { name = name, async = true, pool = { worker_nice = 6 } })
      local b = sqorm.connect(d.url, { name = name, async = true, pool = { worker_nice = 5 } })
      b:close()
      a:close()
    end)

    it("runs the worker threads at the given nice, timer and canceller at the caller's", function()
      if not linux then return pending("needs Linux /proc") end
      local base = stat_nice(read_file("/proc/thread-self/stat"))
      local want = math.min(base + 13, 19)
      local db = sqorm.connect(d.url, { async = true, pool = { max = 3, worker_nice = 13 } })
      sqorm.spawn(function() assert(db:query("SELECT 1 AS one")[1].one) end)
      H.drain()
      -- each worker lowers itself as it starts: give the other two a moment
      local seen
      for _ = 1, 200 do
        seen = sqorm_threads()
        if (seen["sqorm-worker"] or {})[want] == 3 then break end
        sqorm.spawn(function() db:query("SELECT 1 AS one") end)
        H.drain()
      end
      assert.are.equal(3, seen["sqorm-worker"][want])
      for _, svc in ipairs { "sqorm-timer", "sqorm-cancel" } do
        for nice, count in pairs(seen[svc]) do
          assert.are.equal(base, nice, ("%d %s thread(s) at nice %d"):format(count, svc, nice))
        end
      end
      assert.are.equal(base, stat_nice(read_file("/proc/thread-self/stat"))) -- the Lua thread's own
      db:close()
    end)
  end)
end
