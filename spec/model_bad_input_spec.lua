-- Bad input: unknown columns, identifiers carrying SQL, a where decoded
-- from untrusted JSON ("$gt" keys, nested tables), wrong value types,
-- forged operators, huge IN lists. Each is a clear error (or a correct
-- result), and the logging function proves no statement was sent when
-- it was refused.
local sqorm = require "sqorm"
local H = require "spec.helper"
local M = require "spec.model_helper"
local T, op = sqorm.types, sqorm.op

-- A tiny JSON decoder (objects, arrays, strings, numbers, true/false/null
-- as sqorm.null), so the spec feeds exactly what a request would carry.
local function json(s)
  local i = 1
  local function ws() i = s:find("%S", i) or #s + 1 end
  local value
  local function str()
    local j = s:find('"', i + 1, true)
    local v = s:sub(i + 1, j - 1)
    i = j + 1
    return v
  end
  function value()
    ws()
    local c = s:sub(i, i)
    if c == "{" then
      local t = {}
      i = i + 1
      ws()
      if s:sub(i, i) == "}" then i = i + 1 return t end
      repeat
        ws()
        local k = str()
        ws(); i = i + 1 -- :
        t[k] = value()
        ws()
        c = s:sub(i, i)
        i = i + 1
      until c == "}"
      return t
    elseif c == "[" then
      local t = {}
      i = i + 1
      ws()
      if s:sub(i, i) == "]" then i = i + 1 return t end
      repeat
        t[#t + 1] = value()
        ws()
        c = s:sub(i, i)
        i = i + 1
      until c == "]"
      return t
    elseif c == '"' then
      return str()
    elseif s:sub(i, i + 3) == "true" then i = i + 4 return true
    elseif s:sub(i, i + 4) == "false" then i = i + 5 return false
    elseif s:sub(i, i + 3) == "null" then i = i + 4 return sqorm.null
    else
      local num = s:match("^-?%d+%.?%d*[eE]?[-+]?%d*", i)
      i = i + #num
      return tonumber(num) + 0.0 -- JSON numbers decode as floats
    end
  end
  return value()
end

H.each_dialect(describe, function(d)
  local db, log, P

  setup(function()
    db, log = M.connect(d)
    P = M.players(db)
    P:sync{ force = true }
    P:bulk_create{ { name = "ann", coins = 100 }, { name = "bob", coins = 500 } }
  end)

  teardown(function()
    M.cleanup(db, P)
  end)

  before_each(function() M.clear(log) end)

  -- asserts fn fails with usage (message containing pattern) and sent nothing
  local function refused(pattern, fn, kind)
    local e, st = M.fails(log, kind or "usage", pattern, fn)
    assert.are.same({}, st)
    return e
  end

  it("refuses unknown columns in where, order, attributes, group and writes", function()
    refused("no column 'coinz'", function() P:find_all{ where = { coinz = 1 } } end)
    refused("no column 'coinz'", function() P:find_all{ order = { { "coinz", "desc" } } } end)
    refused("no column 'coinz'", function() P:find_all{ attributes = { "coinz" } } end)
    refused("no column 'coinz'", function() P:find_all{ group = { "coinz" } } end)
    refused("no column 'coinz'", function() P:count{ where = { coinz = 1 } } end)
    refused("no column 'coinz'", function() P:create{ coinz = 1 } end)
    refused("no column 'coinz'", function() P:build{ coinz = 1 } end)
    refused("no column 'coinz'", function() P:update({ coinz = 1 }, { all = true }) end)
    refused("no column 'coinz'", function() P:destroy{ where = { coinz = 1 } } end)
    refused("no column 'coinz'", function() P:increment("coinz", { all = true }) end)
  end)

  it("treats identifiers carrying SQL as unknown names, never as SQL", function()
    local evil = 'name" = \'x\' OR 1=1; DROP TABLE players; --'
    refused("no column", function() P:find_all{ where = { [evil] = 1 } } end)
    refused("no column", function() P:find_all{ order = { evil } } end)
    refused("order direction", function() P:find_all{ order = { { "coins", "desc; DROP TABLE players" } } } end)
    refused("no column", function() P:find_all{ attributes = { "id", "coins FROM players; --" } } end)
    refused("no column", function() P:sum("coins) FROM players; --") end)
    assert.are.equal(2, P:count())
  end)

  it("quotes odd but valid names, and refuses names that can't be quoted", function()
    local W = db:define("odd", {
      { 'we"ird', T.INTEGER },
      { "sp ace", T.STRING },
      { "semi;colon", T.STRING },
    }, { table_name = H.tname("odd"), timestamps = false })
    W:sync{ force = true }
    W:create{ ['we"ird'] = 1, ["sp ace"] = "x", ["semi;colon"] = "y" }
    local r = W:find_one{ where = { ['we"ird'] = 1 } }
    assert.are.equal("x", r["sp ace"])
    W:drop()
    H.raises_kind("usage", nil, function() db:define("bad", { { "a\0b", T.INTEGER } }) end)
    H.raises_kind("usage", nil, function() db:define("bad", { { "", T.INTEGER } }) end)
    H.raises_kind("usage", nil, function() db:define("bad", { { "x" }, }, { table_name = ("t"):rep(100) }) end)
  end)

  it("refuses a where decoded from untrusted JSON with operator keys", function()
    refused("'$gt' is not a column", function() P:find_all{ where = json('{"$gt": 1}') } end)
    refused("a table value must be a list of values", function() P:find_all{ where = json('{"coins": {"$gt": 300}}') } end)
    refused("'$or' is not a column", function() P:find_all{ where = json('{"$or": [{"name": "ann"}, {"name": "bob"}]}') } end)
    refused("plain values", function() P:find_all{ where = json('{"id": [1, {"$gt": 0}]}') } end)
    refused("plain values", function() P:find_all{ where = json('{"id": [[1, 2]]}') } end)
    refused("list items of a where", function() P:find_all{ where = json('[{"name": "ann"}]') } end)
    refused("list items of a where", function() P:find_all{ where = { "1=1" } } end)
    refused("no column", function() P:destroy{ where = json('{"name": "x", "__proto__": {"all": true}}') } end)
    refused("where is empty", function() P:destroy(json('{"where": {}}')) end)
    assert.are.equal(2, P:count())
  end)

  it("takes JSON values that are plain data: a list means IN, floats convert when exact", function()
    local r = P:find_all{ where = json('{"name": ["ann", "bob"], "coins": 500}') }
    assert.are.equal(1, #r)
    assert.are.equal("bob", r[1].name)
    assert.are.equal(1, #P:find_all{ where = json('{"coins": 100.0}') })
    assert.are.equal(1, P:count{ where = json('{"name": null}') } + 1) -- null means IS NULL: none here
  end)

  it("cannot be given a forged operator", function()
    assert.are.equal("sqorm.Op", getmetatable(op.gt(1)))
    local fake = setmetatable({ op = 3, 300 }, { __name = "sqorm.Op" })
    refused(nil, function() P:find_all{ where = { coins = fake } } end)
    refused("list items of a where", function() P:find_all{ where = { fake } } end)
  end)

  it("refuses values of the wrong type for the column", function()
    refused("coins", function() P:find_all{ where = { coins = "lots" } } end)
    refused("coins", function() P:find_all{ where = { coins = true } } end)
    refused("coins", function() P:find_all{ where = { coins = 1.5 } } end)
    refused("coins", function() P:find_all{ where = { coins = print } } end)
    refused("coins", function() P:find_all{ where = { coins = op.gt("x") } } end)
    refused("created_at", function() P:find_all{ where = { created_at = "yesterday" } } end)
    -- form input of the wrong type is kind validation (see model_validation_spec)
    refused("coins", function() P:create{ coins = "many" } end, "validation")
    refused("coins", function() P:update({ coins = {} }, { all = true }) end, "validation")
    refused("id", function() P:find_by_pk("1; DROP TABLE players") end)
    refused("coins", function() P:find_all{ where = { coins = op.between(1, "z") } } end)
    refused("operator value", function() P:create{ coins = op.gt(1) } end, "validation")
  end)

  it("refuses operators used in the wrong place, or with wrong arguments", function()
    H.raises_kind("usage", "one value", function() return op.gt() end)
    H.raises_kind("usage", "one value", function() return op.gt({}) end)
    H.raises_kind("usage", "two values", function() return op.between(1) end)
    H.raises_kind("usage", "no value", function() return op.is_null(1) end)
    H.raises_kind("usage", "string pattern", function() return op.like(5) end)
    refused("needs a column", function() P:find_all{ where = { op.gt(1) } } end)
    refused("condition of its own", function() P:find_all{ where = { coins = sqorm.raw("1=1") } } end)
  end)

  it("refuses absurd nesting instead of exhausting the C stack", function()
    local w = { name = "ann" }
    for _ = 1, 200 do w = { op.not_(w) } end
    refused("nested", function() P:find_all{ where = w } end)
    local v = op.eq(1)
    for _ = 1, 200 do v = op.or_(v) end
    refused("nested", function() P:find_all{ where = { coins = v } } end)
  end)

  it("refuses a where of the wrong shape", function()
    refused("expected a table", function() P:find_all{ where = "id = 1" } end)
    refused("expected a table", function() P:find_all{ where = 1 } end)
    refused("keys must be column names", function() P:find_all{ where = { [true] = 1 } } end)
  end)

  it("huge IN lists: 30,000 values work; beyond the dialect's bound-value limit a clear error", function()
    local ids = {}
    for i = 1, 30000 do ids[i] = i end
    assert.are.equal(2, P:count{ where = { id = ids } })
    for i = 30001, 100000 do ids[i] = i end
    refused("bound values", function() P:find_all{ where = { id = ids } } end)
    refused("bound values", function() P:destroy{ where = { id = op.not_in(ids) } } end)
    assert.are.equal(2, P:count())
  end)
end)
