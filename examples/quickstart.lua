-- examples/quickstart.lua - sqorm on embedded SQLite, raw SQL with binds.
-- Every statement is printed as it runs (logging = print), then its rows.
local sqorm = require "sqorm"

local db <close> = sqorm.connect("sqlite::memory:", { logging = print })

db:exec([[CREATE TABLE players (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  name VARCHAR(32) UNIQUE,
  coins INTEGER NOT NULL DEFAULT 0,
  goods INTEGER NOT NULL)]])

for i, name in ipairs { "ann", "bob", "cy", "dee", "eve" } do
  local res = db:exec("INSERT INTO players (name, coins, goods) VALUES (?, ?, ?)", { name, i * 100, i })
  print(("  inserted %s as id %d"):format(name, res.last_insert_id))
end

local rich = db:query("SELECT id, name, coins FROM players WHERE coins > :min ORDER BY coins DESC", { min = 300 })
for _, p in ipairs(rich) do print(("  id=%d name=%s coins=%d"):format(p.id, p.name, p.coins)) end

local res = db:exec("UPDATE players SET coins = coins + ? WHERE name = ?", { 50, "ann" })
print(("  updated %d row(s)"):format(res.affected_rows))

local ok, err = pcall(db.exec, db, "INSERT INTO players (name, goods) VALUES (?, ?)", { "ann", 1 })
print(("  duplicate name -> %s error: %s"):format(err.kind, err.message))
