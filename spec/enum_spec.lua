-- T.ENUM on every dialect: values checked before any SQL (proved by the
-- logged statements), the native type per dialect, and sync{ alter = true }
-- adding values, run twice without error (sequelize #7649).
local sqorm = require "sqorm"
local H = require "spec.helper"
local MH = require "spec.model_helper"

local T, op = sqorm.types, sqorm.op

describe("sqorm.types.ENUM", function()
  it("takes a list of distinct, non-empty strings", function()
    assert.are.equal("ENUM('common', 'rare')", tostring(T.ENUM{ "common", "rare" }))
    assert.are.equal(T.ENUM{ "a", "b" }, T.ENUM{ "a", "b" })
    assert.are_not.equal(T.ENUM{ "a", "b" }, T.ENUM{ "a", "c" })
    H.raises_kind("usage", "list of values", T.ENUM, "a")
    H.raises_kind("usage", "1 to", T.ENUM, {})
    H.raises_kind("usage", "listed twice", T.ENUM, { "a", "a" })
    H.raises_kind("usage", "not a string", T.ENUM, { "a", 2 })
    H.raises_kind("usage", "1 to 63 bytes", T.ENUM, { "" })
    H.raises_kind("usage", "1 to 63 bytes", T.ENUM, { ("x"):rep(64) })
    H.raises_kind("usage", "no other keys", T.ENUM, { "a", x = "b" })
    local db = sqorm.connect("sqlite::memory:")
    H.raises_kind("usage", "needs its values", db.define, db, "x", { { "k", T.ENUM } })
    H.raises_kind("usage", "common", db.define, db, "y", { { "k", T.ENUM{ "common" }, default = "rare" } })
    db:close()
  end)
end)

H.each_dialect(describe, function(d)
  local db, log, Item, table_name

  local function define(values, opts)
    local o = { table_name = table_name, timestamps = false }
    for k, v in pairs(opts or {}) do o[k] = v end
    return db:define("item", {
      { "name", T.STRING(32) },
      { "rarity", T.ENUM(values), allow_null = false, default = values[1] },
    }, o)
  end

  before_each(function()
    db, log = MH.connect(d)
    table_name = H.tname("enum_items")
    Item = define({ "common", "rare" })
    Item:sync()
  end)

  after_each(function()
    MH.cleanup(db, Item)
  end)

  it("creates the dialect's enum type and reads values back", function()
    local create = table.concat(MH.statements(log), "\n")
    if d.name == "mysql" then assert.truthy(create:find("ENUM('common', 'rare')", 1, true))
    elseif d.name == "postgres" then assert.truthy(create:find('CREATE TYPE "enum_' .. table_name .. '_rarity" AS ENUM', 1, true))
    else assert.truthy(create:find([[CHECK ("rarity" IN ('common', 'rare'))]], 1, true)) end
    local a = Item:create{ name = "a", rarity = "rare" }
    Item:create{ name = "b" }
    assert.are.equal("rare", Item:find_by_pk(a.id).rarity)
    assert.are.equal(1, Item:count{ where = { rarity = "common" } })
    assert.are.equal(2, Item:count{ where = { rarity = op.in_("common", "rare") } })
  end)

  it("refuses a value outside the list before any SQL, on every write and in where", function()
    local a = Item:create{ name = "a" }
    local from = #log + 1
    local err = H.raises_kind("validation", "expects one of 'common', 'rare'; got string 'epic'",
      Item.create, Item, { name = "x", rarity = "epic" })
    assert.is_truthy(err.fields.rarity)
    H.raises_kind("validation", "'Rare'", Item.create, Item, { name = "x", rarity = "Rare" })
    H.raises_kind("validation", "integer 1", Item.create, Item, { name = "x", rarity = 1 })
    H.raises_kind("validation", "epic", Item.bulk_create, Item, { { name = "y" }, { name = "z", rarity = "epic" } })
    H.raises_kind("validation", "epic", Item.update, Item, { rarity = "epic" }, { where = { name = "a" } })
    H.raises_kind("validation", "epic", a.update, a, { rarity = "epic" })
    H.raises_kind("usage", "epic", Item.find_all, Item, { where = { rarity = "epic" } })
    assert.are.same({}, MH.statements(log, from))
    assert.are.equal(1, Item:count())
  end)

  it("sync{ alter = true } adds values, and twice changes nothing", function()
    Item:create{ name = "a", rarity = "rare" }
    local Item2 = define({ "common", "rare", "epic" })
    Item2:sync{ alter = true }
    local from = #log + 1
    Item2:sync{ alter = true } -- twice: no error, no change
    for _, s in ipairs(MH.statements(log, from)) do
      assert.is_nil(s:find("ALTER", 1, true), s)
      assert.is_nil(s:find("CREATE TABLE", 1, true), s)
    end
    local e = Item2:create{ name = "e", rarity = "epic" }
    assert.are.equal("epic", Item2:find_by_pk(e.id).rarity)
    assert.are.equal("rare", Item2:find_one{ where = { name = "a" } }.rarity)
    -- a value added in front, once more
    local Item3 = define({ "junk", "common", "rare", "epic" })
    Item3:sync{ alter = true }
    Item3:sync{ alter = true }
    Item3:create{ name = "j", rarity = "junk" }
    assert.are.equal(3, Item3:count())
    if d.name == "postgres" then
      local labels = db:query("SELECT e.enumlabel AS l FROM pg_enum e JOIN pg_type t ON t.oid = e.enumtypid " ..
        "WHERE t.typname = ? ORDER BY e.enumsortorder", { "enum_" .. table_name .. "_rarity" })
      local got = {}
      for _, r in ipairs(labels) do got[#got + 1] = r.l end
      assert.are.same({ "junk", "common", "rare", "epic" }, got)
    end
  end)

  it("a dropped and re-created table reuses its type (no 'type already exists')", function()
    Item:drop()
    Item:sync()
    Item:sync{ force = true }
    Item:create{ name = "a", rarity = "rare" }
    assert.are.equal(1, Item:count())
  end)
end)
