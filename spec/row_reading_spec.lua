-- Reading rows (issue 15, row reading): every column type comes back as
-- the same Lua value through each way of reading - instances of find_all,
-- find_one, find_by_pk (the cached statement and with options), each,
-- raw = true rows of find_all and each - after the row sinks took a
-- shorter path for integers and text; an instance method still wins over
-- a column of the same name (also one added after the rows were read);
-- an instance's metamethods called on a value that is no instance raise
-- kind usage instead of crashing the host.
local sqorm = require "sqorm"
local H = require "spec.helper"
local M = require "spec.model_helper"
local T = sqorm.types

local UUID = "0f8fad5b-d9cb-469f-a165-70867728950e"
local LONG = ("row reading "):rep(40)

-- column -> { value given, value and math.type / type read back }
local EXPECT = {
  i = { 7, 7, "integer" },
  big = { 1099511627776, 1099511627776, "integer" },
  small = { -3, -3, "integer" },
  f = { 1.5, 1.5, "float" },
  d = { 2.25, 2.25, "float" },
  dec = { "12.34", "12.34", "string" },
  s = { "h\195\169llo", "h\195\169llo", "string" },
  c = { "x", "x", "string" },
  t = { LONG, LONG, "string" },
  b = { true, true, "boolean" },
  dt = { "2024-01-02", "2024-01-02", "string" },
  ts = { "2024-01-02 03:04:05", "2024-01-02 03:04:05", "string" },
  bl = { "\0\1\255", "\0\1\255", "string" },
  u = { UUID, UUID, "string" },
  e = { "rare", "rare", "string" },
}

local function kind_of(v)
  return math.type(v) or type(v)
end

-- Asserts the row (instance or raw row) holds every expected value, with
-- its Lua type, and nil for the NULL column.
local function check(row, how)
  assert(row, how .. ": no row")
  for col, e in pairs(EXPECT) do
    local v = row[col]
    assert.are.equal(e[2], v, how .. ": column " .. col)
    assert.are.equal(e[3], kind_of(v), how .. ": Lua type of column " .. col)
  end
  assert.is_nil(row.n, how .. ": the NULL column")
  assert.are.equal("integer", math.type(row.id), how .. ": the key")
end

H.each_dialect(describe, function(d)
  local db, Row, Shadow

  setup(function()
    db = M.connect(d)
    Row = db:define("row_reading", {
      { "id", T.INTEGER, primary_key = true, auto_increment = true },
      { "i", T.INTEGER }, { "big", T.BIGINT }, { "small", T.SMALLINT },
      { "f", T.FLOAT }, { "d", T.DOUBLE }, { "dec", T.DECIMAL(10, 2) },
      { "s", T.STRING(32) }, { "c", T.CHAR(1) }, { "t", T.TEXT },
      { "b", T.BOOLEAN }, { "dt", T.DATE }, { "ts", T.DATETIME },
      { "bl", T.BLOB }, { "u", T.UUID }, { "e", T.ENUM{ "common", "rare" } },
      { "n", T.INTEGER },
    }, { table_name = H.tname("row_reading"), timestamps = false })
    Row:sync{ force = true }
    local values = {}
    for col, e in pairs(EXPECT) do values[col] = e[1] end
    for _ = 1, 3 do Row:create(values) end
    Shadow = db:define("row_shadow", {
      { "id", T.INTEGER, primary_key = true, auto_increment = true },
      { "to_table", T.STRING(16) }, -- named like an instance method
      { "coins", T.INTEGER },
    }, { table_name = H.tname("row_shadow"), timestamps = false })
    Shadow:sync{ force = true }
    Shadow:create{ to_table = "column", coins = 5 }
  end)

  teardown(function() M.cleanup(db, Row, Shadow) end)

  it("reads every column type alike through instances and raw rows", function()
    local list = Row:find_all{ order = { "id" } }
    assert.are.equal(3, #list)
    for _, p in ipairs(list) do check(p, "find_all") end
    local raw = Row:find_all{ order = { "id" }, raw = true }
    assert.are.equal(3, #raw)
    for _, r in ipairs(raw) do
      check(r, "find_all raw")
      assert.is_nil(getmetatable(r), "a raw row is a plain table")
    end
    check(Row:find_one{ where = { id = list[2].id } }, "find_one")
    check(Row:find_by_pk(list[3].id), "find_by_pk")
    check(Row:find_by_pk(list[3].id, { raw = true }), "find_by_pk raw")
    local n = 0
    for p in Row:each{ batch = 2 } do
      n = n + 1
      check(p, "each")
    end
    assert.are.equal(3, n)
    n = 0
    for r in Row:each{ raw = true } do
      n = n + 1
      check(r, "each raw")
    end
    assert.are.equal(3, n)
  end)

  it("reads the columns it was asked for, and a changed value saves", function()
    local p = Row:find_all{ attributes = { "id", "big", "s" }, order = { "id" } }[1]
    assert.are.equal(1099511627776, p.big)
    assert.are.equal("h\195\169llo", p.s)
    assert.is_nil(p.i)
    local q = Row:find_by_pk(p.id)
    q.i = q.i + 1
    q:save()
    assert.are.equal(8, Row:find_by_pk(p.id).i)
    q.i = 7
    q:save()
  end)

  it("lets an instance method win over a column of the same name", function()
    local p = Shadow:find_one{ where = { coins = 5 } }
    assert.are.equal("function", type(p.to_table))
    assert.are.equal("column", p:get("to_table"))
    assert.are.equal(5, p.coins)
    -- a method added after the instance was read wins from then on
    Shadow.methods.coins = function() return "method" end
    assert.are.equal("method", p:coins())
    assert.are.equal(5, p:get("coins"))
    Shadow.methods.coins = nil
    assert.are.equal(5, p.coins)
  end)

  it("raises usage when an instance's metamethods get no instance", function()
    local p = Shadow:find_one{ where = { coins = 5 } }
    local mt = getmetatable(p)
    for _, bad in ipairs({ 1, "x", true, {} }) do
      local ok, v = pcall(mt.__index, bad, "coins")
      assert(ok and v == nil or not ok, "__index on a non-instance")
    end
    H.raises_kind("usage", "expects an instance", mt.__newindex, 1, "coins", 5)
    H.raises_kind("usage", "expects an instance", mt.__newindex, "x", "coins", 5)
    assert.are.equal(5, p.coins)
  end)
end)
