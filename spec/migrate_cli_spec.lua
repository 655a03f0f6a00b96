-- The `sqorm` command end to end (bin/sqorm as a process): migrate up /
-- down / status / create / generate, --url and DATABASE_URL, progress
-- lines, exit codes 0 / 1 / 2 and the usage message; on every dialect.
local H = require "spec.helper"
local sqorm = require "sqorm"

local function q(s) return "'" .. tostring(s):gsub("'", "'\\''") .. "'" end

-- Runs the command; returns its exit code, stdout and stderr.
local function run(args, env)
  local out, err = os.tmpname(), os.tmpname()
  local prefix = ""
  for k, v in pairs(env or {}) do prefix = prefix .. k .. "=" .. q(v) .. " " end
  local ok, how, code = os.execute(("env -u DATABASE_URL -u TIDB_HOST %sbin/sqorm %s >%s 2>%s"):format(prefix, args,
    out, err))
  local function slurp(p)
    local f = io.open(p)
    local s = f:read("a")
    f:close()
    os.remove(p)
    return s
  end
  assert(how == "exit", "the command did not exit normally")
  return ok and 0 or code, slurp(out), slurp(err)
end

describe("sqorm command arguments", function()
  it("--help prints the usage and exits 0", function()
    local rc, out = run("--help")
    assert.equal(0, rc)
    assert.matches("usage: sqorm migrate up", out, 1, true)
  end)

  it("bad arguments exit 2 with a usage message, touching nothing", function()
    for _, args in ipairs { "", "frobnicate", "migrate", "migrate sideways", "migrate up --bogus",
      "migrate down --step zero", "migrate down --step 1 --to 0", "migrate create", "migrate create a/b",
      "migrate generate x", "migrate up --to", "migrate status extra", "migrate up --step 1" } do
      local rc, out, err = run(args)
      assert.equal(2, rc, args)
      assert.equal("", out, args)
      assert.matches("^sqorm: .-\nusage: sqorm migrate", err, nil, false)
    end
  end)

  it("without --url, DATABASE_URL or TIDB_HOST says so and exits 2", function()
    local rc, _, err = run("migrate status")
    assert.equal(2, rc)
    assert.matches("no database", err, 1, true)
  end)

  it("create writes the file without a database", function()
    local dir = os.tmpname()
    os.remove(dir)
    local rc, out = run("migrate create add_guilds --dir " .. q(dir))
    assert.equal(0, rc)
    local path = out:match("^created (%S+)")
    assert.truthy(path)
    assert.matches("_add_guilds%.lua$", path)
    assert.is_function(assert(loadfile(path))().up)
    os.execute("rm -rf " .. q(dir))
  end)
end)

H.each_dialect(describe, function(d)
  local url, dbfile, db, dir, P

  before_each(function()
    if d.name == "sqlite" then
      dbfile = os.tmpname()
      url = "sqlite://" .. dbfile
    else
      url = d.url
    end
    db = sqorm.connect(url)
    dir = os.tmpname()
    os.remove(dir)
    P = H.tname("cli")
  end)

  after_each(function()
    for _, t in ipairs { P .. "_players", P .. "_migs", "players", "guilds" } do
      if d.name == "postgres" then pcall(db.exec, db, "DROP TABLE IF EXISTS " .. t .. " CASCADE")
      else pcall(db.exec, db, "DROP TABLE IF EXISTS " .. t) end
    end
    db:close()
    os.execute("rm -rf " .. q(dir))
    if dbfile then os.remove(dbfile) end
  end)

  it("applies, reports and reverts the example migrations (--url and DATABASE_URL)", function()
    local common = " --dir examples/migrations --table " .. P .. "_migs"
    local rc, out, err = run("migrate status" .. common .. " --url " .. q(url))
    assert.equal(0, rc, err)
    assert.matches("pending  20261201120000_create_players", out, 1, true)
    rc, out, err = run("migrate up --to 20261201120100_create_guilds" .. common, { DATABASE_URL = url })
    assert.equal(0, rc, err)
    assert.matches("migrating 20261201120000_create_players\nmigrated  20261201120000_create_players", out, 1, true)
    assert.matches("applied 2 migrations", out, 1, true)
    rc, out = run("migrate up" .. common .. " --quiet", { DATABASE_URL = url })
    assert.equal(0, rc)
    assert.equal("applied 1 migration\n", out)
    rc, out = run("migrate status" .. common, { DATABASE_URL = url })
    assert.equal(0, rc)
    assert.matches("applied  20261201120200_index_players_coins  (batch 2, ", out, 1, true)
    db:exec("INSERT INTO guilds (name) VALUES (?)", { "g" })
    db:exec("INSERT INTO players (name, guild_id) VALUES (?, 1)", { "p" })
    rc, out = run("migrate down --step 2" .. common, { DATABASE_URL = url })
    assert.equal(0, rc)
    assert.matches("reverted 2 migrations", out, 1, true)
    rc, out = run("migrate down --to 0" .. common, { DATABASE_URL = url })
    assert.equal(0, rc)
    assert.matches("reverted 1 migration", out, 1, true)
    rc, out = run("migrate down" .. common, { DATABASE_URL = url })
    assert.equal(0, rc)
    assert.matches("nothing to revert", out, 1, true)
  end)

  if d.name == "mysql" then
    it("reads the TIDB_* variables when there is no --url or DATABASE_URL", function()
      local m = H.mysql_url()
      local user, pw, host, port, name = m:match("^mysql://([^:]+):([^@]+)@([^:/]+):(%d+)/(.+)$")
      assert.truthy(user, m)
      local rc, out, err = run("migrate status --dir examples/migrations --table " .. P .. "_migs",
        { TIDB_HOST = host, TIDB_PORT = port, TIDB_USER = user, TIDB_PASSWORD = pw, TIDB_DB_NAME = name })
      assert.equal(0, rc, err)
      assert.matches("pending  20261201120000_create_players", out, 1, true)
    end)
  end

  it("a failing migration exits 1 naming it", function()
    os.execute("mkdir -p " .. q(dir))
    local f = assert(io.open(dir .. "/001_bad.lua", "w"))
    f:write('return { up = function(m) m:add_column("' .. P .. '_nosuch", "x", require("sqorm").types.INTEGER) end }\n')
    f:close()
    local rc, out, err = run("migrate up --dir " .. q(dir) .. " --table " .. P .. "_migs --url " .. q(url))
    assert.equal(1, rc)
    assert.matches("failed    001_bad", out, 1, true)
    assert.matches('migration "001_bad" failed', err, 1, true)
    assert.matches(d.name == "mysql" and "partially applied" or "nothing of it remains", err, 1, true)
  end)

  it("generate --models MODULE writes the difference; up applies it; a second generate finds none", function()
    os.execute("mkdir -p " .. q(dir))
    local f = assert(io.open(dir .. "/cli_models.lua", "w"))
    f:write(([[
local T = require("sqorm").types
return function(db)
  db:define("player", {
    { "name", T.STRING(32), allow_null = false, unique = true },
    { "coins", T.INTEGER, allow_null = false, default = 0 },
  }, { table_name = "%s_players", timestamps = false, indexes = { { fields = { "coins" } } } })
end
]]):format(P))
    f:close()
    local env = { DATABASE_URL = url, LUA_PATH = dir .. "/?.lua;" .. (os.getenv("LUA_PATH") or ";") }
    local common = " --dir " .. q(dir .. "/m") .. " --table " .. P .. "_migs"
    local rc, out, err = run("migrate generate players --models cli_models" .. common, env)
    assert.equal(0, rc, err)
    local path = out:match("generated (%S+)")
    assert.truthy(path, out)
    rc, out, err = run("migrate up" .. common, env)
    assert.equal(0, rc, err)
    assert.matches("applied 1 migration", out, 1, true)
    db:exec("INSERT INTO " .. P .. "_players (name) VALUES (?)", { "ann" })
    assert.equal(0, db:query("SELECT coins FROM " .. P .. "_players")[1].coins)
    rc, out = run("migrate generate again --models cli_models" .. common, env)
    assert.equal(0, rc)
    assert.matches("nothing generated", out, 1, true)
    local rc2, _, err2 = run("migrate generate x --models no_such_module" .. common, env)
    assert.equal(1, rc2)
    assert.matches("cannot load the models module no_such_module", err2, 1, true)
  end)
end)
