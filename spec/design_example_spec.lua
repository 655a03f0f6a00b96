-- DESIGN.md's Lua example, as written, on every dialect. Adapted only
-- where a spec must: the connection comes from the test configuration
-- (d.url), the raw SQL runs after the table exists, and each step checks
-- what it did.
local sqorm = require "sqorm"
local H = require "spec.helper"

H.each_dialect(describe, function(d)
  it("runs the example of DESIGN.md", function()
    local T, op = sqorm.types, sqorm.op

    local db = sqorm.connect(d.url, { pool = { max = 10 }, logging = false })  -- URL + options
    db:authenticate()            -- raises if the server can't be reached

    -- Models. Columns as an ordered list (or a map: primary key first, then by name).
    local Player = db:define("player", {
      { "id",    T.INTEGER, primary_key = true, auto_increment = true,
                 comment = "The unique ID of the player." },
      { "name",  T.STRING(32), unique = true },
      { "coins", T.INTEGER, allow_null = false, default = 0, validate = { min = 0 } },
      { "goods", T.INTEGER, allow_null = false },
    }, { table_name = "players", timestamps = true })  -- default table name: plural of the model name
    db:sync{ force = true }      -- or Player:sync{ alter = true }, Player:drop()

    local p = Player:create{ id = 6, coins = 600, goods = 600 }
    assert.are.equal(6, p.id)
    local two = Player:bulk_create{ {coins = 1, goods = 1}, {coins = 2, goods = 2} }
    assert.are.equal(2, #two)
    local rich = Player:find_all{ where = { coins = op.gt(300) }, order = { {"coins", "desc"} }, limit = 10 }
    assert.are.equal(1, #rich)
    assert.are.equal(6, rich[1].id)
    local one  = Player:find_by_pk(6)          -- nil when absent
    assert.are.equal(600, one.coins)
    assert.is_nil(Player:find_by_pk(12345))
    local top  = Player:find_one{ order = { {"coins", "desc"} }, offset = 1 }
    assert.are.equal(2, top.coins)
    local n    = Player:count{ where = { goods = op.between(1, 5) } }
    assert.are.equal(2, n)
    p.coins = 700; p:save()                    -- UPDATE of changed columns only
    assert.are.equal(700, Player:find_by_pk(6).coins)
    p:update{ coins = 800, goods = 800 }
    p:reload(); p:destroy()
    assert.are.equal(800, p.coins)
    assert.is_nil(Player:find_by_pk(6))
    local affected = Player:update({ goods = 0 }, { where = { name = sqorm.null } })   -- returns affected rows
    assert.are.equal(2, affected)

    -- Raw SQL, always with binds: ? positional or :name named.
    local rows = db:query("SELECT id, coins FROM players WHERE coins > ?", {300})
    assert.are.same({}, rows)
    local res  = db:exec("UPDATE players SET coins = coins + 1 WHERE id = :id", {id = two[1].id})
    assert.are.equal(1, res.affected_rows)

    local streamed = 0
    for row in Player:each{ where = { coins = op.gte(0) } } do streamed = streamed + 1 end     -- streams, bounded memory
    assert.are.equal(2, streamed)
    local ids = {}
    for _, q in ipairs(two) do ids[#ids + 1] = q.id end

    Player:create{ id = 100, coins = 50, goods = 1 }
    local id1 = two[1].id
    db:transaction(function(tx)               -- commits on return, rolls back and re-raises on error
      local a = Player:find_by_pk(id1, { lock = "update" })   -- runs inside tx: same coroutine
      a:update{ coins = a.coins - 1 }
    end)
    assert.are.equal(1, Player:find_by_pk(id1).coins)

    ids[#ids + 1] = 100
    assert.are.equal(3, Player:destroy{ where = { id = ids } })                       -- a list means IN

    Player:drop()
    db:close()                   -- also on __gc and as a to-be-closed variable
    assert.is_true(db:is_closed())
  end)
end)

describe("DESIGN.md connect forms", function()
  it("connects to embedded SQLite by URL and by table", function()
    local db = sqorm.connect("sqlite::memory:")                  -- embedded default
    db:authenticate()
    db:close()
    local db2 = sqorm.connect{ dialect = "sqlite", storage = ":memory:", logging = false }
    local Thing = db2:define("thing", { { "label", sqorm.types.STRING } })
    Thing:sync()
    assert.are.equal("x", Thing:create{ label = "x" }.label)
    db2:close()
  end)
end)
