-- An instance addresses its row by the key it was loaded with: changing a
-- key column and saving re-keys that row (never another one), and an
-- instance save / update / destroy / reload / increment that matches no
-- row raises kind stale. Affected rows are matched rows on every dialect
-- (MySQL connects with CLIENT_FOUND_ROWS).
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

  local function seed()
    local ann = P:create{ id = 1, name = "ann", coins = 10 }
    local bob = P:create{ id = 2, name = "bob", coins = 20 }
    return ann, bob
  end

  it("changing bob's id to ann's id is a unique_violation and leaves ann alone", function()
    seed()
    local bob = P:find_by_pk(2)
    bob.id = 1
    local e = H.raises_kind("unique_violation", nil, function() bob:save() end)
    assert.are.equal("must be unique", e.fields.id)
    local ann = P:find_by_pk(1)
    assert.are.equal("ann", ann.name)
    assert.are.equal(10, ann.coins)
    assert.are.equal("bob", P:find_by_pk(2).name)
    assert.are.equal(2, P:count())
  end)

  it("changing the id to a free one re-keys the instance's own row", function()
    seed()
    local bob = P:find_by_pk(2)
    bob.id = 50
    bob.coins = 21
    assert.are.equal(bob, bob:save())
    assert.is_nil(P:find_by_pk(2))
    local moved = P:find_by_pk(50)
    assert.are.equal("bob", moved.name)
    assert.are.equal(21, moved.coins)
    assert.are.equal("ann", P:find_by_pk(1).name)
    assert.is_false(bob:changed())
    -- the instance now addresses the row by its new key
    bob.coins = 22
    bob:save()
    assert.are.equal(22, P:find_by_pk(50).coins)
    bob:reload()
    assert.are.equal(50, bob.id)
  end)

  it("a changed key is kept until saved: reload and destroy use the loaded key", function()
    seed()
    local bob = P:find_by_pk(2)
    bob.id = 60
    bob:reload() -- the row by id 2; the change is dropped
    assert.are.equal(2, bob.id)
    assert.are.equal("bob", bob.name)
    bob.id = 61
    assert.is_true(bob:destroy())
    assert.is_nil(P:find_by_pk(2))
    assert.are.equal(1, P:count())
  end)

  it("changing the key twice still addresses the loaded row", function()
    seed()
    local bob = P:find_by_pk(2)
    bob.id = 70
    bob.id = 71
    bob:save()
    assert.is_nil(P:find_by_pk(2))
    assert.is_nil(P:find_by_pk(70))
    assert.are.equal("bob", P:find_by_pk(71).name)
  end)

  it("save{ fields } that leaves the key out keeps the key change pending", function()
    seed()
    local bob = P:find_by_pk(2)
    bob.id = 80
    bob.coins = 99
    bob:save{ fields = { "coins" } }
    assert.are.equal(99, P:find_by_pk(2).coins)
    assert.are.same({ "id" }, bob:changed())
    bob:save()
    assert.are.equal(99, P:find_by_pk(80).coins)
    assert.is_nil(P:find_by_pk(2))
  end)

  it("a save of a row deleted meanwhile raises stale and writes nothing", function()
    local ann = seed()
    db:exec(("DELETE FROM %s WHERE id = 1"):format(P.table_name))
    ann.coins = 11
    M.clear(log)
    local e = H.raises_kind("stale", "save", function() ann:save() end)
    assert.matches("no player row", e.message)
    assert.are.equal(1, P:count())
    H.raises_kind("stale", "update", function() ann:update{ coins = 12 } end)
    H.raises_kind("stale", "increment", function() ann:increment("coins") end)
    H.raises_kind("stale", "decrement", function() ann:decrement("coins", 2) end)
  end)

  it("reload and destroy of a deleted row raise stale", function()
    local ann = seed()
    P:destroy{ where = { id = 1 } }
    H.raises_kind("stale", "reload", function() ann:reload() end)
    H.raises_kind("stale", "destroy", function() ann:destroy() end)
    H.raises_kind("stale", "destroy", function() ann:destroy{ force = true } end)
  end)

  it("a save that sets values identical to the stored ones is not stale", function()
    local Q = db:define("quiet", {
      { "id", T.INTEGER, primary_key = true },
      { "name", T.STRING(20) },
    }, { table_name = H.tname("quiet"), timestamps = false })
    Q:sync{ force = true }
    Q:create{ id = 1, name = "x" }
    local a, b = Q:find_by_pk(1), Q:find_by_pk(1)
    a.name = "y"
    a:save()
    b.name = "y" -- the row already holds "y": the UPDATE changes nothing but matches
    assert.are.equal(b, b:save())
    assert.are.equal(b, b:update{ name = "y" })
    assert.are.equal(1, Q:update({ name = "y" }, { where = { id = 1 } })) -- matched rows
    local r = db:exec(("UPDATE %s SET name = 'y' WHERE id = 1"):format(Q.table_name))
    assert.are.equal(1, r.affected_rows)
    Q:drop()
  end)

  it("paranoid rows: save and reload of a soft-deleted row still find it", function()
    local S = M.players(db, { paranoid = true })
    S:sync{ force = true }
    local p = S:create{ name = "sam" }
    p:destroy()
    p.coins = 5
    p:save()
    p:reload()
    assert.are.equal(5, p.coins)
    p:destroy{ force = true }
    H.raises_kind("stale", "reload", function() p:reload() end)
    S:drop()
  end)

  it("composite keys: re-keying one column of the key", function()
    local C = db:define("pair", {
      { "a", T.INTEGER, primary_key = true },
      { "b", T.INTEGER, primary_key = true },
      { "v", T.STRING(10) },
    }, { table_name = H.tname("pairs"), timestamps = false })
    C:sync{ force = true }
    C:create{ a = 1, b = 1, v = "one" }
    C:create{ a = 1, b = 2, v = "two" }
    local two = C:find_by_pk{ a = 1, b = 2 }
    two.b = 1
    H.raises_kind("unique_violation", nil, function() two:save() end)
    assert.are.equal("one", C:find_by_pk{ a = 1, b = 1 }.v)
    two.b = 3
    two:save()
    assert.are.equal("two", C:find_by_pk{ a = 1, b = 3 }.v)
    assert.is_nil(C:find_by_pk{ a = 1, b = 2 })
    C:drop()
  end)
end)
