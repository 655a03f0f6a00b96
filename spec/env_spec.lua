-- sqorm.env: settings from TIDB_* and DATABASE_URL. Lua cannot set
-- environment variables, so each case runs in a child lua5.4.
local H = require "spec.helper"

local function run(env, code)
  local parts = {}
  for k, v in pairs(env) do parts[#parts + 1] = ("%s='%s'"):format(k, v:gsub("'", "'\\''")) end
  local cmd = ("env -u DATABASE_URL -u TIDB_HOST %s lua5.4 -e '%s' 2>&1"):format(table.concat(parts, " "),
    code:gsub("'", "'\\''"))
  local p = io.popen(cmd)
  local out = p:read("a")
  local ok = p:close()
  return ok, out
end

describe("sqorm.env", function()
  it("builds a TiDB connect table from TIDB_* (port 4000 by default)", function()
    local ok, out = run({ TIDB_HOST = "db.example", TIDB_USER = "u", TIDB_PASSWORD = "p", TIDB_DB_NAME = "game",
      TIDB_ENABLE_SSL = "true", TIDB_CA_PATH = "/ca.pem" },
      [[local t = require("sqorm").env.tidb()
        print(t.dialect, t.host, t.port, t.user, t.password, t.database, t.ssl.mode, t.ssl.ca)]])
    assert.is_true(ok, out)
    assert.are.equal("tidb\tdb.example\t4000\tu\tp\tgame\tverify_identity\t/ca.pem\n", out)
  end)

  it("verifies a TiDB server against the system CA store when no CA path is set", function()
    local ok, out = run({ TIDB_HOST = "db.example", TIDB_ENABLE_SSL = "true" },
      [[local env = require("sqorm").env local t = env.tidb()
        print(t.ssl.mode, t.ssl.ca, env.system_ca())]])
    assert.is_true(ok, out)
    local f = io.open("/etc/ssl/certs/ca-certificates.crt", "r")
    if f then
      f:close()
      assert.are.equal("verify_identity\t/etc/ssl/certs/ca-certificates.crt\t/etc/ssl/certs/ca-certificates.crt\n", out)
    else
      assert.is_truthy(out:match("^verify_identity\t"), out)
    end
    -- TLS off stays off
    ok, out = run({ TIDB_HOST = "db.example" }, [[print(require("sqorm").env.tidb().ssl)]])
    assert.is_true(ok, out)
    assert.are.equal("nil\n", out)
  end)

  if os.getenv("SQORM_TEST_MYSQL_PORT") then
    it("refuses a TiDB-style server whose certificate the system store does not trust", function()
      -- the test server's certificate comes from a throwaway CA
      local g = os.getenv
      local ok, out = run({ TIDB_HOST = "127.0.0.1", TIDB_PORT = g("SQORM_TEST_MYSQL_PORT"),
        TIDB_USER = g("SQORM_TEST_MYSQL_USER"), TIDB_PASSWORD = g("SQORM_TEST_MYSQL_PASSWORD"),
        TIDB_DB_NAME = g("SQORM_TEST_MYSQL_DB"), TIDB_ENABLE_SSL = "true" },
        [[local ok, e = pcall(function() require("sqorm").env.connect():authenticate() end)
          print(ok, e.kind)]])
      assert.is_true(ok, out)
      assert.are.equal("false\tconnection\n", out)
    end)
  end

  it("raises kind usage naming a missing variable", function()
    local ok, out = run({}, [[local ok, e = pcall(require("sqorm").env.tidb) print(e.kind, e.message)
      local ok2, e2 = pcall(require("sqorm").env.database_url) print(e2.kind, e2.message)]])
    assert.is_true(ok, out)
    assert.are.equal("usage\tTIDB_HOST is not set\nusage\tDATABASE_URL is not set\n", out)
  end)

  it("connect() with nothing set names DATABASE_URL and the TIDB_* variables", function()
    local ok, out = run({}, [[local ok, e = pcall(require("sqorm").env.connect) print(e.kind, e.message)]])
    assert.is_true(ok, out)
    assert.matches("^usage\t", out)
    assert.matches("DATABASE_URL", out, 1, true)
    assert.matches("TIDB_HOST", out, 1, true)
    assert.matches("TIDB_PASSWORD", out, 1, true)
  end)

  it("scripts/env.sh gives absolute paths: require works after cd, from a relative build dir", function()
    -- the repository root (this file is <root>/spec/env_spec.lua) and the
    -- build tree this run loads sqorm.core from
    local src = debug.getinfo(1, "S").source:gsub("^@", "")
    local p = io.popen(("cd %q/.. && pwd"):format(src:match("^(.*)/[^/]*$") or "."))
    local root = p:read("l")
    p:close()
    local so = package.searchpath("sqorm.core", package.cpath)
    assert.is_truthy(so)
    local build = so:match("^(.*)/lib/sqorm/core%.so$")
    assert.is_truthy(build, so)
    if build:sub(1, 1) ~= "/" then build = root .. "/" .. build end
    -- the build dir relative to the root when it lies inside it, else ".." steps
    local rel = build:sub(1, #root + 1) == root .. "/" and build:sub(#root + 2) or build
    local cmd = ("bash -c 'cd %q && source scripts/env.sh %q && cd / && "
      .. "printf \"%%s\\n%%s\\n\" \"$LUA_PATH\" \"$LUA_CPATH\" && "
      .. "lua5.4 -e \"local s = require [[sqorm]] print(s.VERSION ~= nil)\"' 2>&1"):format(root, rel)
    p = io.popen(cmd)
    local out = p:read("a")
    p:close()
    local lpath, cpath, res = out:match("^([^\n]*)\n([^\n]*)\n(.*)$")
    assert.is_truthy(lpath, out)
    for entry in (lpath .. ";" .. cpath):gmatch("[^;]+") do
      assert.are.equal("/", entry:sub(1, 1), "relative entry " .. entry .. " in " .. out)
    end
    assert.are.equal("true\n", res)
  end)

  it("connects to SQLite through DATABASE_URL", function()
    local ok, out = run({ DATABASE_URL = "sqlite::memory:" },
      [[local db = require("sqorm").env.connect() print(db:dialect(), db:query("SELECT 2 AS two")[1].two)]])
    assert.is_true(ok, out)
    assert.are.equal("sqlite\t2\n", out)
  end)

  if os.getenv("SQORM_TEST_MYSQL_PORT") then
    it("connects to the MySQL-family server from TIDB_* with TLS", function()
      local g = os.getenv
      local ok, out = run({ TIDB_HOST = "127.0.0.1", TIDB_PORT = g("SQORM_TEST_MYSQL_PORT"),
        TIDB_USER = g("SQORM_TEST_MYSQL_USER"), TIDB_PASSWORD = g("SQORM_TEST_MYSQL_PASSWORD"),
        TIDB_DB_NAME = g("SQORM_TEST_MYSQL_DB"), TIDB_ENABLE_SSL = "true", TIDB_CA_PATH = g("SQORM_TEST_CA") },
        [[local db = require("sqorm").env.connect() db:authenticate()
          print(db:dialect(), db:query("SHOW SESSION STATUS LIKE 'Ssl_version'")[1].Value)]])
      assert.is_true(ok, out)
      assert.is_truthy(out:match("^mysql\tTLSv1%.[23]\n$"), out)
    end)
  end

  if os.getenv("SQORM_TEST_PG_PORT") then
    it("connects to PostgreSQL from DATABASE_URL", function()
      local ok, out = run({ DATABASE_URL = os.getenv("SQORM_TEST_PG_URL") .. "?sslmode=require" },
        [[local db = require("sqorm").env.connect()
          print(db:dialect(), db:query("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()")[1].ssl)]])
      assert.is_true(ok, out)
      assert.are.equal("postgres\ttrue\n", out)
    end)
  end
  H = H
end)
