-- where: every operator of sqorm.op, a list means IN, empty IN / NOT IN,
-- sqorm.null, logical operators at both levels and nested, sqorm.raw.
local sqorm = require "sqorm"
local H = require "spec.helper"
local M = require "spec.model_helper"
local T, op = sqorm.types, sqorm.op

H.each_dialect(describe, function(d)
  local db, log, P

  setup(function()
    db, log = M.connect(d)
    P = db:define("player", {
      { "id", T.INTEGER, primary_key = true, auto_increment = true },
      { "name", T.STRING(32) },
      { "coins", T.INTEGER },
      { "rank", T.INTEGER },
      { "vip", T.BOOLEAN },
      { "seen", T.DATETIME },
    }, { table_name = H.tname("players"), timestamps = false })
    P:sync{ force = true }
    P:bulk_create{
      { id = 1, name = "ann", coins = 100, rank = 5, vip = true, seen = "2024-01-01 10:00:00" },
      { id = 2, name = "bob", coins = 200, rank = 50, vip = false, seen = "2024-02-01 10:00:00" },
      { id = 3, name = "cy", coins = 300, vip = false },
      { id = 4, name = "dee", coins = 400, rank = 500, vip = true, seen = "2024-04-01 10:00:00" },
      { id = 5, coins = 500, rank = 150 },
    }
  end)

  teardown(function()
    M.cleanup(db, P)
  end)

  -- ids matching a where, sorted
  local function ids(where)
    local out = {}
    for _, p in ipairs(P:find_all{ where = where, order = { "id" } }) do out[#out + 1] = p.id end
    return out
  end

  it("compares with eq, ne, gt, gte, lt, lte and plain values", function()
    assert.are.same({ 2 }, ids{ coins = 200 })
    assert.are.same({ 2 }, ids{ coins = op.eq(200) })
    assert.are.same({ 1, 3, 4, 5 }, ids{ coins = op.ne(200) })
    assert.are.same({ 4, 5 }, ids{ coins = op.gt(300) })
    assert.are.same({ 3, 4, 5 }, ids{ coins = op.gte(300) })
    assert.are.same({ 1, 2 }, ids{ coins = op.lt(300) })
    assert.are.same({ 1, 2, 3 }, ids{ coins = op.lte(300) })
    assert.are.same({ 1, 4 }, ids{ vip = true })
    assert.are.same({ 2, 4 }, ids{ seen = op.gte("2024-02-01 10:00:00") })
    assert.are.same({ 2 }, ids{ coins = "200" }) -- converted to the column type
  end)

  it("ANDs several columns", function()
    assert.are.same({ 4 }, ids{ coins = op.gt(200), vip = true })
  end)

  it("between and not_between", function()
    assert.are.same({ 2, 3, 4 }, ids{ coins = op.between(200, 400) })
    assert.are.same({ 2, 3, 4 }, ids{ coins = op.between{ 200, 400 } })
    assert.are.same({ 1, 5 }, ids{ coins = op.not_between(200, 400) })
  end)

  it("a list means IN; in_ and not_in; empty lists", function()
    assert.are.same({ 1, 3 }, ids{ id = { 1, 3 } })
    assert.are.same({ 1, 3 }, ids{ id = op.in_{ 1, 3 } })
    assert.are.same({ 1, 3 }, ids{ id = op.in_(1, 3) })
    assert.are.same({ 2, 4, 5 }, ids{ id = op.not_in{ 1, 3 } })
    assert.are.same({}, ids{ id = {} })
    assert.are.same({}, ids{ id = op.in_{} })
    assert.are.same({ 1, 2, 3, 4, 5 }, ids{ id = op.not_in{} })
    assert.are.same({ 2 }, ids{ name = { "bob", "nobody" } })
  end)

  it("like and not_like", function()
    assert.are.same({ 1 }, ids{ name = op.like("a%") })
    assert.are.same({ 2, 3, 4 }, ids{ name = op.not_like("a%") })
  end)

  it("sqorm.null, is_null and not_null", function()
    assert.are.same({ 5 }, ids{ name = sqorm.null })
    assert.are.same({ 5 }, ids{ name = op.is_null() })
    assert.are.same({ 5 }, ids{ name = op.eq(sqorm.null) })
    assert.are.same({ 1, 2, 3, 4 }, ids{ name = op.not_null() })
    assert.are.same({ 1, 2, 3, 4 }, ids{ name = op.ne(sqorm.null) })
    assert.are.same({ 3 }, ids{ rank = sqorm.null })
  end)

  it("logical operators as list items of the where", function()
    assert.are.same({ 1, 2 }, ids{ op.or_({ name = "ann" }, { name = "bob" }) })
    assert.are.same({ 4 }, ids{ op.or_({ name = "ann" }, { name = "dee" }), coins = op.gt(100) })
    assert.are.same({ 1, 2 }, ids{ op.or_{ { name = "ann" }, { name = "bob" } } })
    assert.are.same({ 2 }, ids{ op.and_({ coins = op.gt(100) }, { coins = op.lt(300) }) })
    assert.are.same({ 3, 4, 5 }, ids{ op.not_{ coins = op.lt(300) } })
    assert.are.same({ 1, 3 }, ids{ op.not_(op.or_({ coins = op.gt(300) }, { name = "bob" })) })
  end)

  it("logical operators on one column", function()
    assert.are.same({ 1, 2, 3 }, ids{ rank = op.or_(op.lt(100), op.is_null()) })
    assert.are.same({ 2, 5 }, ids{ rank = op.and_(op.gt(10), op.lt(200)) })
    assert.are.same({ 1, 2, 3 }, ids{ coins = op.not_(op.gt(300)) })
    assert.are.same({ 1, 4 }, ids{ coins = op.or_(100, 400) })
    assert.are.same({ 1, 2, 4 }, ids{ coins = op.or_({ 100, 200 }, op.eq(400)) })
  end)

  it("nests logical operators", function()
    local w = { op.or_(
      { op.and_({ coins = op.gte(100) }, { coins = op.lte(200) }), vip = true },
      { op.not_{ rank = op.or_(op.lt(400), op.is_null()) } }
    ) }
    assert.are.same({ 1, 4 }, ids(w))
    assert.are.same({ 1, 2 }, ids(op.or_({ id = 1 }, { id = 2 }))) -- an operator value as the whole where
  end)

  it("sqorm.raw is the explicit escape hatch, with binds", function()
    assert.are.same({ 4, 5 }, ids{ sqorm.raw("coins > ?", { 300 }) })
    assert.are.same({ 5 }, ids{ sqorm.raw("coins > ?", { 300 }), id = op.gt(4) })
    assert.are.same({ 1, 2, 3, 4, 5 }, ids{ sqorm.raw("1 = 1") })
    H.raises_kind("usage", "placeholder", function() ids{ sqorm.raw("coins > ?", {}) } end)
  end)

  it("renders equal shapes the same way, with values bound", function()
    M.clear(log)
    ids{ coins = op.gt(1), name = "x'; DROP TABLE players; --" }
    ids{ name = "y", coins = op.gt(2) }
    local st = M.statements(log)
    assert.are.equal(st[1], st[2])
    assert.is_nil(st[1]:find("DROP", 1, true))
  end)

  it("counts and updates with the same where grammar", function()
    assert.are.equal(2, P:count{ where = { op.or_({ name = "ann" }, { coins = 500 }) } })
    assert.are.equal(0, P:update({ rank = 1 }, { where = { id = {} } }))
  end)
end)
