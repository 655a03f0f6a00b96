-- Every options table of every model method is strict: an unknown key is
-- kind usage naming the key and the method, and nothing is sent. And
-- `fields` limits what create / build / save / p:update write (the
-- mass-assignment guard): given values of other columns are left out.
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

  -- asserts fn raises usage naming the option and the method, sending nothing
  local function strict(method, fn)
    local e, st = M.fails(log, "usage", "unknown option 'bogus'", fn)
    assert.matches(method, e.message, 1, true)
    assert.are.same({}, st)
  end

  it("refuses an unknown option on every class method", function()
    local p = P:create{ id = 1, name = "ann" }
    M.clear(log)
    strict("build", function() P:build({ name = "x" }, { bogus = 1 }) end)
    strict("create", function() P:create({ name = "x" }, { bogus = 1 }) end)
    strict("bulk_create", function() P:bulk_create({ { name = "x" } }, { bogus = 1 }) end)
    strict("find_by_pk", function() P:find_by_pk(1, { bogus = 1 }) end)
    strict("find_one", function() P:find_one{ where = { id = 1 }, bogus = 1 } end)
    strict("find_all", function() P:find_all{ bogus = 1 } end)
    strict("find_or_create", function() P:find_or_create{ where = { name = "ann" }, bogus = 1 } end)
    strict("upsert", function() P:upsert({ id = 1, name = "x" }, { bogus = 1 }) end)
    strict("count", function() P:count{ bogus = 1 } end)
    strict("sum", function() P:sum("coins", { bogus = 1 }) end)
    strict("min", function() P:min("coins", { bogus = 1 }) end)
    strict("max", function() P:max("coins", { bogus = 1 }) end)
    strict("avg", function() P:avg("coins", { bogus = 1 }) end)
    strict("update", function() P:update({ coins = 1 }, { all = true, bogus = 1 }) end)
    strict("destroy", function() P:destroy{ all = true, bogus = 1 } end)
    strict("increment", function() P:increment("coins", { all = true, bogus = 1 }) end)
    strict("decrement", function() P:decrement("coins", { all = true, bogus = 1 }) end)
    strict("each", function() for _ in P:each{ bogus = 1 } do end end)
    strict("drop", function() P:drop{ bogus = 1 } end)
    strict("drop_all", function() db:drop_all{ bogus = 1 } end)
    strict("define", function()
      db:define("x", { { "a", sqorm.types.INTEGER } }, { indexes = { { fields = { "a" }, bogus = 1 } } })
    end)
    -- a where option given to a method without one is an unknown option too
    M.fails(log, "usage", "unknown option 'where'", function() P:find_by_pk(1, { where = { id = 2 } }) end)
    M.fails(log, "usage", "option keys must be names", function() P:find_all{ { id = 1 } } end)
    assert.are.equal("ann", P:find_by_pk(p.id).name)
  end)

  it("refuses an unknown option on every instance method", function()
    local p = P:create{ name = "ann" }
    M.clear(log)
    strict("save", function() p:save{ bogus = 1 } end)
    strict("update", function() p:update({ coins = 5 }, { bogus = 1 }) end)
    strict("destroy", function() p:destroy{ bogus = 1 } end)
    strict("reload", function() p:reload{ bogus = 1 } end)
    strict("increment", function() p:increment("coins", { bogus = 1 }) end)
    strict("decrement", function() p:decrement("coins", { by = 1, bogus = 1 }) end)
    assert.are.equal(0, P:find_by_pk(p.id).coins) -- nothing was written
    -- { by = n } on a list of columns is honoured, not ignored
    p:increment({ "coins", "goods" }, { by = 3 })
    local q = P:find_by_pk(p.id)
    assert.are.same({ 3, 3 }, { q.coins, q.goods })
  end)

  it("refuses unknown restore options on paranoid models", function()
    local S = M.players(db, { paranoid = true })
    S:sync{ force = true }
    M.clear(log)
    strict("restore", function() S:restore{ all = true, bogus = 1 } end)
    S:drop()
  end)

  it("create with fields writes only those of the given values", function()
    local form = { name = "mallory", coins = 1000000, goods = 7, id = 99 }
    local p = P:create(form, { fields = { "name", "goods" } })
    local row = P:find_by_pk(p.id)
    assert.are.equal("mallory", row.name)
    assert.are.equal(7, row.goods)
    assert.are.equal(0, row.coins) -- the default, not the form's value
    assert.are_not.equal(99, p.id) -- a generated key
    assert.are.equal(0, p.coins) -- the instance is what was stored
    -- one name alone is fine too
    local q = P:create({ name = "eve", coins = 5 }, { fields = "name" })
    assert.are.equal(0, P:find_by_pk(q.id).coins)
  end)

  it("fields must be a non-empty list of column names", function()
    M.clear(log)
    H.raises_kind("usage", "no column 'nope'", function() P:create({ name = "x" }, { fields = { "nope" } }) end)
    H.raises_kind("usage", "non-empty list", function() P:create({ name = "x" }, { fields = {} }) end)
    H.raises_kind("usage", "non-empty list", function() P:create({ name = "x" }, { fields = 3 }) end)
    H.raises_kind("usage", "fields must be column names", function() P:create({ name = "x" }, { fields = { 3 } }) end)
    -- names outside fields must still be columns (strict names)
    H.raises_kind("usage", "no column 'coinz'", function() P:create({ name = "x", coinz = 1 }, { fields = { "name" } }) end)
    assert.are.same({}, M.statements(log))
  end)

  it("build with fields, then save, and save{ fields } of a new instance", function()
    local p = P:build({ name = "a", coins = 50 }, { fields = { "name" } })
    assert.are.equal(0, p.coins) -- the default
    p:save()
    assert.are.equal(0, P:find_by_pk(p.id).coins)
    local q = P:build{ name = "b", coins = 60, goods = 5 }
    q:save{ fields = { "name", "goods" } }
    local row = P:find_by_pk(q.id)
    assert.are.same({ "b", 0, 5 }, { row.name, row.coins, row.goods })
    assert.are.equal(0, q.coins)
  end)

  it("save{ fields } of a loaded instance writes only those, the rest stays pending", function()
    local p = P:create{ name = "ann", coins = 1, goods = 1 }
    p.name = "anne"
    p.coins = 2
    M.clear(log)
    p:save{ fields = { "name" } }
    local st = M.statements(log)
    assert.are.equal(1, #st)
    assert.is_nil(st[1]:find("coins", 1, true))
    assert.matches("updated_at", st[1])
    local row = P:find_by_pk(p.id)
    assert.are.same({ "anne", 1 }, { row.name, row.coins })
    assert.are.same({ "coins" }, p:changed())
    -- nothing in fields changed: nothing sent
    M.clear(log)
    p:save{ fields = { "goods" } }
    assert.are.same({}, M.statements(log))
    p:save()
    assert.are.equal(2, P:find_by_pk(p.id).coins)
    assert.is_false(p:changed())
  end)

  it("p:update with fields sets and writes only those", function()
    local p = P:create{ name = "ann", coins = 1 }
    p:update({ name = "anne", coins = 500 }, { fields = { "name" } })
    assert.are.equal(1, p.coins)
    local row = P:find_by_pk(p.id)
    assert.are.same({ "anne", 1 }, { row.name, row.coins })
    assert.is_false(p:changed())
  end)

  it("where still works next to other options (no false positives)", function()
    P:create{ name = "ann", coins = 5 }
    assert.are.equal(1, #P:find_all{ where = { coins = op.gt(1) }, order = { { "id", "desc" } }, limit = 5, offset = 0 })
  end)
end)
