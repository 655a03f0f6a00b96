-- A Lua state that already holds every connection of its pool would wait
-- for itself (issue 9, item 21): the acquire fails at once with kind
-- pool_timeout naming what holds the connections, instead of after
-- acquire_timeout (30 s by default). Connections held by other states
-- or threads sharing a named pool are an ordinary wait: that side is
-- tests/test_pool.c (self_deadlock).
local sqorm = require "sqorm"
local H = require "spec.helper"
local T = sqorm.types

-- Wall-clock seconds (os.clock counts CPU time, which a wait doesn't use).
local function now()
  local f = assert(io.popen("date +%s.%N"))
  local t = f:read("n")
  f:close()
  return t
end

H.each_dialect(describe, function(d)
  local db, P

  before_each(function()
    -- One connection, and the default acquire_timeout of 30 s.
    db = sqorm.connect(d.url, { pool = { max = 1 } })
    P = db:define("player", {
      { "id", T.INTEGER, primary_key = true, auto_increment = true },
      { "coins", T.INTEGER },
    }, { table_name = H.tname("sd_players"), timestamps = false })
    P:sync{ force = true }
    local recs = {}
    for i = 1, 50 do recs[i] = { coins = i } end
    P:bulk_create(recs)
  end)

  after_each(function()
    collectgarbage()
    collectgarbage()
    pcall(P.drop, P)
    db:close()
  end)

  -- Runs fn, which must raise pool_timeout at once; returns the message.
  local function fails_at_once(fn)
    local t0 = now()
    local err = H.raises_kind("pool_timeout", "held by this Lua state", fn)
    local took = now() - t0
    assert.is_true(took < 1, ("the call waited %.3f s"):format(took))
    assert.truthy(err.message:find("max 1", 1, true), err.message)
    assert.truthy(err.message:find("wait for itself", 1, true), err.message)
    return err.message
  end

  it("a query from another coroutine while one holds a transaction", function()
    local co = coroutine.create(function()
      db:transaction(function()
        P:count()
        coroutine.yield()
      end)
    end)
    assert(coroutine.resume(co))
    local msg = fails_at_once(function() db:query("SELECT 1 AS one") end)
    assert.truthy(msg:find("a transaction opened by coroutine 0x", 1, true)
               or msg:find("a transaction opened by coroutine ", 1, true), msg)
    fails_at_once(function() P:count() end)
    assert(coroutine.resume(co)) -- commits: the connection is free again
    assert.are.equal(50, P:count())
    assert.are.equal(2, db:pool_stats().timeouts)
  end)

  it("a coroutine's query while the main thread holds a transaction", function()
    db:transaction(function()
      local co = coroutine.wrap(function() return pcall(db.query, db, "SELECT 1 AS one") end)
      local t0 = now()
      local ok, err = co()
      assert.is_false(ok)
      assert.are.equal("pool_timeout", err.kind)
      assert.is_true(now() - t0 < 1)
      assert.truthy(err.message:find("a transaction opened by the main thread", 1, true), err.message)
    end)
  end)

  it("an abandoned each() iterator holding the only connection", function()
    local iter = P:each{ order = { "id" } }
    assert.are.equal(1, iter().id)
    local msg = fails_at_once(function() P:count() end)
    assert.truthy(msg:find("an each() cursor of model 'player'", 1, true), msg)
    iter = nil -- luacheck: ignore
    collectgarbage()
    collectgarbage()
    assert.are.equal(50, P:count()) -- the collector gave the connection back
    assert.are.equal(0, db:pool_stats().in_use)
  end)

  it("an each() loop whose body queries outside a transaction", function()
    local n = 0
    local msg = fails_at_once(function()
      for p in P:each{} do
        n = n + 1
        P:find_by_pk(p.id)
      end
    end)
    assert.are.equal(1, n)
    assert.truthy(msg:find("each() cursor", 1, true), msg)
    assert.are.equal(0, db:pool_stats().in_use)
  end)

  it("two handles on one named pool in the same state", function()
    local name = H.tname("sd_pool")
    local a = sqorm.connect(d.url, { name = name, pool = { max = 1 } })
    local b = sqorm.connect(d.url, { name = name, pool = { max = 1 } })
    local tx = a:begin()
    fails_at_once(function() b:query("SELECT 1 AS one") end)
    tx:commit()
    assert.are.equal(1, b:query("SELECT 1 AS one")[1].one)
    a:close()
    b:close()
  end)

  it("a state holding some but not all connections just takes another", function()
    if d.name == "sqlite" then return end -- :memory: is always one connection
    local db2 = sqorm.connect(d.url, { pool = { max = 2 } })
    local tx = db2:begin()
    local co = coroutine.wrap(function() return db2:query("SELECT 1 AS one")[1].one end)
    assert.are.equal(1, co())
    tx:commit()
    assert.are.equal(0, db2:pool_stats().timeouts)
    db2:close()
  end)
end)
