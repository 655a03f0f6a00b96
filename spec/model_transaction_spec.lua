-- Models inside transactions: every model call made by the coroutine
-- inside db:transaction runs on the transaction's connection (commit on
-- return, rollback and re-raise on error); nested transactions are
-- savepoints; db:begin with <close>; other coroutines stay outside.
local sqorm = require "sqorm"
local H = require "spec.helper"
local M = require "spec.model_helper"

H.each_dialect(describe, function(d)
  local db, log, P

  before_each(function()
    db, log = M.connect(d, { pool = { max = 3 } })
    P = M.players(db)
    P:sync{ force = true }
    -- ids 1 and 2 of the fresh table (generated: explicit keys would not
    -- move PostgreSQL's sequence, and later generated keys would collide)
    P:bulk_create{ { name = "a", coins = 100 }, { name = "b", coins = 100 } }
  end)

  after_each(function()
    M.cleanup(db, P)
  end)

  local function coins(id) return P:find_by_pk(id).coins end

  it("commits when the function returns, and returns what it returns", function()
    local r1, r2 = db:transaction(function(tx)
      assert.is_not_nil(tx)
      local a = P:find_by_pk(1, { lock = "update" })
      a:update{ coins = a.coins - 10 }
      P:increment({ coins = 10 }, { where = { id = 2 } })
      P:create{ id = 3, name = "c" }
      return "done", 7
    end)
    assert.are.same({ "done", 7 }, { r1, r2 })
    assert.are.same({ 90, 110 }, { coins(1), coins(2) })
    assert.are.equal(3, P:count())
    assert.are.equal(0, db:pool_stats().in_use)
  end)

  it("rolls back every model write and re-raises on error", function()
    local ok, err = pcall(db.transaction, db, function()
      P:update({ coins = 0 }, { all = true })
      P:create{ name = "c" }
      P:bulk_create{ { name = "d" }, { name = "e" } }
      P:destroy{ where = { id = 1 } }
      error("abort")
    end)
    assert.is_false(ok)
    assert.matches("abort", tostring(err))
    assert.are.same({ 100, 100 }, { coins(1), coins(2) })
    assert.are.equal(2, P:count())
  end)

  it("a failing statement inside rolls everything back and raises its error", function()
    local ok, err = pcall(db.transaction, db, function()
      P:create{ id = 3, name = "c" }
      P:create{ id = 4, name = "a" } -- duplicate name
    end)
    assert.is_false(ok)
    assert.are.equal("unique_violation", err.kind)
    assert.are.equal(2, P:count())
  end)

  it("uses one connection: reads see the transaction's own writes", function()
    db:transaction(function()
      P:create{ id = 3, name = "c", coins = 5 }
      assert.are.equal(5, coins(3))
      assert.are.equal(3, P:count())
      assert.are.equal(1, db:pool_stats().in_use)
      local _, created = P:find_or_create{ where = { name = "c" } }
      assert.is_false(created)
      assert.are.equal(3, #P:find_all())
    end)
  end)

  it("a nested transaction is a savepoint", function()
    db:transaction(function()
      P:update({ coins = 1 }, { where = { id = 1 } })
      local ok = pcall(db.transaction, db, function()
        P:update({ coins = 2 }, { where = { id = 1 } })
        error("inner")
      end)
      assert.is_false(ok)
      assert.are.equal(1, coins(1))
      db:transaction(function()
        P:update({ coins = 3 }, { where = { id = 2 } })
      end)
    end)
    assert.are.same({ 1, 3 }, { coins(1), coins(2) })
  end)

  it("bulk_create of several batches inside a transaction uses a savepoint", function()
    db:transaction(function()
      local recs = {}
      for i = 1, 5 do recs[i] = { name = "x" .. i } end
      recs[5].name = "a" -- duplicate: this bulk_create fails whole
      local ok, err = pcall(P.bulk_create, P, recs, { batch_size = 2 })
      assert.is_false(ok)
      assert.are.equal("unique_violation", err.kind)
      if d.name ~= "postgres" then
        -- the transaction goes on (postgres: the savepoint rolled back, too)
        assert.are.equal(2, P:count())
      end
      P:create{ name = "after" }
    end)
    assert.are.equal(3, P:count())
  end)

  it("db:begin with <close> rolls back unless committed", function()
    do
      local tx <close> = db:begin()
      P:create{ id = 3, name = "c" }
      assert.are.equal(3, P:count())
    end
    assert.are.equal(2, P:count())
    do
      local tx <close> = db:begin()
      P:create{ id = 3, name = "c" }
      tx:commit()
    end
    assert.are.equal(3, P:count())
  end)

  it("other coroutines don't join the transaction", function()
    if d.name == "sqlite" then return end -- one writer: the other connection would wait for the lock
    db:transaction(function()
      P:create{ id = 3, name = "c" }
      local seen = coroutine.wrap(function() return P:count() end)()
      assert.are.equal(2, seen) -- not committed yet, seen from another connection
    end)
    assert.are.equal(3, P:count())
  end)

  it("logs every statement of the transaction", function()
    M.clear(log)
    db:transaction(function() P:find_by_pk(1) end)
    local sql = table.concat(M.statements(log), "\n")
    assert.matches("SELECT", sql, 1, true)
  end)
end)
