-- Instances: field access, tracked assignment, save (changed columns
-- only; nothing when nothing changed), update, destroy, reload, changed,
-- to_table, tostring, pairs, get/set for columns a method shadows.
local sqorm = require "sqorm"
local H = require "spec.helper"
local M = require "spec.model_helper"
local T = sqorm.types

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

  it("reads columns as fields and tracks assignments", function()
    local p = P:create{ name = "ann", coins = 10, goods = 1 }
    assert.are.equal("ann", p.name)
    assert.is_false(p:changed())
    p.coins = 20
    assert.are.same({ "coins" }, p:changed())
    p.coins = 20 -- same value again: still just coins
    p.goods = 1 -- unchanged value: not marked
    assert.are.same({ "coins" }, p:changed())
    p.name = sqorm.null
    assert.is_nil(p.name)
    assert.are.same({ "name", "coins" }, p:changed())
  end)

  it("converts assigned values to the column type, refusing what doesn't fit", function()
    local p = P:create{ name = "ann" }
    p.coins = "42"
    assert.are.equal(42, p.coins)
    assert.are.equal("integer", math.type(p.coins))
    p.coins = 7.0
    assert.are.equal("integer", math.type(p.coins))
    -- a value of the wrong type is form input that fails validation
    local e = H.raises_kind("validation", "coins", function() p.coins = "lots" end)
    assert.matches("expects an integer", e.fields.coins)
    H.raises_kind("validation", "coins", function() p.coins = 1.5 end)
    H.raises_kind("validation", "coins", function() p.coins = {} end)
    assert.are.equal(7, p.coins) -- nothing was assigned
    H.raises_kind("usage", "no column 'coinz'", function() p.coinz = 1 end)
    assert.is_nil(p.coinz) -- reading an unknown name is nil
  end)

  it("save updates only the changed columns plus updated_at, and nothing when nothing changed", function()
    local p = P:create{ name = "ann", coins = 1 }
    M.clear(log)
    assert.are.equal(p, p:save())
    assert.are.same({}, M.statements(log))
    p.coins = 2
    p:save()
    local st = M.statements(log)
    assert.are.equal(1, #st)
    assert.matches('^UPDATE .* SET ["`]coins["`] = .+, ["`]updated_at["`] = ', st[1])
    assert.is_nil(st[1]:find("name", 1, true))
    assert.is_false(p:changed())
    assert.are.equal(2, P:find_by_pk(p.id).coins)
  end)

  it("update sets values and saves; returns the instance", function()
    local p = P:create{ name = "ann" }
    assert.are.equal(p, p:update{ coins = 800, goods = 800 })
    local q = P:find_by_pk(p.id)
    assert.are.same({ 800, 800 }, { q.coins, q.goods })
    H.raises_kind("usage", "no column", function() p:update{ nope = 1 } end)
    H.raises_kind("usage", nil, function() p:update("coins") end)
  end)

  it("destroy deletes the row; reload re-reads it (stale once gone)", function()
    local p = P:create{ name = "ann", coins = 5 }
    db:exec(("UPDATE %s SET coins = 99 WHERE id = ?"):format(P.table_name), { p.id })
    p.goods = 3 -- pending change, dropped by reload
    assert.are.equal(p, p:reload())
    assert.are.equal(99, p.coins)
    assert.are.equal(0, p.goods)
    assert.is_false(p:changed())
    assert.is_true(p:destroy())
    assert.is_nil(P:find_by_pk(p.id))
    H.raises_kind("stale", "reload", function() p:reload() end)
    H.raises_kind("stale", "destroy", function() p:destroy() end)
  end)

  it("to_table, tostring and pairs", function()
    local p = P:create{ id = 6, name = "ann", coins = 700, goods = 1 }
    local t = p:to_table()
    assert.is_nil(getmetatable(t))
    assert.are.equal(6, t.id)
    assert.are.equal("ann", t.name)
    assert.are.equal(700, t.coins)
    assert.is_string(t.created_at)
    local s = tostring(p)
    assert.matches("^player {", s)
    assert.matches("id = 6", s, 1, true)
    assert.matches('name = "ann"', s, 1, true)
    assert.matches("coins = 700", s, 1, true)
    local seen = {}
    for k, v in pairs(p) do seen[k] = v end
    assert.are.same(t, seen)
  end)

  it("methods win over same-named columns; get/set reach the columns", function()
    local W = db:define("weird", {
      { "id", T.INTEGER, primary_key = true, auto_increment = true },
      { "save", T.INTEGER },
      { "update", T.STRING },
    }, { table_name = H.tname("weirds"), timestamps = false })
    W:sync{ force = true }
    local w = W:create{ save = 1, update = "u" }
    assert.is_function(w.save)
    assert.are.equal(1, w:get("save"))
    assert.are.equal("u", w:get("update"))
    w:set("save", 2)
    assert.are.same({ "save" }, w:changed())
    w:save()
    assert.are.equal(2, W:find_by_pk(w.id):get("save"))
    w:set{ save = 3, update = "v" }
    w:save()
    assert.are.equal("v", W:find_by_pk(w.id):get("update"))
    H.raises_kind("usage", "no column", function() w:get("nope") end)
    W:drop()
  end)

  it("raises usage when a method is called on something that is no instance", function()
    local p = P:create{ name = "x" }
    H.raises_kind("usage", "instance", function() p.save({}) end)
    H.raises_kind("usage", "instance", function() p.save() end)
  end)

  it("save validates first and sends nothing when it fails", function()
    local p = P:create{ name = "x" }
    M.clear(log)
    p.coins = -1
    local e = M.fails(log, "validation", "coins", function() p:save() end)
    assert.are.equal("must be >= 0", e.fields.coins)
    assert.are.same({}, M.statements(log))
  end)
end)
