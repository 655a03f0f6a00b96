-- Model:each streams rows on one connection, released at the end of the
-- loop, on break, on error, and by the garbage collector when a coroutine
-- abandons the loop; inside a transaction it streams on the transaction's
-- connection.
local sqorm = require "sqorm"
local H = require "spec.helper"
local M = require "spec.model_helper"
local op = sqorm.op

H.each_dialect(describe, function(d)
  local db, log, P

  setup(function()
    db, log = M.connect(d, { pool = { max = 2 } })
    P = M.players(db)
    P:sync{ force = true }
    local recs = {}
    for i = 1, 300 do recs[i] = { name = "p" .. i, coins = i, goods = i % 7 } end
    P:bulk_create(recs)
  end)

  teardown(function()
    M.cleanup(db, P)
  end)

  local function in_use() return db:pool_stats().in_use end

  it("streams every matching row as an instance, holding one connection", function()
    local n, sum, held = 0, 0, nil
    for p in P:each{ where = { coins = op.gt(100) }, order = { "id" } } do
      n = n + 1
      sum = sum + p.coins
      held = held or in_use()
      assert.are.equal("p" .. p.coins, p.name)
    end
    assert.are.equal(200, n)
    assert.are.equal((101 + 300) * 200 // 2, sum)
    assert.are.equal(1, held)
    assert.are.equal(0, in_use())
  end)

  it("instances from each are full instances", function()
    for p in P:each{ where = { id = 1 } } do
      assert.is_function(p.save)
      assert.are.same({}, {}) -- (no changes)
      assert.is_false(p:changed())
    end
  end)

  it("raw = true streams plain tables; attributes narrow them", function()
    local rows = {}
    for r in P:each{ raw = true, attributes = { "id", "name" }, where = { id = op.lte(3) }, order = { "id" } } do
      rows[#rows + 1] = r
    end
    assert.are.same({ { id = 1, name = "p1" }, { id = 2, name = "p2" }, { id = 3, name = "p3" } }, rows)
  end)

  it("break releases the connection at once", function()
    local n = 0
    for _ in P:each{} do
      n = n + 1
      if n == 10 then break end
    end
    assert.are.equal(10, n)
    assert.are.equal(0, in_use())
    -- and the connection is usable again
    assert.are.equal(300, P:count())
  end)

  it("an error in the loop body releases the connection", function()
    local ok = pcall(function()
      for p in P:each{} do
        if p.id == 5 then error("boom") end
      end
    end)
    assert.is_false(ok)
    assert.are.equal(0, in_use())
  end)

  it("a coroutine abandoned mid-loop releases its connection when collected", function()
    local co = coroutine.wrap(function()
      for p in P:each{} do coroutine.yield(p.id) end
    end)
    assert.are.equal(1, co())
    assert.are.equal(2, co())
    assert.are.equal(1, in_use())
    co = nil
    collectgarbage()
    collectgarbage()
    assert.are.equal(0, in_use())
  end)

  it("streams on the transaction's connection inside db:transaction", function()
    local ok, err = pcall(db.transaction, db, function()
      P:create{ name = "in-tx", coins = 1000 }
      local seen = false
      for p in P:each{ where = { coins = op.gte(1000) } } do
        seen = p.name == "in-tx"
      end
      assert.is_true(seen)
      assert.are.equal(1, in_use()) -- only the transaction's
      error("roll back")
    end)
    assert.is_false(ok)
    assert.matches("roll back", tostring(err))
  end)

  it("leaves nothing held after the transaction above", function()
    assert.are.equal(0, in_use())
    assert.are.equal(0, P:count{ where = { name = "in-tx" } })
  end)

  it("checks its options before taking a connection", function()
    M.clear(log)
    M.fails(log, "usage", "no column", function() P:each{ where = { nope = 1 } } end)
    M.fails(log, "usage", "limit", function() P:each{ limit = -1 } end)
    assert.are.same({}, M.statements(log))
    assert.are.equal(0, in_use())
  end)

  it("streams many rows with bounded memory", function()
    local recs = {}
    for i = 1, 5000 do recs[i] = { coins = i } end
    P:bulk_create(recs)
    collectgarbage()
    local before = collectgarbage("count")
    local n, peak = 0, 0
    for _ in P:each{} do
      n = n + 1
      if n % 500 == 0 then peak = math.max(peak, collectgarbage("count") - before) end
    end
    assert.are.equal(5300, n)
    assert.is_true(peak < 8 * 1024, "Lua heap grew by " .. peak .. " KiB")
  end)
end)
