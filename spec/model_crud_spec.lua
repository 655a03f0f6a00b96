-- Class methods: create, bulk_create, build + save, find_by_pk, find_one,
-- find_all, find_or_create, upsert, count, sum, min, max, avg, update,
-- destroy (and paranoid soft delete, restore), increment, decrement.
local sqorm = require "sqorm"
local H = require "spec.helper"
local M = require "spec.model_helper"
local T, op = sqorm.types, sqorm.op

H.each_dialect(describe, function(d)
  local db, log, P

  before_each(function()
    db, log = M.connect(d)
    P = M.players(db)
    P:sync{ force = true }
    M.clear(log)
  end)

  after_each(function()
    M.cleanup(db, P)
  end)

  local function seed()
    return P:bulk_create{
      { name = "a", coins = 100, goods = 1 }, { name = "b", coins = 200, goods = 2 },
      { name = "c", coins = 300, goods = 3 }, { name = "d", coins = 400, goods = 4 },
      { name = "e", coins = 500, goods = 5 },
    }
  end

  it("create inserts and returns the instance with its id and defaults", function()
    local p = P:create{ name = "ann", goods = 3 }
    assert.are.equal("integer", math.type(p.id))
    assert.are.equal(0, p.coins)
    assert.are.equal(3, p.goods)
    assert.is_false(p:changed())
    local st = M.statements(log)
    assert.are.equal(1, #st)
    assert.matches("^INSERT INTO", st[1])
    local q = P:find_by_pk(p.id)
    assert.are.equal("ann", q.name)
  end)

  it("create with an explicit key keeps it", function()
    local p = P:create{ id = 6, coins = 600, goods = 600 }
    assert.are.equal(6, p.id)
    assert.are.equal(600, P:find_by_pk(6).coins)
  end)

  it("bulk_create inserts with one multi-row INSERT and returns instances with ids", function()
    local list = seed()
    assert.are.equal(5, #list)
    local st = M.statements(log)
    assert.are.equal(1, #st)
    local seen = {}
    for i, p in ipairs(list) do
      assert.are.equal("integer", math.type(p.id))
      assert.is_nil(seen[p.id])
      seen[p.id] = true
      assert.are.equal(i * 100, p.coins)
      assert.are.equal(p.coins, P:find_by_pk(p.id).coins)
    end
    assert.are.same({}, P:bulk_create{})
  end)

  it("bulk_create splits into batches inside one transaction: all or nothing", function()
    local recs = {}
    for i = 1, 7 do recs[i] = { name = "p" .. i, coins = i } end
    local list = P:bulk_create(recs, { batch_size = 3 })
    assert.are.equal(7, #list)
    assert.are.equal(7, P:count())
    local inserts = 0
    for _, s in ipairs(M.statements(log)) do if s:match("^INSERT") then inserts = inserts + 1 end end
    assert.are.equal(3, inserts)
    -- the third batch hits a duplicate name: nothing of this call stays
    local bad = {}
    for i = 1, 7 do bad[i] = { name = "q" .. i } end
    bad[7].name = "p1"
    local e = H.raises(function() P:bulk_create(bad, { batch_size = 3 }) end)
    assert.are.equal("unique_violation", e.kind)
    assert.are.equal(7, P:count())
    assert.are.equal(0, db:pool_stats().in_use)
  end)

  it("bulk_create validates every record before any SQL", function()
    M.clear(log)
    local e = M.fails(log, "validation", "record #2", function()
      P:bulk_create{ { name = "x" }, { name = "y", coins = -5 } }
    end)
    assert.are.equal(2, e.index)
    assert.are.equal("must be >= 0", e.fields.coins)
    assert.are.same({}, M.statements(log))
  end)

  it("build + save inserts once, then updates", function()
    local p = P:build{ name = "zed" }
    assert.is_nil(p.id)
    assert.are.equal(0, p.coins) -- defaults at build
    assert.are.same({}, M.statements(log))
    assert.are.equal(p, p:save())
    assert.are.equal("integer", math.type(p.id))
    p.coins = 5
    p:save()
    assert.are.equal(5, P:find_by_pk(p.id).coins)
    assert.are.equal(1, P:count())
  end)

  it("find_by_pk returns nil when absent, converts the key, and takes options", function()
    local list = seed()
    local id = list[3].id
    assert.are.equal("c", P:find_by_pk(id).name)
    assert.are.equal("c", P:find_by_pk(tostring(id)).name) -- "3" -> 3 for an INTEGER key
    assert.is_nil(P:find_by_pk(999999))
    local r = P:find_by_pk(id, { raw = true, attributes = { "id", "name" } })
    assert.are.same({ id = id, name = "c" }, r)
    assert.is_nil(getmetatable(r))
    H.raises_kind("usage", nil, function() P:find_by_pk("abc") end)
    H.raises_kind("usage", nil, function() P:find_by_pk(nil) end)
  end)

  it("find_one and find_all", function()
    seed()
    local top = P:find_one{ order = { { "coins", "desc" } }, offset = 1 }
    assert.are.equal("d", top.name)
    assert.is_nil(P:find_one{ where = { name = "nobody" } })
    local rich = P:find_all{ where = { coins = op.gt(300) }, order = { { "coins", "desc" } }, limit = 10 }
    assert.are.equal(2, #rich)
    assert.are.equal("e", rich[1].name)
    assert.are.equal("d", rich[2].name)
    assert.are.same({}, P:find_all{ where = { coins = op.gt(10000) } })
    assert.are.equal(5, #P:find_all())
  end)

  it("find_or_create finds or creates, on one connection", function()
    local p, created = P:find_or_create{ where = { name = "neo" }, defaults = { coins = 42 } }
    assert.is_true(created)
    assert.are.equal(42, p.coins)
    assert.are.equal("integer", math.type(p.id))
    local q, created2 = P:find_or_create{ where = { name = "neo" }, defaults = { coins = 1 } }
    assert.is_false(created2)
    assert.are.equal(p.id, q.id)
    assert.are.equal(42, q.coins)
    H.raises_kind("usage", "where", function() P:find_or_create{ defaults = {} } end)
  end)

  it("find_or_create does not deadlock a pool of one", function()
    local db1 = sqorm.connect(d.url, { pool = { max = 1, acquire_timeout = 2 } })
    local P1 = db1:define("player", { { "name", T.STRING(32), unique = true } }, { table_name = P.table_name .. "_one" })
    P1:sync{ force = true }
    local _, created = P1:find_or_create{ where = { name = "solo" } }
    assert.is_true(created)
    local _, again = P1:find_or_create{ where = { name = "solo" } }
    assert.is_false(again)
    db1:transaction(function()
      local _, c3 = P1:find_or_create{ where = { name = "in-tx" } }
      assert.is_true(c3)
    end)
    assert.are.equal(2, P1:count())
    P1:drop()
    db1:close()
  end)

  it("upsert inserts, then updates the same key", function()
    local p = P:upsert{ id = 10, name = "up", coins = 1 }
    assert.are.equal(10, p.id)
    assert.are.equal(1, p.coins)
    local q = P:upsert{ id = 10, name = "up", coins = 2 }
    assert.are.equal(10, q.id)
    assert.are.equal(2, q.coins)
    assert.are.equal(1, P:count())
    assert.are.equal(2, P:find_by_pk(10).coins)
    -- on another unique key
    local r = P:upsert({ name = "up", coins = 3 }, { conflict = { "name" } })
    assert.is_truthy(r)
    assert.are.equal(3, P:find_by_pk(10).coins)
    assert.are.equal(1, P:count())
  end)

  it("count, sum, min, max, avg", function()
    seed()
    assert.are.equal(5, P:count())
    assert.are.equal(3, P:count{ where = { goods = op.between(1, 3) } })
    assert.are.equal(1500, P:sum("coins"))
    assert.are.equal("integer", math.type(P:sum("coins")))
    assert.are.equal(700, P:sum("coins", { where = { coins = op.gt(200), goods = op.lt(5) } }))
    assert.are.equal(100, P:min("coins"))
    assert.are.equal(500, P:max("coins"))
    assert.are.equal(300, P:avg("coins"))
    assert.are.equal(0, P:sum("coins", { where = { coins = op.gt(1e6) } }))
    assert.is_nil(P:max("coins", { where = { coins = op.gt(1e6) } }))
    H.raises_kind("usage", "no column", function() P:sum("nope") end)
  end)

  it("update sets values where asked, returns the affected rows, refuses no where", function()
    seed()
    assert.are.equal(2, P:update({ goods = 0 }, { where = { coins = op.gte(400) } }))
    assert.are.equal(2, P:count{ where = { goods = 0 } })
    assert.are.equal(0, P:update({ goods = 9 }, { where = { name = sqorm.null } }))
    M.clear(log)
    M.fails(log, "usage", "without a where", function() P:update({ goods = 1 }, {}) end)
    M.fails(log, "usage", "without a where", function() P:update({ goods = 1 }) end)
    M.fails(log, "usage", "where is empty", function() P:update({ goods = 1 }, { where = {} }) end)
    assert.are.same({}, M.statements(log))
    assert.are.equal(5, P:update({ goods = 77 }, { all = true }))
    -- updated_at comes along
    assert.matches("updated_at", M.statements(log)[1])
  end)

  it("destroy deletes where asked, returns the affected rows, refuses no where", function()
    local list = seed()
    assert.are.equal(3, P:destroy{ where = { id = { list[1].id, list[2].id, list[3].id } } })
    assert.are.equal(2, P:count())
    M.clear(log)
    M.fails(log, "usage", "without a where", function() P:destroy{} end)
    M.fails(log, "usage", "without a where", function() P:destroy() end)
    assert.are.same({}, M.statements(log))
    assert.are.equal(2, P:destroy{ all = true })
    assert.are.equal(0, P:count())
  end)

  it("paranoid models soft-delete, hide deleted rows, restore, and force-delete", function()
    local S = M.players(db, { paranoid = true })
    S:sync{ force = true }
    local a = S:create{ name = "a" }
    S:create{ name = "b" }
    assert.are.equal(1, S:destroy{ where = { name = "a" } })
    assert.are.equal(1, S:count())
    assert.is_nil(S:find_by_pk(a.id))
    assert.are.equal(2, S:count{ paranoid = false })
    local gone = S:find_one{ where = { name = "a" }, paranoid = false }
    assert.is_string(gone.deleted_at)
    assert.are.equal(1, S:restore{ where = { name = "a" } })
    assert.are.equal(2, S:count())
    local b = S:find_one{ where = { name = "b" } }
    b:destroy()
    assert.is_string(b.deleted_at)
    assert.are.equal(1, S:count())
    assert.are.equal(2, S:destroy({ where = { name = { "a", "b" } }, force = true }))
    assert.are.equal(0, S:count{ paranoid = false })
    S:drop()
  end)

  it("increment and decrement, class-level and on instances", function()
    local list = seed()
    assert.are.equal(2, P:increment({ coins = 5 }, { where = { goods = op.lte(2) } }))
    assert.are.equal(105, P:find_by_pk(list[1].id).coins)
    assert.are.equal(5, P:increment("goods", { by = 10, all = true }))
    assert.are.equal(11, P:find_by_pk(list[1].id).goods)
    assert.are.equal(1, P:decrement({ "coins", "goods" }, { by = 1, where = { id = list[5].id } }))
    local e = P:find_by_pk(list[5].id)
    assert.are.same({ 499, 14 }, { e.coins, e.goods })
    H.raises_kind("usage", "without a where", function() P:increment("coins") end)
    H.raises_kind("usage", "not numeric", function() P:increment("name", { all = true }) end)
    local p = P:find_by_pk(list[2].id)
    assert.are.equal(p, p:increment("coins", 5))
    assert.are.equal(210, p.coins)
    p:decrement{ coins = 10, goods = 2 }
    assert.are.same({ 200, 10 }, { p.coins, p.goods })
    p:reload()
    assert.are.same({ 200, 10 }, { p.coins, p.goods })
  end)
end)
