-- An explicitly given where that is empty raises kind usage on every
-- method, reads included: in Lua { token = nil } arrives as {}, and a
-- login check must not return the first row. Omitting where means every
-- row. Empty condition tables inside operators are refused too, and list
-- items past a hole never vanish. Integer keys near the limits of a where
-- list are ordered without overflow.
local sqorm = require "sqorm"
local H = require "spec.helper"
local M = require "spec.model_helper"
local T, op = sqorm.types, sqorm.op

H.each_dialect(describe, function(d)
  local db, log, S, P

  setup(function()
    db, log = M.connect(d)
    S = db:define("session", {
      { "id", T.INTEGER, primary_key = true, auto_increment = true },
      { "token", T.STRING(64) },
      { "user", T.STRING(32) },
    }, { table_name = H.tname("sessions"), timestamps = false, paranoid = true })
    S:sync{ force = true }
    S:create{ token = "admin-secret", user = "admin" }
    S:create{ token = "guest-token", user = "guest" }
    P = M.players(db)
    P:sync{ force = true }
  end)

  teardown(function()
    M.cleanup(db, S, P)
  end)

  before_each(function() M.clear(log) end)

  local function refused(pattern, fn)
    local e, st = M.fails(log, "usage", pattern, fn)
    assert.are.same({}, st)
    return e
  end

  it("a nil in where does not return the first row", function()
    local token -- not sent by the client
    local e = refused("where is empty", function() return S:find_one{ where = { token = token } } end)
    assert.matches("find_one", e.message)
    assert.matches("omit where", e.message)
  end)

  it("refuses an empty where on every method that takes one", function()
    local w = {}
    refused("find_all: where is empty", function() S:find_all{ where = w } end)
    refused("find_one: where is empty", function() S:find_one{ where = w } end)
    refused("count: where is empty", function() S:count{ where = w } end)
    refused("sum: where is empty", function() S:sum("id", { where = w }) end)
    refused("min: where is empty", function() S:min("id", { where = w }) end)
    refused("max: where is empty", function() S:max("id", { where = w }) end)
    refused("avg: where is empty", function() S:avg("id", { where = w }) end)
    refused("update: where is empty", function() S:update({ user = "x" }, { where = w }) end)
    refused("update: where is empty", function() S:update({ user = "x" }, { where = w, all = true }) end)
    refused("destroy: where is empty", function() S:destroy{ where = w } end)
    refused("destroy: where is empty", function() S:destroy{ where = w, all = true } end)
    refused("restore: where is empty", function() S:restore{ where = w } end)
    refused("increment: where is empty", function() S:increment("id", { where = w }) end)
    refused("decrement: where is empty", function() S:decrement("id", { where = w }) end)
    refused("each: where is empty", function() for _ in S:each{ where = w } do end end)
    refused("find_or_create: where is empty", function() S:find_or_create{ where = w } end)
    refused("having is empty", function()
      P:find_all{ attributes = { "name" }, group = { "name" }, having = w }
    end)
    assert.are.equal(2, S:count())
  end)

  it("omitting where still means every row (reads) and needs all = true (writes)", function()
    assert.are.equal(2, #S:find_all())
    assert.are.equal(2, S:count())
    refused("without a where", function() S:destroy{} end)
    assert.are.equal(2, S:update({ token = "rotated" }, { all = true }))
  end)

  it("refuses empty condition tables nested in operators", function()
    local none
    refused("empty condition table", function() S:find_all{ where = { op.or_({ token = none }, { user = "guest" }) } } end)
    refused("empty condition table", function() S:find_all{ where = { op.or_{ {}, { user = "guest" } } } } end)
    refused("empty condition table", function() S:find_all{ where = op.and_({ token = none }) } end)
    refused("empty condition table", function() S:find_all{ where = { op.and_({ user = "admin" }, {}) } } end)
    refused("empty", function() S:find_all{ where = { op.not_({ token = none }) } } end)
    refused("empty condition table", function() S:count{ where = { op.or_{ { token = none } } } } end)
    -- a column-level empty list stays "IN nothing"
    assert.are.equal(0, #S:find_all{ where = { id = {} } })
  end)

  it("never drops a condition after a hole in an operator's list", function()
    local conds = { { user = "admin" } }
    conds[3] = { user = "guest" }
    refused("holes", function() S:find_all{ where = { op.or_(conds) } } end)
  end)

  it("orders where list items with integer keys near the limits", function()
    local w = {
      [math.maxinteger] = op.or_({ user = "guest" }, { user = "admin" }),
      [2147483647] = op.not_{ user = "nobody" },
      [math.mininteger] = op.or_({ id = op.gt(0) }),
      user = "guest",
    }
    local rows = S:find_all{ where = w }
    assert.are.equal(1, #rows)
    assert.are.equal("guest", rows[1].user)
    -- the same shape renders the same SQL every time
    S:find_all{ where = w }
    local st = M.statements(log)
    assert.are.equal(st[1], st[2])
  end)
end)
