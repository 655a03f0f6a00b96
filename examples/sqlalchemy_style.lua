-- examples/sqlalchemy_style.lua - the SQLAlchemy ORM tutorial's habits in
-- sqorm: a declared model with a unique name, create_all, a unit of work
-- in a transaction, select ... where, and an IntegrityError-style failure:
-- a duplicate name raises an error of kind unique_violation (and its
-- transaction rolls back).
--
--   DATABASE_URL=postgres://u:p@host/db lua5.4 examples/sqlalchemy_style.lua
--   lua5.4 examples/sqlalchemy_style.lua            # embedded SQLite
--
-- Prints:
--   added 3 players in one transaction
--   players with more than 150 coins: bob (200), cy (300)
--   duplicate name 'ann' -> unique_violation (the transaction rolled back: 3 players)
local sqorm = require "sqorm"
local T, op = sqorm.types, sqorm.op

local url = os.getenv("DATABASE_URL")
if not url or url == "" then url = arg[1] or "sqlite::memory:" end
local db <close> = sqorm.connect(url)

-- class Player(Base): __tablename__ = "sa_players"
local Player = db:define("player", {
  { "id", T.INTEGER, primary_key = true, auto_increment = true },
  { "name", T.STRING(32), unique = true, allow_null = false },
  { "coins", T.INTEGER, allow_null = false, default = 0 },
}, { table_name = "sa_players", timestamps = false })

-- Base.metadata.drop_all(); Base.metadata.create_all(engine)
db:sync{ force = true }

-- with Session(engine) as session, session.begin(): session.add_all([...])
db:transaction(function()
  for i, name in ipairs{ "ann", "bob", "cy" } do
    Player:build{ name = name, coins = i * 100 }:save()
  end
end)
print(("added %d players in one transaction"):format(Player:count()))

-- session.scalars(select(Player).where(Player.coins > 150).order_by(Player.name))
local out = {}
for _, p in ipairs(Player:find_all{ where = { coins = op.gt(150) }, order = { "name" } }) do
  out[#out + 1] = ("%s (%d)"):format(p.name, p.coins)
end
print("players with more than 150 coins: " .. table.concat(out, ", "))

-- session.add(Player(name="ann")); session.commit() -> IntegrityError
local ok, err = pcall(db.transaction, db, function()
  Player:create{ name = "dan", coins = 1 }
  Player:create{ name = "ann", coins = 1 }
end)
assert(not ok)
print(("duplicate name 'ann' -> %s (the transaction rolled back: %d players)"):format(err.kind, Player:count()))

Player:drop()
