-- Validation before any SQL: allow_null, len, min/max, not_empty, Lua
-- patterns and custom functions; one error of kind validation listing
-- every failing field (err.fields), on create, save, update and
-- bulk_create; server-side constraint failures as constraint /
-- unique_violation.
local sqorm = require "sqorm"
local H = require "spec.helper"
local M = require "spec.model_helper"
local T = sqorm.types

H.each_dialect(describe, function(d)
  local db, log, U

  before_each(function()
    db, log = M.connect(d)
    U = db:define("user", {
      { "id", T.INTEGER, primary_key = true, auto_increment = true },
      { "name", T.STRING(16), allow_null = false, validate = { len = { 2, 10 }, pattern = "^%a+$" } },
      { "email", T.STRING(64), unique = true, validate = {
          has_at = function(v) if not v:find("@", 1, true) then error("must contain @") end end } },
      { "age", T.INTEGER, validate = { min = 0, max = 150,
          is_even = function(v) return v % 2 == 0, "must be even" end } },
      { "nick", T.STRING(16), validate = { not_empty = true, no_x = function(v) return not v:find("x") end } },
      { "code", T.STRING(8), validate = function(v) if v == "bad" then return nil, "code is bad" end end },
    }, { table_name = H.tname("users"), timestamps = false })
    U:sync{ force = true }
    M.clear(log)
  end)

  after_each(function()
    M.cleanup(db, U)
  end)

  it("accepts valid values", function()
    local u = U:create{ name = "Ann", email = "a@x.io", age = 30, nick = "annie", code = "ok" }
    assert.are.equal("Ann", u.name)
  end)

  it("lists every failing field in one validation error, and sends nothing", function()
    local e, st = M.fails(log, "validation", "validation failed", function()
      U:create{ name = "A1", email = "nope", age = 151, nick = "", code = "bad" }
    end)
    assert.are.same({}, st)
    assert.are.equal("must match the pattern '^%a+$'", e.fields.name)
    assert.are.equal("must contain @", e.fields.email)
    assert.are.equal("must be <= 150", e.fields.age)
    assert.are.equal("must not be empty", e.fields.nick)
    assert.are.equal("code is bad", e.fields.code)
    for _, f in ipairs{ "name", "email", "age", "nick", "code" } do
      assert.matches(f .. ": ", e.message, 1, true)
    end
    assert.matches("^validation failed: name: ", e.message)
    assert.matches("sqorm.Error [validation]", tostring(e), 1, true)
  end)

  it("checks allow_null and missing NOT NULL columns", function()
    local e = M.fails(log, "validation", "name: cannot be null", function() U:create{ age = 2 } end)
    assert.are.equal("cannot be null", e.fields.name)
    e = M.fails(log, "validation", "name", function() U:create{ name = sqorm.null } end)
    assert.are.equal("cannot be null", e.fields.name)
    assert.are.same({}, M.statements(log))
  end)

  it("runs custom validators: error(), false, nil + message", function()
    local e = M.fails(log, "validation", nil, function() U:create{ name = "Bo", age = 3 } end)
    assert.are.equal("must be even", e.fields.age)
    e = M.fails(log, "validation", nil, function() U:create{ name = "Bo", nick = "xx" } end)
    assert.are.equal("failed validation 'no_x'", e.fields.nick)
    e = M.fails(log, "validation", nil, function() U:create{ name = "Bo", email = "plain" } end)
    assert.are.equal("must contain @", e.fields.email) -- no "file:line:" prefix
  end)

  it("checks length limits of STRING(n) and len", function()
    local e = M.fails(log, "validation", nil, function() U:create{ name = "Abcdefghijk" } end)
    assert.matches("length", e.fields.name)
    assert.are.same({}, M.statements(log))
  end)

  it("validates on save, class-level update and bulk_create; nothing sent", function()
    local u = U:create{ name = "Ann" }
    M.clear(log)
    u.age = -2
    local e = M.fails(log, "validation", nil, function() u:save() end)
    assert.are.equal("must be >= 0", e.fields.age)
    e = M.fails(log, "validation", nil, function() U:update({ name = "x1" }, { where = { id = u.id } }) end)
    assert.is_string(e.fields.name)
    e = M.fails(log, "validation", "record #2", function() U:bulk_create{ { name = "Ok" }, { name = "no!" } } end)
    assert.are.equal(2, e.index)
    assert.are.same({}, M.statements(log))
  end)

  it("leaves validators out for NULL values of nullable columns", function()
    local u = U:create{ name = "Ann", age = sqorm.null, email = sqorm.null }
    assert.is_nil(u.age)
  end)

  it("reports what the server refuses as unique_violation / constraint", function()
    U:create{ name = "Ann", email = "a@b.c" }
    local e = H.raises(function() U:create{ name = "Bob", email = "a@b.c" } end)
    assert.are.equal("unique_violation", e.kind)
    assert.is_string(e.code)
    if d.name ~= "sqlite" then assert.are.equal(5, #e.sqlstate) end
  end)
end)
