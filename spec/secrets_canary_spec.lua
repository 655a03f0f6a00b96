-- Secrets canary, the whole matrix (issue 16, item 4): a canary password
-- goes through every connect form (URL, URL + options, table, host lists,
-- pooler hints, named pools, params) crossed with every connect failure
-- we can cause (refused port, unknown host, bad option, bad port, TLS
-- refused, wrong password on the real servers, PgBouncer, a MySQL host
-- list), and the real passwords of the test servers through every query
-- failure path of the API (raw SQL, models, validation, constraints,
-- cursors, transactions, pool timeouts, closed handles) on every dialect.
-- Nothing a caller can see - err.message, tostring(err), err.code,
-- err.fields, a logging or benchmark line, tostring of the db, a model,
-- a transaction, a cursor or an instance, pool_stats - may hold it.
-- spec/secrets_spec.lua holds the malformed-URL cases.
local sqorm = require "sqorm"
local H = require "spec.helper"
local T = sqorm.types

local CANARY = "CnryPw_4f81c"
local g = os.getenv

-- Everything visible about a value, recursively (tables: keys and values).
local function dump(v, out, seen)
  out = out or {}
  seen = seen or {}
  local t = type(v)
  if t == "table" then
    if seen[v] then return out end
    seen[v] = true
    out[#out + 1] = tostring(v)
    for k, x in pairs(v) do
      dump(k, out, seen)
      dump(x, out, seen)
    end
  elseif t ~= "nil" then
    local ok, s = pcall(tostring, v)
    out[#out + 1] = ok and s or "?"
  end
  return out
end

local checked = 0
local function hidden(secret, what, ...)
  local text = table.concat(dump({ ... }), "\n")
  checked = checked + 1
  assert(not text:find(secret, 1, true), ("%s shows the secret:\n%s"):format(what, text))
end

-- Connects with the args (logging and benchmark on), then authenticates
-- and queries; everything seen on the way is checked. Returns the error.
local function probe(secret, ...)
  local logs = {}
  local args = table.pack(...)
  local o = args[args.n]
  if type(o) ~= "table" or args.n == 1 and o.dialect == nil and o.url == nil then
    o = {}
    args.n = args.n + 1
    args[args.n] = o
  end
  o.logging = function(msg) logs[#logs + 1] = msg end
  o.benchmark = true
  local ok, db = pcall(sqorm.connect, table.unpack(args, 1, args.n))
  if not ok then
    hidden(secret, "sqorm.connect", db, logs)
    return db
  end
  hidden(secret, "tostring(db)", tostring(db))
  local ok2, err = pcall(function()
    db:authenticate()
    db:query("SELECT 1 AS one")
  end)
  local ok3, ver = pcall(db.server_version, db)
  hidden(secret, "the first use", not ok2 and err or nil, not ok3 and ver or nil, tostring(db), logs,
    (pcall(db.pool_stats, db)) and db:pool_stats() or nil)
  db:close()
  hidden(secret, "after close", tostring(db), select(2, pcall(db.query, db, "SELECT 1")))
  return not ok2 and err or nil
end

local P = CANARY

describe("secrets canary: connect forms x failures", function()
  local forms = {
    mysql = {
      function(host, port, q) return ("mysql://u:%s@%s:%s/db%s"):format(P, host, port, q or "") end,
      function(host, port, q) return ("mysql://u@%s:%s/db%s"):format(host, port, q or ""), { password = P } end,
      function(host, port) return { dialect = "mysql", host = host, port = tonumber(port) or port, user = "u",
        password = P, database = "db" } end,
      function(host, port, q) return ("mysql://u:%s@%s:%s,%s:%s/db%s"):format(P, host, port, host, port, q or "") end,
      function(host, port) return { dialect = "mysql", hosts = { host .. ":" .. port, host }, port = 1, user = "u",
        password = P, database = "db", host_backoff = 1 } end,
      function(host, port, q) return ("mysql://%s:%s@%s:%s/db%s"):format(P, P, host, port, q or "") end,
      function(host, port) return { dialect = "mysql", host = host, port = tonumber(port) or port, user = "u",
        password = P, name = "secrets_canary_" .. port } end,
    },
    postgres = {
      function(host, port, q) return ("postgres://u:%s@%s:%s/db%s"):format(P, host, port, q or "") end,
      function(host, port, q) return ("postgres://u@%s:%s/db%s"):format(host, port, q or ""), { password = P } end,
      function(host, port) return { dialect = "postgres", host = host, port = tonumber(port) or port, user = "u",
        password = P, database = "db" } end,
      function(host, port, q) return ("postgres://u:%s@%s:%s,%s:%s/db%s"):format(P, host, port, host, port,
        q and (q .. "&target_session_attrs=read-write") or "?target_session_attrs=read-write") end,
      function(host, port, q) return ("postgres://u:%s@%s:%s/db%s"):format(P, host, port,
        q and (q .. "&pgbouncer=true") or "?pgbouncer=true") end,
      function(host, port) return { dialect = "postgres", host = host, port = tonumber(port) or port, user = "u",
        params = { password = P, sslpassword = P }, prepare = false } end,
      function(host, port) return { dialect = "postgres", hosts = { host .. ":" .. port }, user = P, password = P,
        name = "secrets_canary_pg_" .. port } end,
    },
  }
  local failures = {
    { "refused port", "127.0.0.1", "1", "?connect_timeout=2" },
    { "unknown host", "nonexistent.invalid", "5432", "?connect_timeout=2" },
    { "bad port", "127.0.0.1", "notaport" },
    { "port out of range", "127.0.0.1", "99999" },
    { "bad option", "127.0.0.1", "1", "?connect_timeout=soon" },
    { "bad TLS mode", "127.0.0.1", "1", "?sslmode=sometimes" },
    { "missing CA", "127.0.0.1", "1", "?sslmode=verify_ca&sslrootcert=/nonexistent/" .. P .. ".pem" },
  }
  for _, dialect in ipairs({ "mysql", "postgres" }) do
    for fi, form in ipairs(forms[dialect]) do
      for _, f in ipairs(failures) do
        it(("[%s] form %d, %s"):format(dialect, fi, f[1]), function()
          local q = f[4]
          if q and dialect == "mysql" then q = q:gsub("sslmode", "ssl_mode"):gsub("sslrootcert", "ssl_ca") end
          local a, b = form(f[2], f[3], q)
          local e = probe(P, a, b)
          assert.is_not_nil(e)
          assert.is_true(sqorm.is_error(e))
        end)
      end
    end
  end

  it("[sqlite] a password and secrets in options are refused or ignored without showing them", function()
    probe(P, { dialect = "sqlite", storage = ":memory:", password = P })
    probe(P, { dialect = "sqlite", storage = "/nonexistent/dir/" .. P .. ".db", password = P })
    probe(P, "sqlite::memory:", { password = P, pool = { max = "x" } })
    probe(P, "sqlite::memory:?password=" .. P)
    probe(P, { url = "sqlite::memory:", params = { key = P } })
  end)

  -- The real servers, with a wrong (canary) password, in every form.
  local servers = {}
  if g("SQORM_TEST_PG_PORT") then
    servers[#servers + 1] = { name = "postgres", host = g("SQORM_TEST_PG_HOST"), port = g("SQORM_TEST_PG_PORT"),
      user = g("SQORM_TEST_PG_USER"), db = g("SQORM_TEST_PG_DB"), plain = g("SQORM_TEST_PG_PLAIN_PORT") }
  end
  if g("SQORM_TEST_MYSQL_PORT") then
    servers[#servers + 1] = { name = "mysql", host = g("SQORM_TEST_MYSQL_HOST"), port = g("SQORM_TEST_MYSQL_PORT"),
      user = g("SQORM_TEST_MYSQL_USER"), db = g("SQORM_TEST_MYSQL_DB"), plain = g("SQORM_TEST_MYSQL_PLAIN_PORT") }
  end
  for _, s in ipairs(servers) do
    it(("[%s] a wrong password against the live server, every form"):format(s.name), function()
      for fi, form in ipairs(forms[s.name]) do
        local a, b = form(s.host, s.port)
        if type(a) == "string" then a = a:gsub("//u", "//" .. s.user, 1):gsub("/db", "/" .. s.db, 1)
        elseif not a.name then a.user = a.user == "u" and s.user or a.user; a.database = s.db end
        local e = probe(P, a, b)
        assert.is_not_nil(e, "form " .. fi)
        assert.is_truthy(e.kind == "auth" or e.kind == "connection", e.kind)
      end
      if s.plain then
        local q = s.name == "mysql" and "?ssl_mode=required" or "?sslmode=require"
        assert.is_not_nil(probe(P, ("%s://%s:%s@%s:%s/%s%s"):format(s.name, s.user, P, s.host, s.plain, s.db, q)))
      end
    end)
  end

  it("[postgres] through PgBouncer with a wrong password", function()
    local url = H.pgbouncer_url()
    if not url then
      if H.has_servers("pgbouncer") then error("SQORM_TEST_PGBOUNCER_URL missing") end
      return
    end
    local wrong = url:gsub("^(postgres%w*://[^:/@]+):[^@]*@", "%1:" .. P .. "@")
    assert.are_not.equal(url, wrong)
    assert.is_not_nil(probe(P, wrong))
  end)

  it("[mysql] a host list where every host fails names each host, never the password", function()
    local e = probe(P, ("mysql://u:%s@127.0.0.1:1,127.0.0.1:2,nonexistent.invalid:3/db?connect_timeout=2"):format(P))
    assert.are.equal("connection", e.kind)
    assert.matches("127.0.0.1:1", e.message, 1, true)
  end)
end)

-- Every query failure path with the real password of the server (SQLite:
-- a canary in the file name and the options, which the db keeps).
H.each_dialect(describe, function(d)
  describe("secrets canary: query failures", function()
    local secret
    if d.name == "mysql" then secret = g("SQORM_TEST_MYSQL_PASSWORD")
    elseif d.name == "postgres" then secret = g("SQORM_TEST_PG_PASSWORD")
    else secret = CANARY end

    it("never show the password in errors, logs, tostring or fields", function()
      assert.is_truthy(secret and #secret >= 4, "the test server's password is too short to search for")
      local logs = {}
      local o = { logging = function(m) logs[#logs + 1] = m end, benchmark = true, pool = { max = 1, acquire_timeout = 1 } }
      local path
      if d.name == "sqlite" then
        path = os.tmpname()
        o.password = CANARY -- kept (or ignored) by the handle: never shown
      end
      local ok0, db = pcall(sqorm.connect, path and ("sqlite:" .. path) or d.url, o)
      if not ok0 then
        -- SQLite may refuse a password: then the refusal is what is checked
        hidden(secret, "connect", db)
        o.password = nil
        db = sqorm.connect(path and ("sqlite:" .. path) or d.url, o)
      end
      local seen = {}
      local function fails(what, f, ...)
        local ok, e = pcall(f, ...)
        assert(not ok, what .. " did not fail")
        assert(sqorm.is_error(e), what .. ": " .. tostring(e))
        seen[#seen + 1] = e
        hidden(secret, what, e, e.fields, logs)
      end
      local t = H.tname("canary")
      local M = db:define("canary", {
        { "id", T.INTEGER, primary_key = true },
        { "name", T.STRING(16), unique = true, validate = { len = { 1, 8 } } },
        { "coins", T.INTEGER, allow_null = false, validate = { min = 0, sane = function(v) return v < 1000, "too rich" end } },
      }, { table_name = t, timestamps = false })
      M:sync{ force = true }
      local a = M:create{ id = 1, name = "ann", coins = 1 }
      fails("syntax", db.query, db, "SELEKT nonsense")
      fails("no such table", db.query, db, "SELECT * FROM no_such_table_" .. t)
      fails("two statements", db.exec, db, "SELECT 1; SELECT 2")
      fails("bad bind", db.query, db, "SELECT ? AS x", { {} })
      fails("unique", M.create, M, { id = 2, name = "ann", coins = 1 })
      fails("primary key", M.create, M, { id = 1, name = "bob", coins = 1 })
      fails("not null", db.exec, db, ("INSERT INTO %s (id, name) VALUES (9, 'x')"):format(t))
      fails("validation", M.create, M, { id = 3, name = "far too long a name", coins = -1 })
      fails("validator message", M.create, M, { id = 3, name = "cat", coins = 5000 })
      fails("usage: where", M.find_all, M, { where = { nope = 1 } })
      fails("usage: option", M.find_all, M, { bogus = true })
      fails("stale", function() M:destroy{ where = { id = 1 } } a.coins = 2 a:save() end)
      fails("tx body", db.transaction, db, function()
        M:create{ id = 10, name = "dup", coins = 1 }
        M:create{ id = 10, name = "dup2", coins = 1 }
      end)
      fails("tx then closed", function()
        local tx = db:begin()
        tx:rollback()
        tx:commit()
      end)
      -- a cursor holding the only connection: the next call times out at once
      M:create{ id = 4, name = "dan", coins = 1 }
      fails("pool_timeout", function()
        for _ in M:each() do db:query("SELECT 1 AS x") end
      end)
      local tx = db:begin()
      hidden(secret, "tostring(tx), model, instance", tostring(tx), tostring(M), tostring(a), a:to_table(),
        db:pool_stats(), tostring(db))
      tx:rollback()
      local it, _, _, cur = M:each()
      hidden(secret, "tostring(cursor)", tostring(cur), tostring(it))
      cur:close()
      M:drop()
      db:close()
      fails("closed", db.query, db, "SELECT 1")
      fails("closed model", M.find_all, M)
      hidden(secret, "every log line", logs, tostring(db))
      assert.is_true(#seen >= 15)
      assert.is_true(#logs > 5)
      if path then os.remove(path) end
    end)
  end)
end)

describe("secrets canary: figures", function()
  it("prints how many places were checked", function()
    print(("\nsecrets canary: %d checks of visible output, 0 showed the password"):format(checked))
    assert.is_true(checked > 0)
  end)
end)
