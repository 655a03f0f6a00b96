-- examples/inventory.lua - hooks, scopes, optimistic locking, JSON and
-- ENUM: items with a rarity enum and JSON stats, an audit hook that
-- writes through the caller's transaction, soft-banned players hidden by
-- a default scope, and a trade that loses an optimistic race and retries.
--
--   lua5.4 examples/inventory.lua [url]     (default: embedded SQLite)
--
-- Prints:
--   players: Ada, Bo
--   unscoped: Ada, Bo, Mal
--   rare or epic: bow (rare), sword (epic)
--   dmg > 5: bow 8, sword 12
--   sharp: dagger, sword
--   refused: validation: rarity: expects one of 'common', 'rare', 'epic'; got string 'legendary'
--   inside the gift: 1 audit row
--   gift rolled back: sword still Ada's, 0 audit rows
--   notify: bow v1, owned by Ada (after COMMIT)
--   trade attempt 1: stale
--   notify: bow v2, owned by Bo (after COMMIT)
--   Bo bought the bow (dmg 9) on attempt 2; coins: Ada 130, Bo 20
--   audit: bow v1, owned by Ada | bow v2, owned by Bo
local sqorm = require "sqorm"
local T, op = sqorm.types, sqorm.op

local last_sql -- the last statement sent, to show when a notification runs
local db <close> = sqorm.connect(arg[1] or "sqlite::memory:", {
  logging = function(line) last_sql = line:match("^Executing %(default%): (.*)") or last_sql end,
})

local Player = db:define("player", {
  { "id", T.INTEGER, primary_key = true, auto_increment = true },
  { "name", T.STRING(40), allow_null = false },
  { "coins", T.INTEGER, allow_null = false, default = 0 },
  { "banned", T.BOOLEAN, allow_null = false, default = false },
}, {
  table_name = "inv_players", timestamps = false,
  default_scope = { where = { banned = false } }, -- every read and class write skips banned players
})
local Audit = db:define("audit", {
  { "id", T.INTEGER, primary_key = true, auto_increment = true },
  { "what", T.STRING(80), allow_null = false },
}, { table_name = "inv_audit", timestamps = false })
local Item = db:define("item", {
  { "id", T.INTEGER, primary_key = true, auto_increment = true },
  { "name", T.STRING(40), allow_null = false },
  { "rarity", T.ENUM { "common", "rare", "epic" }, allow_null = false, default = "common" },
  { "stats", T.JSON },
  { "owner_id", T.INTEGER, allow_null = false },
}, {
  table_name = "inv_items", timestamps = false,
  version = true, -- a "version" column: a save of an outdated copy raises kind "stale"
  hooks = {
    -- Runs in the caller's transaction: its audit row is committed or
    -- rolled back with the update; the notification waits for the COMMIT.
    after_update = function(item, ctx)
      local what = ("%s v%d, owned by %s"):format(item.name, item.version, Player:find_by_pk(item.owner_id).name)
      Audit:create { what = what }
      ctx:after_commit(function() print(("notify: %s (after %s)"):format(what, last_sql)) end)
    end,
  },
})

db:sync { force = true }

local ada = Player:create { name = "Ada", coins = 100 }
local bo = Player:create { name = "Bo", coins = 50 }
Player:create { name = "Mal", banned = true }
local sword = Item:create { name = "sword", rarity = "epic", owner_id = ada.id,
                            stats = { dmg = 12, tags = { "sharp" } } }
local bow = Item:create { name = "bow", rarity = "rare", owner_id = ada.id,
                          stats = { dmg = 8, tags = { "ranged" } } }
Item:create { name = "dagger", owner_id = bo.id, -- rarity: the default, "common"
              stats = { dmg = 3, tags = { "sharp", "light" } } }

-- The default scope hides Mal; unscoped() sees every row.
local function names(list)
  local out = {}
  for i, r in ipairs(list) do out[i] = r.name end
  return table.concat(out, ", ")
end
print("players: " .. names(Player:find_all { order = { "name" } }))
print("unscoped: " .. names(Player:unscoped():find_all { order = { "name" } }))

-- ENUM values filter like any value; JSON paths are bound values.
local good = Item:find_all { where = { rarity = { "rare", "epic" } }, order = { "name" } }
print(("rare or epic: %s (%s), %s (%s)"):format(good[1].name, good[1].rarity, good[2].name, good[2].rarity))
local strong = Item:find_all { where = { stats = op.json("dmg", op.gt(5)) }, order = { "name" } }
print(("dmg > 5: %s %d, %s %d"):format(strong[1].name, strong[1].stats.dmg, strong[2].name, strong[2].stats.dmg))
print("sharp: " .. names(Item:find_all { where = { stats = op.json({ "tags", 1 }, "sharp") }, order = { "name" } }))
local ok, err = pcall(Item.create, Item, { name = "crown", rarity = "legendary", owner_id = ada.id })
assert(not ok)
print(("refused: %s: rarity: %s"):format(err.kind, err.fields.rarity))

-- A gift that is called off: the hook's audit row goes with the rollback,
-- and its notification never runs.
local gave, why = pcall(db.transaction, db, function()
  sword.owner_id = bo.id
  sword:save()
  print(("inside the gift: %d audit row"):format(Audit:count()))
  error("called off", 0)
end)
assert(not gave and why == "called off", why)
sword:reload()
print(("gift rolled back: sword still %s's, %d audit rows"):format(Player:find_by_pk(sword.owner_id).name,
  Audit:count()))

-- Bo looks at the bow (his copy); meanwhile Ada enchants it (her copy).
local bos_copy = Item:find_by_pk(bow.id)
db:transaction(function()
  local adas_copy = Item:find_by_pk(bow.id)
  adas_copy.stats = { dmg = 9, tags = { "ranged" } }
  adas_copy:save() -- version 0 -> 1
end)

-- A trade: coins and item move in one transaction. The save of an outdated
-- copy raises kind "stale" and the transaction rolls back as a whole; the
-- buyer reloads (and sees the enchanted bow) and tries again.
local function buy(buyer, item, price)
  for attempt = 1, 3 do
    local done, e = pcall(db.transaction, db, function()
      Player:decrement({ coins = price }, { where = { id = buyer.id } })
      Player:increment({ coins = price }, { where = { id = item.owner_id } })
      item.owner_id = buyer.id
      item:save() -- UPDATE ... WHERE id = ? AND version = <the copy's>
    end)
    if done then return attempt end
    if not (sqorm.is_error(e) and e.kind == "stale") then error(e, 0) end
    print(("trade attempt %d: %s"):format(attempt, e.kind))
    item:reload()
  end
  error("the trade kept losing")
end
local attempts = buy(bo, bos_copy, 30)
ada:reload()
bo:reload()
print(("Bo bought the bow (dmg %d) on attempt %d; coins: Ada %d, Bo %d"):format(bos_copy.stats.dmg, attempts,
  ada.coins, bo.coins))

local audit = {}
for i, a in ipairs(Audit:find_all { order = { "id" } }) do audit[i] = a.what end
print("audit: " .. table.concat(audit, " | "))

db:drop_all()
