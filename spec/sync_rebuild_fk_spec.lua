-- sync{ alter = true } on SQLite rebuilds a table when its ALTER TABLE
-- can't make the change (here: a column's type, nullability and default).
-- A rebuild drops the old table; with foreign keys on, that DROP TABLE
-- fires the ON DELETE actions of the tables referencing it, so the
-- rebuild must run with foreign keys off (outside the transaction) and
-- check them after (PRAGMA foreign_key_check). Before the SYNC operation
-- did that, the rows of the referencing table were cascade-deleted.
local sqorm = require "sqorm"
local T = sqorm.types

describe("sync alter on SQLite with a referencing table", function()
  local path, db

  before_each(function()
    path = os.tmpname()
    db = sqorm.connect("sqlite:" .. path, { logging = false })
  end)

  after_each(function()
    if db then db:close() end
    os.remove(path)
    os.remove(path .. "-wal")
    os.remove(path .. "-shm")
  end)

  local function define(v2)
    local cols = {
      { "id", T.INTEGER, primary_key = true, auto_increment = true },
      { "name", T.STRING(20) },
    }
    if v2 then cols[2] = { "name", T.STRING(40), allow_null = false, default = "x" } end
    return db:define("guild", cols, { table_name = "guilds", timestamps = false })
  end

  it("keeps the rows of a table whose foreign key cascades", function()
    local G = define(false)
    G:sync()
    local g = G:create{ name = "knights" }
    db:exec([[CREATE TABLE members (id INTEGER PRIMARY KEY,
              guild_id INTEGER NOT NULL REFERENCES guilds(id) ON DELETE CASCADE)]])
    db:exec("INSERT INTO members (id, guild_id) VALUES (1, ?), (2, ?)", { g.id, g.id })
    assert.are.equal(1, db:query("PRAGMA foreign_keys")[1].foreign_keys)
    local G2 = define(true)
    G2:sync{ alter = true }
    -- the rebuild happened (the new default is there) ...
    local ddl = db:query("SELECT sql FROM sqlite_master WHERE name = 'guilds'")[1].sql
    assert.truthy(ddl:find("'x'", 1, true), ddl)
    -- ... and the referencing rows are still there, foreign keys back on
    assert.are.equal(2, db:query("SELECT COUNT(*) AS n FROM members")[1].n)
    assert.are.equal("knights", G2:find_by_pk(g.id).name)
    assert.are.equal(1, db:query("PRAGMA foreign_keys")[1].foreign_keys)
    assert.are.same({}, db:query("PRAGMA foreign_key_check"))
  end)

  it("runs inside a transaction as a savepoint (foreign keys can't go off there)", function()
    local G = define(false)
    G:sync()
    G:create{ name = "a" }
    local G2 = define(true)
    db:transaction(function() G2:sync{ alter = true } end)
    assert.are.equal("a", G2:find_one().name)
  end)
end)
