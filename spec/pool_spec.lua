-- The connection pool seen from Lua: exhaustion, statistics, eviction,
-- recycling, dead connections (pre_ping, the retry of reads, killed
-- transactions, a server restart), no leaks under errors or abandoned
-- coroutines, named pools, and `max` checked on the server's own list of
-- sessions.
--
-- Every test runs on every dialect where it means something: SQLite uses a
-- file database (":memory:" pools are forced to one connection), the
-- tests that kill or restart servers run on MySQL and PostgreSQL only.
-- The threaded side (8 threads x 200 queries, under TSan too) is
-- tests/test_pool_live.c; waiter order is tests/test_pool.c.
local sqorm = require "sqorm"
local H = require "spec.helper"

-- Wall-clock seconds with sub-second precision (os.time counts whole
-- seconds, os.clock counts CPU time, which a blocked wait doesn't use).
local function now()
  local f = assert(io.popen("date +%s.%N"))
  local t = f:read("n")
  f:close()
  return t
end

local function sleep(s)
  os.execute(("sleep %.3f"):format(s))
end

-- The repository root, for scripts/test-servers.sh.
local root = (debug.getinfo(1, "S").source:match("^@(.*)spec/pool_spec%.lua$") or "")

-- Per dialect: the statement that names the current session, killing a
-- session by that id, and counting the sessions of the test user.
local server = {
  mysql = {
    pid = "SELECT CONNECTION_ID() AS pid",
    kill = function(admin, pid) admin:exec("KILL " .. math.tointeger(pid)) end,
    sessions = "SELECT count(*) AS n FROM information_schema.PROCESSLIST WHERE USER = ?",
    user = function() return os.getenv("SQORM_TEST_MYSQL_USER") end,
  },
  postgres = {
    pid = "SELECT pg_backend_pid() AS pid",
    kill = function(admin, pid) admin:query("SELECT pg_terminate_backend(CAST(? AS integer)) AS ok", { pid }) end,
    sessions = "SELECT count(*) AS n FROM pg_stat_activity WHERE usename = ?",
    user = function() return os.getenv("SQORM_TEST_PG_USER") end,
  },
}

-- Runs n coroutines that each open a transaction (so n connections are
-- checked out at once), run `sql` in it and yield. Returns the list of
-- what each query returned and a function that commits them all.
local function hold(db, n, sql)
  local cos, got = {}, {}
  for i = 1, n do
    local co = coroutine.create(function()
      local tx = db:begin()
      got[i] = db:query(sql or "SELECT 1 AS one")
      coroutine.yield()
      tx:commit()
    end)
    local ok, err = coroutine.resume(co)
    assert(ok, tostring(err))
    cos[i] = co
  end
  return got, function()
    for i = 1, n do
      local ok, err = coroutine.resume(cos[i])
      assert(ok, tostring(err))
    end
  end
end

H.each_dialect(describe, function(d)
  local srv = server[d.name]
  local url, file, t
  local dbs -- every db a test opens, closed by after_each

  local function connect(pool, extra)
    local opts = { pool = pool }
    for k, v in pairs(extra or {}) do opts[k] = v end
    local db = sqorm.connect(url, opts)
    dbs[#dbs + 1] = db
    return db
  end

  local function coins(db, id)
    return db:query(("SELECT coins FROM %s WHERE id = ?"):format(t), { id or 1 })[1].coins
  end

  before_each(function()
    dbs = {}
    if d.name == "sqlite" then
      file = os.tmpname()
      url = "sqlite:" .. file
    else
      url = d.url
    end
    t = H.tname("pool")
    local db = connect({ max = 1 })
    db:exec(("CREATE TABLE %s (id INTEGER PRIMARY KEY, coins INTEGER NOT NULL)"):format(t))
    db:exec(("INSERT INTO %s (id, coins) VALUES (1, 100), (2, 100)"):format(t))
  end)

  after_each(function()
    for _, db in ipairs(dbs) do db:close() end
    collectgarbage() -- transactions a failed test left open roll back
    collectgarbage()
    if file then
      for _, suffix in ipairs { "", "-journal", "-wal", "-shm" } do os.remove(file .. suffix) end
      file = nil
    else
      -- A lock timeout, so a transaction left open can't hang the run.
      local db = sqorm.connect(url, { pool = { max = 1, pre_ping = true } })
      pcall(db.exec, db, d.name == "mysql" and "SET lock_wait_timeout = 5" or "SET lock_timeout = '5s'")
      pcall(db.exec, db, "DROP TABLE " .. t)
      db:close()
    end
  end)

  it("opens pool.min connections at connect, before any call; min = 0 opens none", function()
    local db = connect({ max = 4, min = 3 })
    local st = db:pool_stats()
    assert.are.same({ 3, 3, 0, 3, 3 }, { st.size, st.idle, st.in_use, st.created, st.min })
    assert.are.equal(100, tonumber(coins(db))) -- served by one of them: nothing more is opened
    assert.are.equal(3, db:pool_stats().created)
    local lazy = connect({ max = 4 })
    assert.are.same({ 0, 0 }, { lazy:pool_stats().size, lazy:pool_stats().created })
    -- the same in async mode: opened by connect on the calling thread
    local adb = connect({ max = 4, min = 2 }, { async = true })
    assert.are.same({ 2, 2 }, { adb:pool_stats().created, adb:pool_stats().idle })
    assert.are.equal(100, tonumber(sqorm.run(function() return coins(adb) end)))
    assert.are.equal(2, adb:pool_stats().created)
    H.raises_kind("usage", "pool.min (5) is larger than pool.max (4)", function() connect({ max = 4, min = 5 }) end)
  end)

  if d.name ~= "sqlite" then
    it("with pool.min, a server that does not answer fails the connect (kind connection)", function()
      local dead = url:gsub(":%d+/", ":1/", 1)
      assert.are_not.equal(url, dead)
      H.raises_kind("connection", nil, function() sqorm.connect(dead, { pool = { max = 2, min = 1 } }) end)
      local db = connect({ max = 2 }) -- (a live one with min = 0, for contrast: no I/O at connect)
      local late = sqorm.connect(dead, { pool = { max = 2 } })
      H.raises_kind("connection", nil, function() late:query("SELECT 1") end)
      late:close()
      assert.are.equal(0, db:pool_stats().created)
    end)
  end

  it("raises pool_timeout at once when this state holds every connection (it would wait for itself)", function()
    local db = connect({ max = 1, acquire_timeout = 30 })
    -- A transaction pins the one connection; a statement from another
    -- coroutine (here the main one) could only get it when that
    -- transaction ends, which can't happen while this state waits. (The
    -- ordinary wait for connections held elsewhere - other states or
    -- threads sharing a named pool - is tests/test_pool.c.)
    local _, finish = hold(db, 1)
    local t0 = now()
    local err = H.raises_kind("pool_timeout", "held by this Lua state", function()
      db:query("SELECT 1 AS one")
    end)
    local waited = now() - t0
    assert.is_true(waited < 1, ("gave up after %.3f s"):format(waited))
    assert.truthy(err.message:find("max 1", 1, true))
    assert.truthy(err.message:find("a transaction opened by coroutine", 1, true))
    local st = db:pool_stats()
    assert.are.equal(1, st.timeouts)
    assert.are.equal(0, st.waited)
    assert.are.equal(1, st.in_use)
    assert.are.equal(0, st.waiting)
    finish()
    assert.are.equal(1, db:query("SELECT 1 AS one")[1].one)
    assert.are.equal(0, db:pool_stats().in_use)
  end)

  it("does not wait at all with acquire_timeout = 0", function()
    local db = connect({ max = 1, acquire_timeout = 0 })
    local _, finish = hold(db, 1)
    local t0 = now()
    H.raises_kind("pool_timeout", "max 1", function() db:exec("SELECT 1") end)
    assert.is_true(now() - t0 < 1) -- (now() itself starts a process: slow under ASan)
    finish()
  end)

  it("reports every pool_stats field", function()
    local db = connect({ max = 3, min = 0 })
    local st = db:pool_stats()
    for _, k in ipairs { "size", "idle", "in_use", "waiting", "created", "destroyed", "timeouts", "waited", "max", "min" } do
      assert.are.equal("integer", math.type(st[k]), "pool_stats()." .. k)
    end
    assert.same({ size = 0, idle = 0, in_use = 0, waiting = 0, created = 0, destroyed = 0, timeouts = 0,
                  waited = 0, max = 3, min = 0 }, st)
    db:query("SELECT 1 AS one")
    st = db:pool_stats()
    assert.are.same({ 1, 1, 0, 1, 0 }, { st.size, st.idle, st.in_use, st.created, st.destroyed })
    db:transaction(function()
      local s = db:pool_stats()
      assert.are.same({ 1, 0, 1 }, { s.size, s.idle, s.in_use })
    end)
    local _, finish = hold(db, 3)
    st = db:pool_stats()
    assert.are.same({ 3, 0, 3, 3 }, { st.size, st.idle, st.in_use, st.created })
    finish()
    st = db:pool_stats()
    assert.are.same({ 3, 3, 0, 0 }, { st.size, st.idle, st.in_use, st.waiting })
  end)

  it("evicts idle connections past idle_timeout down to min", function()
    local db = connect({ max = 3, min = 1, idle_timeout = 0.2 })
    local _, finish = hold(db, 3)
    finish()
    local st = db:pool_stats()
    assert.are.same({ 3, 3, 3, 0 }, { st.size, st.idle, st.created, st.destroyed })
    sleep(0.5)
    db:query("SELECT 1 AS one") -- an acquire runs the eviction
    st = db:pool_stats()
    assert.are.equal(1, st.size, "size after eviction")
    assert.are.equal(2, st.destroyed, "destroyed after eviction")
    assert.are.equal(3, st.created, "the survivor was reused, not reopened")
    assert.are.equal(0, st.in_use)
  end)

  it("recycles connections older than max_lifetime", function()
    local db = connect({ max = 2, max_lifetime = 0.4 })
    local pid1 = srv and db:query(srv.pid)[1].pid or db:query("SELECT 1 AS one")[1].one
    assert.are.equal(1, db:pool_stats().created)
    -- Still young: the same connection again.
    if srv then assert.are.equal(pid1, db:query(srv.pid)[1].pid) end
    sleep(0.6)
    local pid2 = srv and db:query(srv.pid)[1].pid or db:query("SELECT 1 AS one")[1].one
    if srv then assert.are_not.equal(pid1, pid2, "a new server session after max_lifetime") end
    local st = db:pool_stats()
    assert.are.equal(2, st.created)
    assert.are.equal(1, st.destroyed)
    assert.are.equal(1, st.size)
    assert.are.equal(0, st.in_use)
  end)

  it("leaks no connection through 10,000 raised errors", function()
    local db = connect({ max = 2, acquire_timeout = 1 })
    local raised = 0
    local upd = ("UPDATE %s SET coins = coins + 1 WHERE id = 1"):format(t)
    local ins = ("INSERT INTO %s (id, coins) VALUES (2, 0)"):format(t) -- duplicate key
    local cases = {
      function() db:query("SELEC 1") end,                                   -- syntax, from the server
      function() db:query("SELECT ? AS a, ? AS b", { 1 }) end,              -- too few binds
      function() db:exec("SELECT :a AS a", { a = {} }) end,                 -- a bind that isn't a value
      function() db:transaction(function() db:exec(upd); error("boom") end) end, -- Lua error inside
      function() db:transaction(function() db:exec(upd); db:exec(ins) end) end,  -- SQL error inside
      function()
        db:transaction(function()
          db:exec(upd)
          db:transaction(function() db:exec(upd); error({ nested = true }) end)
        end)
      end,
      function() local tx <close> = db:begin(); db:exec(upd); db:query("SELECT nope FROM " .. t) end,
      function() for _ in pairs(db:query("SELECT coins FROM " .. t)) do error("in a loop") end end,
    }
    for i = 1, 10000 do
      local ok = pcall(cases[i % #cases + 1])
      if not ok then raised = raised + 1 end
    end
    assert.are.equal(10000, raised)
    local st = db:pool_stats()
    assert.are.equal(0, st.in_use)
    assert.are.equal(0, st.waiting)
    assert.is_true(st.size <= 2)
    assert.are.equal(100, coins(db), "every transaction rolled back")
  end)

  it("gets the connection of an abandoned coroutine back after collectgarbage()", function()
    local db = connect({ max = 2, acquire_timeout = 0.5 })
    -- One at a time: SQLite lets only one connection write.
    local function abandon(body)
      local co = coroutine.create(body)
      assert(coroutine.resume(co))
      assert.are.equal(1, db:pool_stats().in_use)
      co = nil
      collectgarbage()
      collectgarbage()
      assert.are.equal(0, db:pool_stats().in_use)
    end
    abandon(function() -- the unmanaged form
      local tx = db:begin()
      db:exec(("UPDATE %s SET coins = 0 WHERE id = 1"):format(t))
      coroutine.yield()
      tx:commit()
    end)
    assert.are.equal(100, coins(db, 1), "the abandoned transaction rolled back")
    abandon(function()
      db:transaction(function()
        db:exec(("UPDATE %s SET coins = 0 WHERE id = 2"):format(t))
        coroutine.yield()
      end)
    end)
    assert.are.equal(100, coins(db, 2), "the abandoned db:transaction rolled back")
    local st = db:pool_stats()
    assert.are.equal(0, st.in_use)
    assert.is_true(st.size <= 2)
  end)

  it("shares a named pool between connects and refuses conflicting settings", function()
    local name = H.tname("shared")
    local opts = { url = url, name = name, pool = { max = 2, acquire_timeout = 1 } }
    local a = sqorm.connect(opts)
    local b = sqorm.connect(opts)
    dbs[#dbs + 1], dbs[#dbs + 2] = a, b
    assert.are.equal(0, b:pool_stats().created)
    a:query("SELECT 1 AS one")
    assert.are.equal(1, b:pool_stats().created, "b sees the connection a opened")
    b:query("SELECT 1 AS one")
    assert.are.equal(1, a:pool_stats().created, "b reused a's idle connection")
    -- The URL + options form names the same pool.
    local c = sqorm.connect(url, { name = name, pool = { max = 2, acquire_timeout = 1 } })
    dbs[#dbs + 1] = c
    assert.are.equal(1, c:pool_stats().created)
    -- max is shared too: two transactions through a and b fill it for c.
    local _, fa = hold(a, 1)
    local _, fb = hold(b, 1)
    assert.are.equal(2, c:pool_stats().in_use)
    fa()
    fb()
    H.raises_kind("usage", "already exists with different settings (pool.max 2 vs 3)", function()
      sqorm.connect { url = url, name = name, pool = { max = 3, acquire_timeout = 1 } }
    end)
    H.raises_kind("usage", "pre_ping", function()
      sqorm.connect { url = url, name = name, pool = { max = 2, acquire_timeout = 1, pre_ping = true } }
    end)
    -- Closing one handle leaves the pool to the others.
    a:close()
    assert.are.equal(1, b:query("SELECT 1 AS one")[1].one)
    assert.are.equal(0, c:pool_stats().in_use)
  end)

  if not srv then return end

  -- Kills the server sessions with the given ids through an independent
  -- connection, and waits until the server no longer lists them.
  local function kill(pids)
    local admin = sqorm.connect(url, { pool = { max = 1 } })
    for _, pid in ipairs(pids) do srv.kill(admin, pid) end
    admin:close()
    sleep(0.1)
  end

  local function pids_of(got)
    local list = {}
    for i, rows in ipairs(got) do list[i] = rows[1].pid end
    return list
  end

  it("replaces connections the server killed, with pre_ping", function()
    local db = connect({ max = 3, pre_ping = true })
    local got, finish = hold(db, 3, srv.pid)
    finish()
    kill(pids_of(got))
    local destroyed = db:pool_stats().destroyed
    assert.are.equal(100, coins(db))
    assert.is_true(db:pool_stats().destroyed > destroyed, "the dead connection was discarded")
    -- Writes too: pre_ping found the dead one before the statement.
    db:exec(("UPDATE %s SET coins = coins + 1 WHERE id = 1"):format(t))
    assert.are.equal(101, coins(db))
    local _, finish2 = hold(db, 3) -- every slot usable again
    finish2()
    local st = db:pool_stats()
    assert.are.equal(0, st.in_use)
    assert.are.equal(3, st.size)
  end)

  it("retries a read once without pre_ping, but never a write", function()
    local db = connect({ max = 3 })
    local got, finish = hold(db, 3, srv.pid)
    finish()
    kill(pids_of(got))
    -- Every idle connection is dead; the read still succeeds.
    assert.are.equal(100, coins(db))
    assert.are.equal(0, db:pool_stats().in_use)
    got, finish = hold(db, 3, srv.pid)
    finish()
    kill(pids_of(got))
    local upd = ("UPDATE %s SET coins = coins + 1 WHERE id = 1"):format(t)
    H.raises_kind("connection", nil, function() db:exec(upd) end)
    assert.are.equal(100, coins(db), "the failed write did not happen")
    db:exec(upd)
    assert.are.equal(101, coins(db))
    assert.are.equal(0, db:pool_stats().in_use)
  end)

  it("ends a transaction whose connection was killed, without re-running it", function()
    local db = connect({ max = 2 })
    local runs = 0
    local err = H.raises_kind("connection", nil, function()
      db:transaction(function()
        runs = runs + 1
        db:exec(("UPDATE %s SET coins = 1 WHERE id = 1"):format(t))
        kill({ db:query(srv.pid)[1].pid })
        db:exec(("UPDATE %s SET coins = 2 WHERE id = 2"):format(t))
      end)
    end)
    assert.are.equal(1, runs, "the transaction ran once")
    assert.are.equal(100, coins(db, 1))
    assert.are.equal(100, coins(db, 2))
    -- The unmanaged form: the statement fails, and so does the commit.
    local tx = db:begin()
    db:exec(("UPDATE %s SET coins = 3 WHERE id = 1"):format(t))
    kill({ db:query(srv.pid)[1].pid })
    H.raises_kind("connection", nil, function() db:query("SELECT 1 AS one") end)
    H.raises_kind("connection", "nothing was committed", function() tx:commit() end)
    assert.is_false(tx:is_open())
    assert.are.equal(100, coins(db, 1))
    assert.are.equal(0, db:pool_stats().in_use)
    assert.truthy(tostring(err))
  end)

  it("recovers from a server restart in the middle of a run", function()
    local dir = os.getenv("SQORM_TEST_DIR")
    if not dir then
      pending("SQORM_TEST_DIR is not set: the test servers weren't started by scripts/test-servers.sh")
      return
    end
    local pinged = connect({ max = 3, pre_ping = true })
    local plain = connect({ max = 3 })
    local upd = ("UPDATE %s SET coins = coins + 1 WHERE id = 1"):format(t)
    local _, f1 = hold(pinged, 3)
    f1()
    local _, f2 = hold(plain, 3)
    f2()
    for i = 1, 20 do
      if i == 11 then
        -- Without the sanitizer runtime a sanitized run preloads: the
        -- restarted server must not inherit it.
        local cmd = ("env -u LD_PRELOAD -u ASAN_OPTIONS -u UBSAN_OPTIONS SQORM_TEST_DIR='%s' "
          .. "'%sscripts/test-servers.sh' restart %s >/dev/null 2>&1"):format(dir, root, d.name)
        assert.is_true(os.execute(cmd), "scripts/test-servers.sh restart " .. d.name)
      end
      pinged:exec(upd)
      assert.are.equal(100 + i, coins(pinged))
    end
    -- Without pre_ping, reads are retried on a fresh connection.
    assert.are.equal(120, coins(plain))
    assert.are.equal(100, coins(plain, 2))
    for _, db in ipairs { pinged, plain } do
      local _, f = hold(db, 3)
      f()
      local st = db:pool_stats()
      assert.are.equal(0, st.in_use)
      assert.are.equal(3, st.size)
    end
  end)

  it("never has more than max sessions on the server", function()
    collectgarbage() -- close what earlier tests left open
    collectgarbage()
    local admin = sqorm.connect(url, { pool = { max = 1 } })
    dbs[#dbs + 1] = admin
    local function sessions()
      return admin:query(srv.sessions, { srv.user() })[1].n
    end
    local base = sessions() -- counts the admin's own session
    local db = connect({ max = 4, acquire_timeout = 0.1 })
    local held, timeouts = {}, 0
    for i = 1, 6 do
      local co = coroutine.create(function()
        local tx = db:begin()
        db:query("SELECT 1 AS one")
        coroutine.yield()
        tx:commit()
      end)
      local ok, err = coroutine.resume(co)
      if ok then held[#held + 1] = co
      else
        assert.are.equal("pool_timeout", err.kind)
        timeouts = timeouts + 1
      end
      assert.is_true(sessions() - base <= 4, "more than max sessions on the server")
    end
    assert.are.equal(4, #held)
    assert.are.equal(2, timeouts)
    assert.is_true(sessions() >= 4 + 1, "the server lists the 4 held sessions and the admin's")
    assert.are.equal(4, db:pool_stats().in_use)
    for _, co in ipairs(held) do assert(coroutine.resume(co)) end
    -- Interleaved statements and transactions from many coroutines.
    local cos = {}
    for i = 1, 16 do
      cos[i] = coroutine.create(function()
        for _ = 1, 10 do
          if i % 2 == 0 then
            db:transaction(function()
              -- A read: writers to one row would wait on each other's
              -- row locks, and these coroutines share one thread.
              db:query(("SELECT coins FROM %s WHERE id = 2"):format(t))
              coroutine.yield()
            end)
          else
            db:query("SELECT 1 AS one")
            coroutine.yield()
          end
        end
      end)
    end
    local live = #cos
    while live > 0 do
      live = 0
      for _, co in ipairs(cos) do
        if coroutine.status(co) == "suspended" then
          local ok, err = coroutine.resume(co)
          -- More transactions than max may be open at once: a coroutine
          -- that finds the pool full times out and stops.
          if not ok then assert.are.equal("pool_timeout", err.kind) end
          if coroutine.status(co) == "suspended" then live = live + 1 end
        end
      end
      assert.is_true(sessions() - base <= 4, "more than max sessions on the server")
    end
    local st = db:pool_stats()
    assert.are.equal(0, st.in_use)
    assert.is_true(st.size <= 4)
    assert.is_true(st.created <= 4)
  end)
end)
