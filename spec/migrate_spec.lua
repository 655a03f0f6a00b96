-- The migrator (sqorm.migrator): up / down / status / pending / executed,
-- batches, checksums, out-of-order, a failing migration in the middle,
-- down without down, raw statements, change_column keeping rows and
-- indexes, and generate's round trip; on every dialect.
local H = require "spec.helper"
local sqorm = require "sqorm"
local T = sqorm.types

-- A scratch directory holding migration files; $P in their text becomes
-- the test's table prefix.
local function scratch_dir()
  local d = os.tmpname()
  os.remove(d)
  assert(os.execute("mkdir -p '" .. d .. "'"))
  return d
end

local function write(dir, name, text, P)
  local f = assert(io.open(dir .. "/" .. name .. ".lua", "wb"))
  f:write((text:gsub("%$P", P)))
  f:close()
end

local function rmdir(d) os.execute("rm -rf '" .. d .. "'") end

local CREATE = [[
local T = require("sqorm").types
return {
  up = function(m)
    m:create_table("$P_players", {
      { "id", T.INTEGER, primary_key = true, auto_increment = true },
      { "name", T.STRING(32), allow_null = false, unique = true },
      { "coins", T.INTEGER, allow_null = false, default = 0 },
    })
  end,
  down = function(m) m:drop_table("$P_players") end,
}
]]

local GUILDS = [[
local T = require("sqorm").types
return {
  up = function(m)
    m:create_table("$P_guilds", { { "id", T.INTEGER, primary_key = true, auto_increment = true },
                                  { "name", T.STRING(32), allow_null = false, unique = true } })
    m:add_column("$P_players", "guild_id", { T.INTEGER, references = { "$P_guilds", "id" }, on_delete = "set_null" })
  end,
  down = function(m)
    m:remove_foreign_key("$P_players", { "guild_id" })
    m:remove_column("$P_players", "guild_id")
    m:drop_table("$P_guilds")
  end,
}
]]

local INDEX = [[
return {
  up = function(m) m:add_index("$P_players", { "coins" }) end,
  down = function(m) m:remove_index("$P_players", { "coins" }) end,
}
]]

local function names(list, field)
  local out = {}
  for i, v in ipairs(list) do out[i] = field and v[field] or v end
  return out
end

H.each_dialect(describe, function(d)
  local db, dir, P, tables

  local function drop(t)
    if d.name == "postgres" then db:exec("DROP TABLE IF EXISTS " .. t .. " CASCADE")
    elseif d.name == "mysql" then
      db:exec("SET FOREIGN_KEY_CHECKS = 0")
      db:exec("DROP TABLE IF EXISTS " .. t)
      db:exec("SET FOREIGN_KEY_CHECKS = 1")
    else db:exec("DROP TABLE IF EXISTS " .. t) end
  end

  local function has_table(t)
    local ok = pcall(db.query, db, "SELECT COUNT(*) AS n FROM " .. t)
    return ok
  end

  before_each(function()
    db = sqorm.connect(d.url)
    dir = scratch_dir()
    P = H.tname("mg")
    tables = { P .. "_players", P .. "_guilds", P .. "_extra", P .. "_migs", P .. "_ledger" }
  end)

  after_each(function()
    for i = #tables, 1, -1 do pcall(drop, tables[i]) end
    db:close()
    rmdir(dir)
  end)

  local function migrator(opts)
    opts = opts or {}
    opts.dir, opts.table = dir, P .. "_migs"
    return sqorm.migrator(db, opts)
  end

  it("applies in name order as one batch, reports status, reverts by batch, step and to", function()
    write(dir, "001_create", CREATE, P)
    write(dir, "002_guilds", GUILDS, P)
    local mg = migrator()
    assert.same({ "001_create", "002_guilds" }, mg:pending())
    assert.same({ "001_create", "002_guilds" }, mg:up())
    assert.same({}, mg:pending())
    write(dir, "003_index", INDEX, P)
    assert.same({ "003_index" }, mg:up())
    local ex = mg:executed()
    assert.same({ "001_create", "002_guilds", "003_index" }, names(ex, "name"))
    assert.same({ 1, 1, 2 }, names(ex, "batch"))
    assert.matches("^%d%d%d%d%-%d%d%-%d%d %d%d:%d%d:%d%d$", ex[1].applied_at)
    assert.same({ "applied", "applied", "applied" }, names(mg:status(), "state"))
    -- the schema is there and works
    db:exec("INSERT INTO " .. P .. "_guilds (name) VALUES (?)", { "g" })
    db:exec("INSERT INTO " .. P .. "_players (name, guild_id) VALUES (?, 1)", { "p" })
    assert.equal(0, db:query("SELECT coins FROM " .. P .. "_players")[1].coins)
    assert.same({}, mg:up()) -- nothing left: an empty batch
    -- down(): the last batch
    assert.same({ "003_index" }, mg:down())
    assert.same({ "applied", "applied", "pending" }, names(mg:status(), "state"))
    assert.same({ "003_index" }, mg:up())
    -- down{ step = 2 }: the last two
    assert.same({ "003_index", "002_guilds" }, mg:down { step = 2 })
    assert.is_false(has_table(P .. "_guilds"))
    assert.same({ "002_guilds", "003_index" }, mg:up())
    -- down{ to = NAME }: everything after NAME and NAME itself
    assert.same({ "003_index", "002_guilds" }, mg:down { to = "002_guilds" })
    assert.same({ "001_create" }, names(mg:executed(), "name"))
    -- down{ to = 0 }: everything
    mg:up()
    assert.same({ "003_index", "002_guilds", "001_create" }, mg:down { to = 0 })
    assert.is_false(has_table(P .. "_players"))
    assert.same({}, mg:executed())
  end)

  it("up{ to } stops at NAME; an edited applied file is changed, a vanished one missing", function()
    write(dir, "001_create", CREATE, P)
    write(dir, "002_guilds", GUILDS, P)
    write(dir, "003_index", INDEX, P)
    local mg = migrator()
    assert.same({ "001_create", "002_guilds" }, mg:up { to = "002_guilds" })
    H.raises_kind("usage", "no migration named 009", function() mg:up { to = "009" } end)
    write(dir, "001_create", CREATE .. "-- edited\n", P)
    os.remove(dir .. "/002_guilds.lua")
    local st = mg:status()
    assert.same({ "001_create", "002_guilds", "003_index" }, names(st, "name"))
    assert.same({ "changed", "missing", "pending" }, names(st, "state"))
    -- a missing file can't be reverted: nothing is
    H.raises_kind("usage", "002_guilds is missing", function() mg:down() end)
    assert.equal(2, #mg:executed())
  end)

  it("refuses a pending migration older than the newest applied one unless allowed", function()
    write(dir, "001_create", CREATE, P)
    write(dir, "003_index", [[return { up = function() end, down = function() end }]], P)
    local mg = migrator()
    mg:up()
    write(dir, "002_guilds", GUILDS, P)
    H.raises_kind("usage", "002_guilds is older than the newest applied one (003_index)", function() mg:up() end)
    assert.same({ "002_guilds" }, mg:pending())
    assert.same({ "002_guilds" }, migrator({ allow_out_of_order = true }):up())
    assert.is_true(has_table(P .. "_guilds"))
  end)

  it("a failing migration in the middle names itself; PostgreSQL and SQLite keep nothing of it", function()
    write(dir, "001_create", CREATE, P)
    write(dir, "002_bad", [[
local T = require("sqorm").types
return {
  up = function(m)
    m:create_table("$P_extra", { { "id", T.INTEGER, primary_key = true } })
    m:add_column("$P_nosuch", "x", T.INTEGER)
  end,
  down = function(m) m:drop_table("$P_extra") end,
}
]], P)
    write(dir, "003_index", [[return { up = function() end }]], P)
    local mg = migrator()
    local err = H.raises(function() mg:up() end)
    assert.matches('migration "002_bad" failed', err.message, 1, true)
    assert.same({ "001_create" }, err.applied)
    assert.same({ "applied", "pending", "pending" }, names(mg:status(), "state"))
    assert.is_true(has_table(P .. "_players"))
    if d.name == "mysql" then
      assert.matches("partially applied", err.message, 1, true)
      assert.matches("ALTER TABLE `" .. P .. "_nosuch`", err.message, 1, true)
      assert.is_true(has_table(P .. "_extra")) -- what ran before the failing statement stays
    else
      assert.matches("nothing of it remains", err.message, 1, true)
      assert.is_false(has_table(P .. "_extra"))
    end
  end)

  it("a Lua error in up rolls back the same way", function()
    write(dir, "001_create", CREATE:gsub("  end,\n  down", "    error('boom')\n  end,\n  down", 1), P)
    local err = H.raises(function() migrator():up() end)
    assert.matches('migration "001_create" failed', err.message, 1, true)
    assert.matches("boom", err.message, 1, true)
    if d.name ~= "mysql" then assert.is_false(has_table(P .. "_players")) end
  end)

  it("down without a down function is usage, with nothing reverted", function()
    write(dir, "001_create", CREATE, P)
    write(dir, "002_nodown", [[return { up = function(m) m:exec("UPDATE $P_players SET coins = 1") end }]], P)
    local mg = migrator()
    mg:up()
    H.raises_kind("usage", "002_nodown has no down function", function() mg:down { to = 0 } end)
    assert.same({ "001_create", "002_nodown" }, names(mg:executed(), "name"))
    assert.is_true(has_table(P .. "_players"))
  end)

  it("runs raw exec and query with bound values inside the migration", function()
    write(dir, "001_create", CREATE, P)
    write(dir, "002_seed", [[
return {
  up = function(m)
    assert(m:exec("INSERT INTO $P_players (name, coins) VALUES (?, ?)", { "a'; DROP TABLE x; --", 5 }) == 1)
    m:exec("INSERT INTO $P_players (name, coins) VALUES (?, ?)", { "b", 7 })
    local rows = m:query("SELECT SUM(coins) AS s FROM $P_players WHERE coins > ?", { 1 })
    assert(tonumber(rows[1].s) == 12, "sum")
  end,
  down = function(m) m:exec("DELETE FROM $P_players") end,
}
]], P)
    local mg = migrator()
    mg:up()
    assert.equal(2, #db:query("SELECT * FROM " .. P .. "_players"))
    mg:down { step = 1 }
    assert.equal(0, #db:query("SELECT * FROM " .. P .. "_players"))
  end)

  it("change_column keeps the rows and the indexes (SQLite rebuilds the table)", function()
    write(dir, "001_create", CREATE, P)
    write(dir, "002_change", [[
local T = require("sqorm").types
return {
  up = function(m)
    m:add_index("$P_players", { "coins" })
    m:change_column("$P_players", "name", { T.STRING(64), allow_null = false })
  end,
}
]], P)
    local mg = migrator()
    mg:up { to = "001_create" }
    db:exec("INSERT INTO " .. P .. "_players (name, coins) VALUES (?, ?), (?, ?)", { "a", 1, "b", 2 })
    mg:up()
    assert.equal(2, #db:query("SELECT * FROM " .. P .. "_players"))
    db:exec("INSERT INTO " .. P .. "_players (name) VALUES (?)", { ("x"):rep(60) })
    -- the unique key on name survived
    H.raises_kind("unique_violation", nil, function()
      db:exec("INSERT INTO " .. P .. "_players (name) VALUES (?)", { "a" })
    end)
    if d.name == "sqlite" then
      local ix = db:query("SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = ? AND name = ?",
        { P .. "_players", P .. "_players_coins" })
      assert.equal(1, #ix)
    end
  end)

  it("generate writes the difference between the models and the database; applying it leaves none", function()
    write(dir, "001_create", CREATE, P)
    local mg = migrator()
    mg:up()
    db:define("guild", {
      { "name", T.STRING(32), allow_null = false, unique = true },
    }, { table_name = P .. "_guilds", timestamps = false })
    db:define("player", {
      { "name", T.STRING(32), allow_null = false, unique = true },
      { "coins", T.INTEGER, allow_null = false, default = 0 },
      { "level", T.INTEGER, allow_null = false, default = 1 },
      { "guild_id", T.INTEGER },
    }, { table_name = P .. "_players", timestamps = false, indexes = { { fields = { "level" } } } })
    local path, ops, notes = mg:generate("models", { models = db:models() })
    assert.is_string(path)
    assert.is_true(#ops > 0)
    assert.is_table(notes)
    local f = assert(io.open(path))
    local text = f:read("a")
    f:close()
    assert.matches('m:create_table("' .. P .. '_guilds"', text, 1, true)
    assert.matches('m:add_column("' .. P .. '_players", "level"', text, 1, true)
    assert.matches("m:drop_table", text, 1, true) -- down
    assert.same({ (path:match("([^/]+)%.lua$")) }, mg:up())
    -- applied: the models and the database agree
    local again = mg:generate("again", { models = db:models() })
    assert.is_nil(again)
    db:sync { alter = true } -- a no-op
    assert.same({}, mg:pending())
    -- and its down reverts it
    mg:down()
    assert.is_false(has_table(P .. "_guilds"))
  end)

  it("checks its arguments", function()
    H.raises_kind("usage", "unknown option 'bogus'", function() migrator({ bogus = 1 }) end)
    local mg = migrator()
    H.raises_kind("usage", "step must be a positive integer", function() mg:down { step = 0 } end)
    H.raises_kind("usage", "step and to exclude", function() mg:down { step = 1, to = 0 } end)
    H.raises_kind("usage", "unknown option", function() mg:up { bogus = true } end)
    H.raises_kind("usage", "name must be letters", function() mg:create("../x") end)
    write(dir, "001_bad", [[return { up = function(m) m:add_column("t", "c", { T_missing = 1 }) end }]], P)
    H.raises_kind("usage", "expected a type", function() mg:up() end)
    assert.same({}, mg:executed())
  end)

  it("create writes a timestamped file with up and down", function()
    local path = migrator():create("add_things")
    assert.matches("/%d%d%d%d%d%d%d%d%d%d%d%d%d%d_add_things%.lua$", path)
    local chunk = assert(loadfile(path))
    local mod = chunk()
    assert.is_function(mod.up)
    assert.is_function(mod.down)
    assert.same({ (path:match("([^/]+)%.lua$")) }, migrator():pending())
    -- made in the same second, the next one still sorts after it
    local path2 = migrator():create("more_things")
    assert.is_true(path2:match("([^/]+)$") > path:match("([^/]+)$"))
  end)
end)
