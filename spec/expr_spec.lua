-- Queries with expressions: sqorm.fn.<name>, sqorm.col, aliases in order
-- and having, group by columns and expressions, count{ group }, count{
-- distinct, col }, distinct, attributes exclude, column-to-column
-- comparisons, subqueries; hostile names refused with nothing sent.
local sqorm = require "sqorm"
local H = require "spec.helper"
local M = require "spec.model_helper"
local op, fn, col = sqorm.op, sqorm.fn, sqorm.col
local T = sqorm.types

H.each_dialect(describe, function(d)
  local db, log, P, Item

  setup(function()
    db, log = M.connect(d)
    P = db:define("player", {
      { "id", T.INTEGER, primary_key = true, auto_increment = true },
      { "name", T.STRING(20) },
      { "coins", T.INTEGER, default = 0 },
      { "goods", T.INTEGER, default = 0 },
      { "guild_id", T.INTEGER },
      { "secret", T.STRING(20) },
    }, { table_name = H.tname("xplayers"), timestamps = false })
    Item = db:define("item", {
      { "id", T.INTEGER, primary_key = true, auto_increment = true },
      { "owner_id", T.INTEGER },
      { "kind", T.STRING(20) },
    }, { table_name = H.tname("xitems"), timestamps = false })
    db:sync { force = true }
    local rows = {
      { "a", 10, 5, 1 }, { "b", 3, 5, 1 }, { "c", 7, 7, 1 }, { "d", 20, 1, 2 }, { "e", 1, 0, 2 }, { "f", 4, 9, nil },
    }
    for _, r in ipairs(rows) do
      P:create { name = r[1], coins = r[2], goods = r[3], guild_id = r[4], secret = "s" .. r[1] }
    end
    Item:create { owner_id = 1, kind = "sword" }
    Item:create { owner_id = 4, kind = "sword" }
    Item:create { owner_id = 4, kind = "shield" }
  end)

  teardown(function() M.cleanup(db, P, Item) end)

  it("groups with aggregate aliases usable in having and order", function()
    local rows = P:find_all { attributes = { "guild_id", { fn.count("id"), "members" }, { fn.max("coins"), "best" } },
                              group = { "guild_id" }, having = { members = op.gt(1) },
                              order = { { "members", "desc" } }, raw = true }
    assert.are.equal(2, #rows)
    assert.are.equal(1, rows[1].guild_id)
    assert.are.equal(3, tonumber(rows[1].members))
    assert.are.equal(10, tonumber(rows[1].best))
    assert.are.equal(2, tonumber(rows[2].members))
  end)

  it("count{ group } returns one row per group; count{ distinct, col }", function()
    local groups = P:count { group = "guild_id", where = { guild_id = op.not_null() } }
    table.sort(groups, function(a, b) return a.guild_id < b.guild_id end)
    assert.are.equal(2, #groups)
    assert.are.equal(1, groups[1].guild_id)
    assert.are.equal(3, tonumber(groups[1].count))
    assert.are.equal(2, P:count { distinct = true, col = "guild_id" })
    assert.are.equal(6, P:count())
  end)

  it("distinct rows, attributes exclude", function()
    local g = P:find_all { distinct = true, attributes = { "guild_id" }, where = { guild_id = op.not_null() },
                           order = { "guild_id" } }
    assert.are.same({ 1, 2 }, { g[1].guild_id, g[2].guild_id })
    local p = P:find_one { attributes = { exclude = { "secret" } }, where = { name = "a" } }
    assert.are.equal("a", p.name)
    assert.is_nil(p.secret)
  end)

  it("compares columns with columns and with functions", function()
    local rich = P:find_all { where = { coins = op.gt(col("goods")) }, order = { "id" } }
    local names = {}
    for i, p in ipairs(rich) do names[i] = p.name end
    assert.are.same({ "a", "d", "e" }, names)
    assert.are.equal(1, P:count { where = { coins = col("goods") } })
    local r = P:find_all { attributes = { "name", { fn.lower(fn.upper("name")), "low" }, { fn.abs(-3), "three" } },
                           where = { name = "a" }, raw = true }
    assert.are.equal("a", r[1].low)
    assert.are.equal(3, tonumber(r[1].three))
  end)

  it("orders by an expression", function()
    local r = P:find_all { order = { { fn.abs(col("coins")), "desc" } }, limit = 1 }
    assert.are.equal("d", r[1].name)
  end)

  it("subqueries in op.in_, op.not_in, op.exists", function()
    local swords = Item:subquery { attributes = { "owner_id" }, where = { kind = "sword" } }
    local with = P:find_all { where = { id = op.in_(swords) }, order = { "id" } }
    assert.are.same({ "a", "d" }, { with[1].name, with[2].name })
    assert.are.equal(4, P:count { where = { id = op.not_in(swords) } })
    assert.are.equal(6, P:count { where = { op.exists(Item:subquery { attributes = { "id" } }) } })
  end)

  it("refuses hostile function names and aliases, with nothing sent", function()
    H.raises_kind("usage", "identifier", function() return fn["count(*); DROP TABLE x; --"] end)
    local _, sent = M.fails(log, "usage", nil, function()
      P:find_all { attributes = { { fn.count("id"), 'n"; DROP TABLE x; --' } } }
    end)
    assert.are.same({}, sent)
    _, sent = M.fails(log, "usage", "no column", function() P:find_all { order = { "nope" } } end)
    assert.are.same({}, sent)
    _, sent = M.fails(log, "usage", nil, function() P:find_all { where = { coins = op.gt(col("nope")) } } end)
    assert.are.same({}, sent)
    _, sent = M.fails(log, "usage", "for reads", function() P:destroy { where = { coins = op.gt(col("goods")) } } end)
    assert.are.same({}, sent)
  end)

  it("DECIMAL columns order, compare and sum exactly in reads with expressions (SQLite stores them as text)", function()
    local Acct = db:define("acct", {
      { "id", T.INTEGER, primary_key = true, auto_increment = true },
      { "name", T.STRING(20) },
      { "bal", T.DECIMAL(10, 2) },
    }, { table_name = H.tname("xaccts"), timestamps = false })
    Acct:sync { force = true }
    for _, v in ipairs { "9.50", "10.25", "100.00", "0.10", "0.20" } do Acct:create { name = "n" .. v, bal = v } end
    local rows = Acct:find_all { attributes = { "bal", { fn.lower("name"), "l" } }, order = { { "bal", "desc" } }, raw = true }
    assert.are.same({ "100.00", "10.25", "9.50", "0.20", "0.10" },
      { rows[1].bal, rows[2].bal, rows[3].bal, rows[4].bal, rows[5].bal })
    local big = Acct:find_all { where = { bal = op.gt(col("id")) }, order = { "id" } }
    assert.are.equal(3, #big)
    local sums = Acct:find_all { attributes = { { fn.sum("bal"), "total" }, { fn.max("bal"), "top" } },
                                 where = { id = op.in_(Acct:subquery { attributes = { "id" } }) }, raw = true }
    assert.are.equal("120.05", tostring(sums[1].total))
    assert.are.equal("100.00", tostring(sums[1].top))
    Acct:drop()
  end)
end)

