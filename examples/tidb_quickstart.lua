-- examples/tidb_quickstart.lua - the players flow of TiDB's quickstart
-- (the Sequelize sample application) on sqorm's models.
--
-- The connection comes from the environment, as TiDB Cloud hands it out:
-- DATABASE_URL when set, else TIDB_HOST, TIDB_PORT, TIDB_USER,
-- TIDB_PASSWORD, TIDB_DB_NAME, TIDB_ENABLE_SSL, TIDB_CA_PATH:
--
--   TIDB_HOST=gateway01.xxx.prod.aws.tidbcloud.com TIDB_PORT=4000 \
--   TIDB_USER=xxx.root TIDB_PASSWORD=... TIDB_DB_NAME=test \
--   TIDB_ENABLE_SSL=true lua5.4 examples/tidb_quickstart.lua
--
-- It works the same on MySQL, MariaDB and PostgreSQL (DATABASE_URL).
-- Prints, besides the logged statements:
--   Connected to <server version>
--   Created players table.
--   Created 5 players.
--   Selected 2 players with coins > 300.
--   Created player with id 6.
--   Updated player 6: coins = 700, goods = 700.
--   Deleted 1 player(s) with id 6.
--   Player 6 is gone: find_by_pk(6) returned nil.
local sqorm = require "sqorm"
local T, op = sqorm.types, sqorm.op

local verbose = os.getenv("SQORM_EXAMPLE_QUIET") == nil
local db <close> = sqorm.env.connect{ logging = verbose and print or false }
db:authenticate()
print("Connected to " .. db:server_version())

local Player = db:define("player", {
  { "id", T.INTEGER, primary_key = true, auto_increment = true, comment = "The unique ID of the player." },
  { "coins", T.INTEGER, allow_null = false, comment = "The number of coins that the player had." },
  { "goods", T.INTEGER, allow_null = false, comment = "The number of goods that the player had." },
}, { table_name = "players", timestamps = false })

Player:sync{ force = true }
print("Created players table.")

local created = Player:bulk_create{
  { coins = 100, goods = 100 }, { coins = 200, goods = 200 }, { coins = 300, goods = 300 },
  { coins = 400, goods = 400 }, { coins = 500, goods = 500 },
}
print(("Created %d players."):format(#created))

local rich = Player:find_all{ where = { coins = op.gt(300) } }
print(("Selected %d players with coins > 300."):format(#rich))

local p6 = Player:create{ id = 6, coins = 600, goods = 600 }
print(("Created player with id %d."):format(p6.id))

Player:update({ coins = 700, goods = 700 }, { where = { id = 6 } })
p6:reload()
print(("Updated player 6: coins = %d, goods = %d."):format(p6.coins, p6.goods))

local n = Player:destroy{ where = { id = 6 } }
print(("Deleted %d player(s) with id 6."):format(n))

if Player:find_by_pk(6) == nil then print("Player 6 is gone: find_by_pk(6) returned nil.") end

Player:drop()
