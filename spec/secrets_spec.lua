-- Secrets: a password never appears in an error message, tostring(err),
-- tostring(db) or a logging line, on any connect or query failure path
-- (issue 16). A canary password goes through every failure we can reach.
local sqorm = require "sqorm"
local H = require "spec.helper"

local CANARY = "CanaryPw_9d2e7"
local g = os.getenv

-- Everything a user could see of a failure, as one string.
local function visible(err, db, logs)
  local parts = {}
  if err ~= nil then
    parts[#parts + 1] = tostring(err)
    if type(err) == "table" or sqorm.is_error(err) then
      parts[#parts + 1] = tostring(err.message)
      parts[#parts + 1] = tostring(err.code)
    end
  end
  if db then parts[#parts + 1] = tostring(db) end
  for _, l in ipairs(logs or {}) do parts[#parts + 1] = l end
  return table.concat(parts, "\n")
end

local function assert_hidden(text, secret, what)
  secret = secret or CANARY
  assert(not text:find(secret, 1, true), ("%s shows the password:\n%s"):format(what or "a failure", text))
end

-- Connects (url and/or opts), authenticates and runs a statement with
-- logging and benchmark on; whatever fails, nothing shows the canary.
-- Returns the error (or nil when it all worked).
local function probe(secret, ...)
  local logs = {}
  local args = table.pack(...)
  local o = args[args.n]
  if type(o) ~= "table" then
    o = {}
    args.n = args.n + 1
    args[args.n] = o
  end
  o.logging = function(msg) logs[#logs + 1] = msg end
  o.benchmark = true
  local ok, db = pcall(sqorm.connect, table.unpack(args, 1, args.n))
  if not ok then
    assert_hidden(visible(db, nil, logs), secret, "sqorm.connect")
    return db
  end
  assert_hidden(tostring(db), secret, "tostring(db)")
  local ok2, err = pcall(function()
    db:authenticate()
    db:query("SELECT 1 AS one")
  end)
  assert_hidden(visible(not ok2 and err or nil, db, logs), secret, "the first use")
  db:close()
  assert_hidden(tostring(db), secret, "tostring(db) after close")
  return not ok2 and err or nil
end

describe("secrets", function()
  describe("malformed URLs", function()
    local P = CANARY
    local urls = {
      "postgres://u:" .. P .. "@host:notaport/db",
      "postgres://u:" .. P .. "@host:99999/db",
      "postgres://u:" .. P .. "@host:/db",
      "mysql://u:" .. P .. "@[::1/db",
      "mysql://u:" .. P .. "@[::1]x/db",
      "postgres://u:" .. P .. "%zz@host/db",
      "postgres://u:" .. P .. "%00@host/db",
      "postgres://u%zz:" .. P .. "@host/db",
      "postgres://u:pre/" .. P .. "@host/db",
      "postgres://u:pre?" .. P .. "@host/db",
      "postgres://u:12/" .. P .. "@host/db",
      "postgres://u:" .. P .. "/db",
      "postgres:/u:" .. P .. "@host/db",
      "postgres//u:" .. P .. "@host/db",
      "postgres:u:" .. P .. "@host/db",
      "ftp://u:" .. P .. "@host/db",
      "post gres://u:" .. P .. "@host/db",
      "postgres://u:" .. P .. "@host/db?sslmode=bogus",
      "postgres://u:" .. P .. "@host/db?sslmode",
      "postgres://u:" .. P .. "@host/db?bogus_param=1",
      "mysql://u:" .. P .. "@host/db?bogus_param=1",
      "postgres://host/db?password=" .. P .. "&sslmode=bogus",
      "postgres://host/db?password=" .. P .. "%zz",
      "postgres://host/db?sslpassword=" .. P .. "&port=x",
      "postgres://host/db?" .. P,
      "mysql://u:" .. P .. "@host/db?pool.max=lots",
      "sqlite:" .. P .. "?bogus=1",
    }
    for i, url in ipairs(urls) do
      it(("#%d %s"):format(i, url:gsub(P, "<canary>")), function()
        local e = probe(CANARY, url)
        assert.is_not_nil(e)
      end)
      it(("#%d as connect{ url = ... } and with options"):format(i), function()
        probe(CANARY, { url = url, pool = { max = 1 } })
        probe(CANARY, url, { pool = { max = 1 } })
      end)
    end
  end)

  it("connect tables and options carrying the password", function()
    assert.is_not_nil(probe(CANARY, { dialect = "postgres", host = "127.0.0.1", port = 1, user = "u", password = CANARY,
      connect_timeout = 2 }))
    assert.is_not_nil(probe(CANARY, { dialect = "mysql", host = "127.0.0.1", port = 1, user = CANARY, password = CANARY,
      connect_timeout = 2 }))
    assert.is_not_nil(probe(CANARY, "postgres://u@127.0.0.1:1/db", { password = CANARY, connect_timeout = 2 }))
    assert.is_not_nil(probe(CANARY, { dialect = "postgres", password = CANARY, port = "x" }))
    assert.is_not_nil(probe(CANARY, { dialect = "postgres", password = CANARY, ssl = { mode = "bogus" } }))
    assert.is_not_nil(probe(CANARY, { dialect = "postgres", password = CANARY, params = { nope = CANARY } }))
    assert.is_not_nil(probe(CANARY, { dialect = "postgres", host = "127.0.0.1", port = 1, connect_timeout = 2,
      params = { password = CANARY, sslpassword = CANARY } }))
    assert.is_not_nil(probe(CANARY, { dialect = "mysql", password = CANARY, params = { x = "1" } }))
    assert.is_not_nil(probe(CANARY, { dialect = "sqlite", storage = "/nonexistent/dir/" .. CANARY .. ".db",
      password = CANARY }))
  end)

  it("hides a short password where it stands alone, without mangling other words", function()
    local e = probe("pw", "postgres://u:pw@host:x/db")
    assert.matches("u:***@host", e.message, 1, true)
  end)

  local servers = {}
  if g("SQORM_TEST_PG_PORT") then
    servers[#servers + 1] = { name = "postgres", port = g("SQORM_TEST_PG_PORT"), plain = g("SQORM_TEST_PG_PLAIN_PORT"),
      ssl = "sslmode", ca = "sslrootcert", real = g("SQORM_TEST_PG_URL"), password = g("SQORM_TEST_PG_PASSWORD") }
  end
  if g("SQORM_TEST_MYSQL_PORT") then
    servers[#servers + 1] = { name = "mysql", port = g("SQORM_TEST_MYSQL_PORT"), plain = g("SQORM_TEST_MYSQL_PLAIN_PORT"),
      ssl = "ssl_mode", ca = "ssl_ca", real = g("SQORM_TEST_MYSQL_URL"), password = g("SQORM_TEST_MYSQL_PASSWORD") }
  end

  for _, s in ipairs(servers) do
    describe("[" .. s.name .. "] connect failures", function()
      local function url(user, port, query)
        return ("%s://%s:%s@127.0.0.1:%s/sqorm_test%s"):format(s.name, user, CANARY, port, query or "")
      end

      it("wrong password", function()
        local e = probe(CANARY, url("sqorm", s.port))
        assert.are.equal("auth", e.kind)
      end)

      it("the password as a user name too", function()
        local e = probe(CANARY, url(CANARY, s.port))
        assert.are.equal("auth", e.kind)
      end)

      it("a password holding URL syntax, percent-encoded", function()
        local weird = CANARY .. "@/?:#%&="
        local enc = weird:gsub("[^%w_]", function(c) return ("%%%02X"):format(c:byte()) end)
        local e = probe(CANARY, ("%s://sqorm:%s@127.0.0.1:%s/sqorm_test"):format(s.name, enc, s.port))
        assert.are.equal("auth", e.kind)
      end)

      it("bad port", function()
        local e = probe(CANARY, url("sqorm", 1))
        assert.are.equal("connection", e.kind)
      end)

      it("unknown host", function()
        local e = probe(CANARY, ("%s://sqorm:%s@nonexistent.invalid/sqorm_test?connect_timeout=3"):format(s.name, CANARY))
        assert.are.equal("connection", e.kind)
      end)

      it("TLS failures: a CA that doesn't match, TLS required of a plain server", function()
        local wrong = g("SQORM_TEST_WRONG_CA")
        if wrong then
          local e = probe(CANARY, url("sqorm", s.port, ("?%s=verify_ca&%s=%s"):format(s.ssl, s.ca, wrong)))
          assert.is_not_nil(e)
        end
        if s.plain then probe(CANARY, url("sqorm", s.plain, ("?%s=require"):format(s.ssl))) end
        probe(CANARY, url("sqorm", s.port, ("?%s=verify_identity&%s=/nonexistent/ca.pem"):format(s.ssl, s.ca)))
      end)

      it("connect table and URL + options forms", function()
        probe(CANARY, { dialect = s.name, host = "127.0.0.1", port = tonumber(s.port), user = "sqorm",
          password = CANARY, database = "sqorm_test" })
        probe(CANARY, ("%s://sqorm@127.0.0.1:%s/sqorm_test"):format(s.name, s.port), { password = CANARY })
        probe(CANARY, { url = ("%s://sqorm@127.0.0.1:%s/sqorm_test"):format(s.name, s.port), password = CANARY })
      end)
    end)

    describe("[" .. s.name .. "] query failures with the real password", function()
      it("never show it in errors, tostring or logging lines", function()
        local logs = {}
        local db = sqorm.connect(s.real, { logging = function(m) logs[#logs + 1] = m end, benchmark = true })
        local t = H.tname("secrets")
        local errs = {}
        local function fails(f)
          local ok, e = pcall(f)
          assert.is_false(ok)
          errs[#errs + 1] = e
        end
        db:exec(("CREATE TABLE %s (id INTEGER PRIMARY KEY, v INTEGER NOT NULL)"):format(t))
        db:exec(("INSERT INTO %s (id, v) VALUES (1, 1)"):format(t))
        fails(function() db:query("SELEKT nonsense") end)
        fails(function() db:exec(("INSERT INTO %s (id, v) VALUES (1, 1)"):format(t)) end)
        fails(function() db:exec(("INSERT INTO %s (id) VALUES (2)"):format(t)) end)
        fails(function() db:query("SELECT * FROM no_such_table_here") end)
        fails(function()
          db:transaction(function() db:exec(("INSERT INTO %s (id, v) VALUES (1, 1)"):format(t)) end)
        end)
        db:exec(("DROP TABLE %s"):format(t))
        for _, e in ipairs(errs) do assert_hidden(visible(e, db, logs), s.password, "a query failure") end
        assert_hidden(visible(nil, db, logs), s.password, "the log")
        db:close()
        fails(function() db:query("SELECT 1") end)
        assert_hidden(visible(errs[#errs], db), s.password, "a closed db")
      end)
    end)
  end

  it("sqorm.env.connect from DATABASE_URL and TIDB_* hides the password", function()
    local function run(env, code)
      local parts = {}
      for k, v in pairs(env) do parts[#parts + 1] = ("%s='%s'"):format(k, v:gsub("'", "'\\''")) end
      local cmd = ("env -u DATABASE_URL -u TIDB_HOST %s lua5.4 -e '%s' 2>&1"):format(table.concat(parts, " "),
        code:gsub("'", "'\\''"))
      local p = io.popen(cmd)
      local out = p:read("a")
      p:close()
      return out
    end
    local code = [[local ok, e = pcall(function() local db = require("sqorm").env.connect() db:authenticate() end)
      print(ok, tostring(e))]]
    for _, env in ipairs({
      { DATABASE_URL = "postgres://u:" .. CANARY .. "@127.0.0.1:1/db" },
      { DATABASE_URL = "postgres://u:" .. CANARY .. "@127.0.0.1:bad/db" },
      { DATABASE_URL = "mysql://u:pre/" .. CANARY .. "@127.0.0.1/db" },
      { TIDB_HOST = "127.0.0.1", TIDB_PORT = "1", TIDB_PASSWORD = CANARY },
      { TIDB_HOST = "127.0.0.1", TIDB_PORT = "1", TIDB_PASSWORD = CANARY, TIDB_ENABLE_SSL = "true",
        TIDB_CA_PATH = "/nonexistent/ca.pem" },
    }) do
      local out = run(env, code)
      assert.matches("^false\t", out)
      assert_hidden(out, CANARY, "sqorm.env.connect")
    end
  end)
end)
