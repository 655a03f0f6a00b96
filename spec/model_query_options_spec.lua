-- Query options: attributes, order, limit, offset, group, having, lock,
-- raw, paranoid; find_by_pk's options; and their usage errors.
local sqorm = require "sqorm"
local H = require "spec.helper"
local M = require "spec.model_helper"
local op = sqorm.op

H.each_dialect(describe, function(d)
  local db, log, P

  setup(function()
    db, log = M.connect(d)
    P = M.players(db, { paranoid = true })
    P:sync{ force = true }
    for i = 1, 10 do P:create{ id = i, name = "p" .. i, coins = i * 10, goods = i % 3 } end
    P:destroy{ where = { id = 10 } } -- soft-deleted
  end)

  teardown(function()
    M.cleanup(db, P)
  end)

  it("attributes selects columns; the others read as nil", function()
    local r = P:find_all{ attributes = { "id", "coins" }, where = { id = 2 } }
    assert.are.equal(1, #r)
    assert.are.equal(2, r[1].id)
    assert.are.equal(20, r[1].coins)
    assert.is_nil(r[1].name)
    assert.matches('^SELECT ["`]id["`], ["`]coins["`] FROM', M.statements(log)[#log])
  end)

  it("order by one or more columns, either direction, several spellings", function()
    local function names(o) local t = {}; for _, p in ipairs(P:find_all{ order = o, limit = 3 }) do t[#t + 1] = p.name end; return t end
    assert.are.same({ "p9", "p8", "p7" }, names{ { "coins", "desc" } })
    assert.are.same({ "p9", "p8", "p7" }, names{ "coins", "DESC" })
    assert.are.same({ "p1", "p2", "p3" }, names{ "coins" })
    assert.are.same({ "p1", "p2", "p3" }, names("coins"))
    assert.are.same({ "p3", "p6", "p9" }, names{ { "goods", "asc" }, { "coins" } })
    assert.are.same({ "p9", "p6", "p3" }, names{ { "goods" }, { "coins", "desc" } })
  end)

  it("limit and offset", function()
    local r = P:find_all{ order = { "id" }, limit = 2, offset = 3 }
    assert.are.same({ 4, 5 }, { r[1].id, r[2].id })
    local tail = P:find_all{ order = { "id" }, offset = 7 }
    assert.are.same({ 8, 9 }, { tail[1].id, tail[2].id })
    assert.are.equal(0, #P:find_all{ limit = 0 })
    assert.are.equal(2, #P:find_all{ limit = 2.0 }) -- an integral float (JSON decoders make them)
  end)

  it("group and having, with sqorm.fn aggregates in attributes", function()
    local r = P:find_all{
      attributes = { "goods", sqorm.fn.count(nil, "n"), sqorm.fn.sum("coins", "total") },
      group = { "goods" },
      having = sqorm.raw("count(*) > ?", { 2 }),
      order = { "goods" },
      raw = true,
    }
    assert.are.equal(3, #r)
    assert.are.same({ 0, 3 }, { r[1].goods, tonumber(r[1].n) })
    assert.are.equal(180, tonumber(r[1].total)) -- 30 + 60 + 90
    local inst = P:find_all{ attributes = { "goods", sqorm.fn.max("coins", "best") }, group = "goods", order = { "goods" } }
    assert.are.equal(90, tonumber(inst[1].best))
    local g = P:find_all{ attributes = { "goods" }, group = { "goods" }, having = { goods = op.gt(0) }, order = { "goods" } }
    assert.are.equal(2, #g)
  end)

  it("raw = true returns plain tables keyed by column name", function()
    local r = P:find_all{ where = { id = 1 }, raw = true }
    assert.is_nil(getmetatable(r[1]))
    assert.are.equal("p1", r[1].name)
    assert.are.equal(10, r[1].coins)
    assert.is_nil(r[1].deleted_at)
    local one = P:find_one{ where = { id = 2 }, raw = true }
    assert.are.equal("p2", one.name)
  end)

  it("paranoid = false includes soft-deleted rows", function()
    assert.are.equal(9, #P:find_all())
    assert.are.equal(10, #P:find_all{ paranoid = false })
    assert.is_nil(P:find_by_pk(10))
    assert.are.equal("p10", P:find_by_pk(10, { paranoid = false }).name)
  end)

  it("lock = update / share inside a transaction", function()
    db:transaction(function()
      local a = P:find_by_pk(1, { lock = "update" })
      assert.are.equal("p1", a.name)
      local s = P:find_all{ where = { id = { 2, 3 } }, lock = "share" }
      assert.are.equal(2, #s)
    end)
    local sql = table.concat(M.statements(log), "\n")
    if d.name == "postgres" then
      assert.matches("FOR UPDATE", sql, 1, true)
      assert.matches("FOR SHARE", sql, 1, true)
    elseif d.name == "mysql" then
      assert.matches("FOR UPDATE", sql, 1, true)
    end
  end)

  it("find_by_pk takes lock, attributes, raw, paranoid only", function()
    local r = P:find_by_pk(3, { attributes = { "name" } })
    assert.are.equal("p3", r.name)
    assert.is_nil(r.coins)
    H.raises_kind("usage", "unknown option 'where'", function() P:find_by_pk(3, { where = { id = 3 } }) end)
  end)

  it("refuses bad options before any SQL", function()
    M.clear(log)
    local function bad(pattern, opts) M.fails(log, "usage", pattern, function() P:find_all(opts) end) end
    bad("limit must be a non-negative integer", { limit = -1 })
    bad("limit must be a non-negative integer", { limit = 1.5 })
    bad("limit must be a non-negative integer", { limit = "10" })
    bad("offset must be a non-negative integer", { offset = -3 })
    bad("lock must be", { lock = "exclusive" })
    bad("order direction", { order = { { "coins", "sideways" } } })
    bad("no column 'nope'", { order = { "nope" } })
    bad("no column 'nope'", { attributes = { "id", "nope" } })
    bad("no column 'nope'", { group = { "nope" } })
    bad("unknown option 'whre'", { whre = { id = 1 } })
    bad("raw must be a boolean", { raw = "yes" })
    bad("options must be a table", "id = 1")
    assert.are.same({}, M.statements(log))
  end)
end)
