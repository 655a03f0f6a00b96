-- Optimistic locking (define's `version`): every instance save and
-- destroy checks the version in the same statement and moves it on; a
-- lost race raises kind stale and changes nothing.
local sqorm = require "sqorm"
local H = require "spec.helper"
local M = require "spec.model_helper"
local T = sqorm.types

H.each_dialect(describe, function(d)
  local db, log, P

  before_each(function()
    db, log = M.connect(d)
    P = M.players(db, { version = true, paranoid = true })
    P:sync { force = true }
    M.clear(log)
  end)

  after_each(function() M.cleanup(db, P) end)

  local function stored(name)
    return P:find_one { where = { name = name }, paranoid = false }
  end

  it("adds a version column that starts at 0", function()
    local p = P:create { name = "a", coins = 1 }
    assert.are.equal(0, p.version)
    assert.are.equal(0, stored("a").version)
  end)

  it("save bumps the version in the statement that checks it", function()
    local p = P:create { name = "a", coins = 1 }
    M.clear(log)
    p.coins = 2
    p:save()
    assert.are.equal(1, p.version)
    local st = M.statements(log)
    assert.are.equal(1, #st)
    assert.matches("^UPDATE .+ WHERE .+version.+ = ", st[1])
    assert.are.equal(1, stored("a").version)
    p:update { coins = 3 }
    assert.are.equal(2, p.version)
    assert.are.equal(2, stored("a").version)
  end)

  it("the second of two saves of one row raises stale and the row keeps the first save", function()
    P:create { name = "a", coins = 1 }
    local x, y = stored("a"), stored("a")
    x.coins = 10
    x:save()
    y.coins = 20
    M.clear(log)
    local err = M.fails(log, "stale", "player row id = " .. y.id .. " is not at version 0", y.save, y)
    assert.matches("nothing was written", err.message)
    assert.are.equal(0, y.version)      -- the instance keeps its old version
    assert.are.equal(20, y.coins)       -- and its pending change
    local row = stored("a")
    assert.are.equal(10, row.coins)
    assert.are.equal(1, row.version)
    -- instance update loses the same way
    H.raises_kind("stale", "update:", y.update, y, { goods = 5 })
    assert.are.equal(0, stored("a").goods)
    -- after a reload it saves
    y:reload()
    assert.are.equal(1, y.version)
    y.coins = 30
    y:save()
    assert.are.equal(30, stored("a").coins)
    assert.are.equal(2, stored("a").version)
  end)

  it("destroy with an old version raises stale and the row stays", function()
    P:create { name = "a", coins = 1 }
    local x, y = stored("a"), stored("a")
    x:update { coins = 2 }
    H.raises_kind("stale", "destroy: player row id = " .. y.id, y.destroy, y)
    H.raises_kind("stale", "destroy:", y.destroy, y, { force = true })
    local row = stored("a")
    assert.is_nil(row.deleted_at)
    assert.are.equal(1, row.version)
    -- a soft destroy with the right version bumps it
    x:destroy()
    assert.are.equal(2, x.version)
    row = stored("a")
    assert.is_not_nil(row.deleted_at)
    assert.are.equal(2, row.version)
    -- restore (class-level) bumps it too
    assert.are.equal(1, P:restore { where = { name = "a" } })
    assert.are.equal(3, stored("a").version)
    -- a hard destroy with the right version deletes
    local z = stored("a")
    z:destroy { force = true }
    assert.is_nil(stored("a"))
  end)

  it("class-level update, increment and destroy bump the version without a check", function()
    P:bulk_create { { name = "a" }, { name = "b" } }
    assert.are.equal(2, P:update({ coins = 5 }, { all = true }))
    assert.are.equal(1, stored("a").version)
    P:increment("coins", { where = { name = "a" } })
    assert.are.equal(2, stored("a").version)
    assert.are.equal(1, stored("b").version)
    P:destroy { where = { name = "b" } }
    assert.are.equal(2, stored("b").version)
  end)

  it("instance increment bumps the version (no check) and the instance follows", function()
    local p = P:create { name = "a" }
    local other = stored("a")
    p:increment("coins", 5)
    assert.are.equal(1, p.version)
    assert.are.equal(1, stored("a").version)
    assert.are.equal(5, stored("a").coins)
    -- the other copy is now stale for save, not for increment
    other:increment("coins", 1)
    assert.are.equal(6, stored("a").coins)
    other.goods = 1
    H.raises_kind("stale", "save:", other.save, other)
  end)

  it("the version can't be set by the user (usage, nothing sent)", function()
    local p = P:create { name = "a" }
    M.clear(log)
    local _, st = M.fails(log, "usage", "optimistic-locking version", function() p.version = 7 end)
    assert.are.equal(0, #st)
    M.fails(log, "usage", "optimistic-locking version", p.set, p, "version", 7)
    M.fails(log, "usage", "optimistic-locking version", p.update, p, { version = 7 })
    M.fails(log, "usage", "optimistic-locking version", P.create, P, { name = "b", version = 7 })
    M.fails(log, "usage", "optimistic-locking version", P.update, P, { version = 7 }, { all = true })
    M.fails(log, "usage", "optimistic-locking version", P.increment, P, "version", { all = true })
    M.fails(log, "usage", "optimistic-locking version", p.increment, p, "version")
    M.fails(log, "usage", "optimistic-locking version", P.bulk_create, P, { { name = "c", version = 1 } })
    M.fails(log, "usage", "optimistic-locking version", P.upsert, P, { name = "c", version = 1 })
    assert.are.equal(0, #M.statements(log))
    assert.are.equal(0, stored("a").version)
  end)

  it("an instance loaded without its version can't be saved (usage)", function()
    P:create { name = "a" }
    local p = P:find_one { where = { name = "a" }, attributes = { "id", "coins" } }
    p.coins = 3
    M.clear(log)
    local _, st = M.fails(log, "usage", "has no version", p.save, p)
    assert.are.equal(0, #st)
  end)

  it("upsert and update_on_duplicate bump the version of an updated row", function()
    P:create { name = "a", coins = 1 }
    P:upsert({ name = "a", coins = 2 }, { conflict = d.name ~= "mysql" and { "name" } or nil })
    assert.are.equal(1, stored("a").version)
    P:bulk_create({ { name = "a", coins = 3 }, { name = "b", coins = 1 } },
      { update_on_duplicate = { "coins" }, conflict = { "name" }, returning = false })
    assert.are.equal(2, stored("a").version)
    assert.are.equal(3, stored("a").coins)
    assert.are.equal(0, stored("b").version)
  end)

  it("version = \"name\" uses that column; sync{ alter = true } adds it to an existing table", function()
    local tname = H.tname("vplayers")
    local cols = { { "name", T.STRING(32), unique = true }, { "coins", T.INTEGER, allow_null = false, default = 0 } }
    local V0 = db:define("vplayer", cols, { table_name = tname })
    V0:sync { force = true }
    V0:create { name = "old" }
    local V = db:define("vplayer", cols, { table_name = tname, version = "lock_version" })
    V:sync { alter = true }
    local p = V:find_one { where = { name = "old" } }
    assert.are.equal(0, p.lock_version)
    local q = V:find_one { where = { name = "old" } }
    p:update { coins = 1 }
    assert.are.equal(1, p.lock_version)
    H.raises_kind("stale", "vplayer row", q.update, q, { coins = 2 })
    assert.are.equal(1, V:find_one { where = { name = "old" } }.coins)
    -- a user's own integer column takes the role
    local tname2 = H.tname("wplayers")
    local W = db:define("wplayer", { { "name", T.STRING(32) }, { "rev", T.BIGINT } },
      { table_name = tname2, version = "rev" })
    W:sync { force = true }
    assert.are.equal(0, W:create { name = "w" }.rev)
    H.raises_kind("usage", "must be a plain", db.define, db, "xplayer", { { "rev", T.STRING(8) } },
      { table_name = H.tname("x"), version = "rev" })
    H.raises_kind("usage", "version must be true or a column name", db.define, db, "yplayer",
      { { "n", T.INTEGER } }, { version = 3 })
    pcall(V.drop, V)
    pcall(W.drop, W)
  end)
end)
