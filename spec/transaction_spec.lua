-- db:transaction / db:begin: commit, rollback, savepoints, the coroutine
-- rule, and connections always going back to the pool.
local sqorm = require "sqorm"
local H = require "spec.helper"

H.each_dialect(describe, function(d)
  local db, t

  before_each(function()
    -- One connection: a statement that went to the pool instead of the
    -- transaction's connection would time out at once.
    db = sqorm.connect(d.url, { pool = { max = 1, acquire_timeout = 0.2 } })
    t = H.tname("tx")
    db:exec(("CREATE TABLE %s (id INTEGER PRIMARY KEY, coins INTEGER)"):format(t))
    db:exec(("INSERT INTO %s VALUES (1, 100), (2, 100)"):format(t))
  end)

  after_each(function()
    pcall(db.exec, db, "DROP TABLE " .. t)
    db:close()
  end)

  local function coins(id)
    return db:query(("SELECT coins FROM %s WHERE id = ?"):format(t), { id })[1].coins
  end

  it("commits when fn returns and returns what fn returns", function()
    local a, b = db:transaction(function(tx)
      assert.is_true(tx:is_open())
      db:exec(("UPDATE %s SET coins = coins - 10 WHERE id = 1"):format(t))
      db:exec(("UPDATE %s SET coins = coins + 10 WHERE id = 2"):format(t))
      return "done", 42
    end)
    assert.are.equal("done", a)
    assert.are.equal(42, b)
    assert.are.equal(90, coins(1))
    assert.are.equal(110, coins(2))
    assert.are.equal(0, db:pool_stats().in_use)
  end)

  it("rolls back and re-raises when fn raises", function()
    local ok, err = pcall(db.transaction, db, function()
      db:exec(("UPDATE %s SET coins = 0 WHERE id = 1"):format(t))
      error({ mine = true })
    end)
    assert.is_false(ok)
    assert.is_true(err.mine)
    assert.are.equal(100, coins(1))
    assert.are.equal(0, db:pool_stats().in_use)
  end)

  it("rolls back on an SQL error inside and surfaces it", function()
    local err = H.raises(function()
      db:transaction(function()
        db:exec(("UPDATE %s SET coins = 1 WHERE id = 1"):format(t))
        db:exec(("INSERT INTO %s VALUES (2, 0)"):format(t)) -- duplicate key
      end)
    end)
    assert.are.equal("unique_violation", err.kind)
    assert.are.equal(100, coins(1))
  end)

  it("turns a nested transaction into a savepoint", function()
    db:transaction(function()
      db:exec(("UPDATE %s SET coins = 1 WHERE id = 1"):format(t))
      local ok = pcall(db.transaction, db, function()
        db:exec(("UPDATE %s SET coins = 2 WHERE id = 2"):format(t))
        error("inner fails")
      end)
      assert.is_false(ok)
      assert.are.equal(100, coins(2)) -- the savepoint rolled back
      db:transaction(function() db:exec(("UPDATE %s SET coins = 3 WHERE id = 2"):format(t)) end)
    end)
    assert.are.equal(1, coins(1))
    assert.are.equal(3, coins(2))
  end)

  it("supports the unmanaged form with <close>", function()
    do
      local tx <close> = db:begin()
      db:exec(("UPDATE %s SET coins = 5 WHERE id = 1"):format(t))
      assert.are.equal(5, coins(1))
      -- closed without commit: rolled back
    end
    assert.are.equal(100, coins(1))
    do
      local tx <close> = db:begin()
      db:exec(("UPDATE %s SET coins = 6 WHERE id = 1"):format(t))
      tx:commit()
      H.raises_kind("closed", "already", function() tx:commit() end)
    end
    assert.are.equal(6, coins(1))
    local tx = db:begin()
    db:exec(("UPDATE %s SET coins = 7 WHERE id = 1"):format(t))
    tx:rollback()
    assert.are.equal(6, coins(1))
    assert.is_false(tx:is_open())
  end)

  it("accepts isolation levels and refuses unknown ones", function()
    db:transaction(function() assert.are.equal(100, coins(1)) end, { isolation = "serializable" })
    db:transaction(function() assert.are.equal(100, coins(1)) end, { isolation = "READ COMMITTED" })
    H.raises_kind("usage", "unknown isolation level", function()
      db:transaction(function() end, { isolation = "chaos" })
    end)
    H.raises_kind("usage", "expects a function", function() db:transaction(42) end)
    assert.are.equal(0, db:pool_stats().in_use)
  end)

  it("lets fn yield: the transaction follows its coroutine", function()
    local co = coroutine.wrap(function()
      return db:transaction(function()
        db:exec(("UPDATE %s SET coins = 11 WHERE id = 1"):format(t))
        coroutine.yield("paused")
        db:exec(("UPDATE %s SET coins = 12 WHERE id = 2"):format(t))
        return "finished"
      end)
    end)
    assert.are.equal("paused", co())
    assert.are.equal(1, db:pool_stats().in_use) -- held by the paused transaction
    assert.are.equal("finished", co())
    assert.are.equal(11, coins(1))
    assert.are.equal(12, coins(2))
  end)

  it("returns the connection of a transaction whose coroutine was abandoned", function()
    local co = coroutine.create(function()
      db:transaction(function()
        db:exec(("UPDATE %s SET coins = 0 WHERE id = 1"):format(t))
        coroutine.yield()
      end)
    end)
    coroutine.resume(co)
    assert.are.equal(1, db:pool_stats().in_use)
    co = nil -- luacheck: ignore
    collectgarbage()
    collectgarbage()
    assert.are.equal(0, db:pool_stats().in_use)
    assert.are.equal(100, coins(1)) -- rolled back
  end)

  it("keeps other coroutines off the transaction's connection", function()
    db:transaction(function()
      local co = coroutine.wrap(function() return pcall(db.query, db, "SELECT 1 AS one") end)
      local ok, err = co()
      assert.is_false(ok) -- the only connection is the transaction's
      assert.are.equal("pool_timeout", err.kind)
    end)
  end)
end)
