-- Form input of the wrong type given to create / build / update / save /
-- bulk_create is kind validation, in err.fields with the rule failures
-- (in where and options it stays usage). A unique_violation carries
-- err.fields with the columns of the violated key. not_empty says "must
-- not be empty".
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

  -- asserts fn fails with validation listing exactly `fields` (name ->
  -- pattern), having sent nothing
  local function invalid(fields, fn)
    local e, st = M.fails(log, "validation", "validation failed", fn)
    assert.are.same({}, st)
    local seen = {}
    for k, v in pairs(e.fields) do
      assert.is_string(v)
      seen[k] = true
    end
    for k, pat in pairs(fields) do
      assert(e.fields[k], "no field " .. k .. " in " .. e.message)
      assert.matches(pat, e.fields[k], 1, true)
      assert.matches(k .. ": ", e.message, 1, true)
      seen[k] = nil
    end
    assert.are.same({}, seen)
    return e
  end

  it("create and build: wrong types are validation, listed with the rule failures", function()
    invalid({ coins = "expects an integer" }, function() P:create{ name = "a", coins = "lots" } end)
    invalid({ coins = "got a table", goods = "must be" }, function()
      local G = db:define("g", {
        { "id", T.INTEGER, primary_key = true, auto_increment = true },
        { "coins", T.INTEGER },
        { "goods", T.INTEGER, validate = { min = 0 } },
      }, { table_name = P.table_name .. "_g", timestamps = false })
      G:create{ coins = {}, goods = -1 }
    end)
    invalid({ coins = "expects an integer", name = "at most 32" }, function()
      P:create{ name = ("x"):rep(40), coins = 1.5 }
    end)
    invalid({ coins = "operator" }, function() P:create{ name = "a", coins = op.gt(1) } end)
    invalid({ created_at = "expects" }, function() P:build{ created_at = "yesterday" } end)
    invalid({ coins = "expects an integer" }, function() P:build{ coins = true } end)
    invalid({ coins = "expects an integer" }, function() P:upsert{ id = 1, name = "a", coins = "x" } end)
    assert.are.equal(0, P:count())
  end)

  it("update, save and bulk_create: wrong types are validation", function()
    local p = P:create{ name = "ann" }
    M.clear(log)
    invalid({ coins = "expects an integer", goods = "got a table" }, function()
      P:update({ coins = "x", goods = {} }, { where = { id = p.id } })
    end)
    invalid({ coins = "must be >= 0", goods = "expects an integer" }, function()
      P:update({ coins = -1, goods = "y" }, { all = true })
    end)
    invalid({ coins = "expects an integer", goods = "must be" }, function()
      local G = db:define("g2", {
        { "id", T.INTEGER, primary_key = true, auto_increment = true },
        { "coins", T.INTEGER },
        { "goods", T.INTEGER, validate = { min = 0 } },
      }, { table_name = P.table_name .. "_g2", timestamps = false })
      local g = G:build{}
      g:update{ coins = "x", goods = -5 }
    end)
    invalid({ coins = "expects an integer" }, function() p:update{ coins = "lots", name = "anne" } end)
    assert.are.equal("ann", p.name) -- nothing was set
    assert.is_false(p:changed())
    invalid({ coins = "expects an integer" }, function() p:set{ coins = "lots" } end)
    invalid({ coins = "expects an integer" }, function() p:set("coins", "lots") end)
    invalid({ coins = "expects an integer" }, function() p.coins = "lots" end)
    local e = invalid({ coins = "expects an integer", name = "at most 32" }, function()
      P:bulk_create{ { name = "ok" }, { name = ("x"):rep(40), coins = "many" } }
    end)
    assert.are.equal(2, e.index)
    assert.matches("record #2", e.message)
    assert.are.equal(1, P:count())
  end)

  it("in where and options a wrong type stays usage", function()
    M.fails(log, "usage", "coins", function() P:find_all{ where = { coins = "lots" } } end)
    M.fails(log, "usage", "coins", function() P:update({ goods = 1 }, { where = { coins = "lots" } }) end)
    M.fails(log, "usage", "limit", function() P:find_all{ limit = "ten" } end)
    M.fails(log, "usage", "id", function() P:find_by_pk("abc") end)
    -- and unknown names in values stay usage
    M.fails(log, "usage", "no column 'coinz'", function() P:create{ coinz = 1 } end)
  end)

  it("a unique_violation names the columns of the violated key", function()
    local a = P:create{ name = "ann" }
    local e = H.raises_kind("unique_violation", nil, function() P:create{ name = "ann" } end)
    assert.are.same({ name = "must be unique" }, e.fields)
    e = H.raises_kind("unique_violation", nil, function() P:create{ id = a.id, name = "bob" } end)
    assert.are.same({ id = "must be unique" }, e.fields)
    local b = P:create{ name = "bob" }
    b.name = "ann"
    e = H.raises_kind("unique_violation", nil, function() b:save() end)
    assert.are.same({ name = "must be unique" }, e.fields)
    e = H.raises_kind("unique_violation", nil, function() P:update({ name = "ann" }, { where = { id = b.id } }) end)
    assert.are.same({ name = "must be unique" }, e.fields)
    e = H.raises_kind("unique_violation", nil, function() P:bulk_create{ { name = "cy" }, { name = "cy" } } end)
    assert.are.same({ name = "must be unique" }, e.fields)
  end)

  it("composite unique keys and unique indexes map back to their columns", function()
    local uk = H.tname("slot_guild_pos") -- a constraint name unique per run
    local K = db:define("slot", {
      { "id", T.INTEGER, primary_key = true, auto_increment = true },
      { "guild", T.INTEGER, unique = uk },
      { "pos", T.INTEGER, unique = uk },
      { "code", T.STRING(10) },
      { "tag", T.STRING(10) },
    }, { table_name = H.tname("slots"), timestamps = false,
         indexes = { { fields = { "code", "tag" }, unique = true, name = H.tname("slot_code_tag") } } })
    K:sync{ force = true }
    K:create{ guild = 1, pos = 1, code = "a", tag = "x" }
    local e = H.raises_kind("unique_violation", nil, function() K:create{ guild = 1, pos = 1, code = "b", tag = "x" } end)
    assert.are.same({ guild = "must be unique", pos = "must be unique" }, e.fields)
    e = H.raises_kind("unique_violation", nil, function() K:create{ guild = 2, pos = 1, code = "a", tag = "x" } end)
    assert.are.same({ code = "must be unique", tag = "must be unique" }, e.fields)
    e = H.raises_kind("unique_violation", nil, function()
      K:find_or_create{ where = { guild = 3, pos = 3 }, defaults = { code = "a", tag = "x" } }
    end)
    assert.are.same({ code = "must be unique", tag = "must be unique" }, e.fields)
    K:drop()
  end)

  it("not_empty says must not be empty, also next to len", function()
    local N = db:define("note", {
      { "id", T.INTEGER, primary_key = true, auto_increment = true },
      { "title", T.STRING(20), validate = { not_empty = true, len = 10 } },
      { "body", T.TEXT, validate = { len = 10, not_empty = true } },
    }, { table_name = H.tname("notes"), timestamps = false })
    N:sync{ force = true }
    local e = invalid({ title = "must not be empty", body = "must not be empty" }, function() N:create{ title = "", body = "" } end)
    assert.matches("title: must not be empty", e.message, 1, true)
    invalid({ title = "length", body = "length" }, function()
      N:create{ title = ("t"):rep(11), body = ("b"):rep(11) }
    end)
    N:create{ title = "t", body = "b" }
    N:drop()
  end)
end)
