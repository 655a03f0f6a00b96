-- examples/guilds.lua - associations and eager loading: guilds, players
-- and items (a many-to-many through "guild_inventories"), a page of
-- guilds with their top 3 players each (and the players' items), and a
-- leaderboard by guild, with the statements each read took.
--
--   lua5.4 examples/guilds.lua [url]     (default: embedded SQLite)
--
-- Prints:
--   guilds: 3, on this page: 2
--   Crows: Ada (90, 2 items), Bo (60, 1 items), Cy (30, 0 items)
--   Owls: Eve (80, 1 items), Fay (20, 0 items)
--   page: 3 statements
--   Owls' richest owns: bow
--   leaderboard: 1. Crows 185 (4 members)
--   leaderboard: 2. Wolves 110 (2 members)
--   leaderboard: 3. Owls 100 (2 members)
--   players with a sword: Ada, Dan
local sqorm = require "sqorm"
local T, op, fn = sqorm.types, sqorm.op, sqorm.fn

local statements = 0
local db <close> = sqorm.connect(arg[1] or "sqlite::memory:", {
  logging = function() statements = statements + 1 end,
})

local Guild = db:define("guild", {
  { "id", T.INTEGER, primary_key = true, auto_increment = true },
  { "name", T.STRING(40), allow_null = false },
}, { table_name = "guild_guilds", timestamps = false })
local Player = db:define("player", {
  { "id", T.INTEGER, primary_key = true, auto_increment = true },
  { "name", T.STRING(40), allow_null = false },
  { "coins", T.INTEGER, default = 0 },
}, { table_name = "guild_players", timestamps = false })
local Item = db:define("item", {
  { "id", T.INTEGER, primary_key = true, auto_increment = true },
  { "name", T.STRING(40), allow_null = false },
}, { table_name = "guild_items", timestamps = false })

-- players.guild_id is added to Player, referencing guilds.id
Guild:has_many(Player, { as = "players", foreign_key = "guild_id" })
Player:belongs_to(Guild, { as = "guild", foreign_key = "guild_id" })
-- the join table guild_inventories(player_id, item_id) is built by sqorm
Player:belongs_to_many(Item, { as = "items", through = "guild_inventories",
                               foreign_key = "player_id", other_key = "item_id" })
Item:belongs_to_many(Player, { as = "owners", through = "guild_inventories",
                               foreign_key = "item_id", other_key = "player_id" })

db:sync { force = true } -- tables in dependency order, with their foreign keys

local crows, owls, wolves = Guild:create { name = "Crows" }, Guild:create { name = "Owls" },
  Guild:create { name = "Wolves" }
local sword, shield, bow = Item:create { name = "sword" }, Item:create { name = "shield" }, Item:create { name = "bow" }
local function player(g, name, coins) return g:create_player { name = name, coins = coins } end
player(crows, "Ada", 90):add_items { sword, shield }
player(crows, "Bo", 60):add_items(shield)
player(crows, "Cy", 30)
player(crows, "Di", 5)
player(owls, "Eve", 80):add_items(bow)
player(owls, "Fay", 20)
player(wolves, "Dan", 100):add_items(sword)
player(wolves, "Gus", 10)

-- A page of guilds, each with its 3 richest players and their items:
-- the guilds (1 statement), the players of the page's guilds (1, a window
-- function keeps 3 per guild), their items (1). The limit counts guilds.
statements = 0
local page = Guild:find_and_count_all {
  include = { { "players", order = { { "coins", "desc" } }, limit = 3, include = { "items" } } },
  order = { "name" }, limit = 2,
}
local page_statements = statements - 1 -- minus the count
print(("guilds: %d, on this page: %d"):format(page.count, #page.rows))
for _, g in ipairs(page.rows) do
  local parts = {}
  for _, p in ipairs(g.players) do
    parts[#parts + 1] = ("%s (%d, %d items)"):format(p.name, p.coins, #p.items)
  end
  print(("%s: %s"):format(g.name, table.concat(parts, ", ")))
end
print(("page: %d statements"):format(page_statements))
print(("Owls' richest owns: %s"):format(page.rows[2].players[1].items[1].name))

-- A leaderboard by guild: coins summed and members counted per guild.
local board = Player:find_all {
  attributes = { "guild_id", { fn.sum("coins"), "total" }, { fn.count("id"), "members" } },
  group = { "guild_id" }, order = { { "total", "desc" } }, raw = true,
}
local names = {}
for _, g in ipairs(Guild:find_all()) do names[g.id] = g.name end
for i, r in ipairs(board) do
  print(("leaderboard: %d. %s %d (%d members)"):format(i, names[r.guild_id], tonumber(r.total), tonumber(r.members)))
end

-- Who holds a sword: EXISTS over the many-to-many, nothing loaded.
local armed = Player:find_all { where = { op.has("items", { name = "sword" }) }, order = { "name" } }
local who = {}
for i, p in ipairs(armed) do who[i] = p.name end
print("players with a sword: " .. table.concat(who, ", "))

db:drop_all()
