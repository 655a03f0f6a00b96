-- find_or_create inserts only what its where fixes by equality (plain
-- values, op.eq, sqorm.null, equality inside and_) plus defaults; a column
-- an operator constrains that defaults does not give is kind usage, with
-- nothing sent. (It once inserted NULL for such a column.)
local sqorm = require "sqorm"
local H = require "spec.helper"
local M = require "spec.model_helper"
local op = sqorm.op

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

  it("an operator in where with no default for its column is usage, nothing sent", function()
    local e, st = M.fails(log, "usage", "'coins'", function()
      P:find_or_create{ where = { name = "ann", coins = op.gt(5) } }
    end)
    assert.matches("defaults", e.message)
    assert.are.same({}, st)
    M.fails(log, "usage", "'goods'", function()
      P:find_or_create{ where = { name = "ann", goods = { 1, 2 } } } -- IN
    end)
    M.fails(log, "usage", "constrains 'name'", function() -- the first column or_ leaves open
      P:find_or_create{ where = { op.or_({ name = "ann" }, { coins = 3 }) } }
    end)
    M.fails(log, "usage", "'name'", function()
      P:find_or_create{ where = { name = op.like("a%") } }
    end)
    M.fails(log, "usage", "sqorm.raw", function()
      P:find_or_create{ where = { name = "ann", sqorm.raw("coins > ?", { 1 }) } }
    end)
    assert.are.equal(0, P:count())
  end)

  it("inserts the operator-constrained column from defaults", function()
    local p, created = P:find_or_create{ where = { name = "ann", coins = op.gt(5) }, defaults = { coins = 10 } }
    assert.is_true(created)
    assert.are.equal(10, P:find_by_pk(p.id).coins)
    local q, again = P:find_or_create{ where = { name = "ann", coins = op.gt(5) }, defaults = { coins = 10 } }
    assert.is_false(again)
    assert.are.equal(p.id, q.id)
  end)

  it("takes equality from plain values, op.eq, sqorm.null and and_", function()
    local p, created = P:find_or_create{ where = { name = op.eq("bob"), coins = 3 } }
    assert.is_true(created)
    assert.are.same({ "bob", 3 }, { p.name, P:find_by_pk(p.id).coins })
    local q = P:find_or_create{ where = { op.and_({ name = "cy" }, { goods = 4, coins = op.eq(2) }) } }
    local row = P:find_by_pk(q.id)
    assert.are.same({ "cy", 4, 2 }, { row.name, row.goods, row.coins })
    local r, c3 = P:find_or_create{ where = op.and_({ goods = 9 }, { name = sqorm.null }) }
    assert.is_true(c3)
    assert.is_nil(P:find_by_pk(r.id).name)
    assert.are.equal(9, r.goods)
    -- an equality plus other conditions on the same column: the value is fixed
    local s = P:find_or_create{ where = { name = "dee", coins = op.and_(op.eq(7), op.lt(100)) } }
    assert.are.equal(7, P:find_by_pk(s.id).coins)
  end)

  it("refuses where and defaults that disagree, and equalities that conflict", function()
    M.fails(log, "usage", "'coins'", function()
      P:find_or_create{ where = { name = "e", coins = 1 }, defaults = { coins = 2 } }
    end)
    M.fails(log, "usage", "two different values", function()
      P:find_or_create{ where = { op.and_({ coins = 1 }, { coins = 2 }), name = "e" } }
    end)
    -- the same value in both is fine
    local p = P:find_or_create{ where = { name = "e", coins = 1 }, defaults = { coins = 1, goods = 2 } }
    assert.are.equal(2, P:find_by_pk(p.id).goods)
  end)

  it("defaults of the wrong type are a validation error when inserting", function()
    local e = M.fails(log, "validation", "coins", function()
      P:find_or_create{ where = { name = "f" }, defaults = { coins = "lots" } }
    end)
    assert.is_string(e.fields.coins)
    assert.are.equal(0, P:count())
  end)
end)
