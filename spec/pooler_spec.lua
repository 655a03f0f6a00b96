-- Pooler mode for PostgreSQL (issue 14, DESIGN.md "Hosted engines and
-- scale-out"): prepare = false, ?prepare=false, ?pgbouncer=true and
-- "-pooler." hosts use unnamed statements and rely on no session state.
-- Against the real PgBouncer of the test servers (transaction mode,
-- Debian's 1.18: no max_prepared_statements, DISCARD ALL after every
-- transaction) and against PostgreSQL directly.
local sqorm = require "sqorm"
local H = require "spec.helper"

local TS = "2024-01-02 03:04:05.500000"
local TZ = "2024-01-02 03:04:05.250000"

-- A table of 20 rows (id, v, f, ts, tz), made through db.
local function make_table(db)
  local t = H.tname("pooler")
  db:exec(("CREATE TABLE %s (id INT PRIMARY KEY, v TEXT, f FLOAT8, ts TIMESTAMP, tz TIMESTAMPTZ)"):format(t))
  for i = 1, 20 do
    db:exec(("INSERT INTO %s VALUES (?, ?, ?, ?, ?)"):format(t),
      { i, "v" .. i, i + 0.1, "2024-01-02 03:04:05.5", "2024-01-02 03:04:05.25+00" })
  end
  return t
end

-- 100 parameterised queries across 60 transactions: 50 alone (each its
-- own transaction, on whatever server connection PgBouncer picks) and 50
-- in ten db:transaction blocks of five. Each row is checked. Returns the
-- largest count of pg_prepared_statements seen inside a transaction (on
-- the backend that ran its queries).
local function hundred(db, t)
  local sql = ("SELECT id, v, f FROM %s WHERE id = ? AND v = ?"):format(t)
  local function one(id)
    local rows = db:query(sql, { id, "v" .. id })
    assert.are.equal(1, #rows)
    assert.are.same({ id = id, v = "v" .. id, f = id + 0.1 }, rows[1])
  end
  local prepared = 0
  for k = 0, 19 do
    if k % 2 == 0 then
      for j = 0, 4 do one(1 + (k * 5 + j) % 20) end
    else
      db:transaction(function()
        for j = 0, 4 do one(1 + (k * 5 + j) % 20) end
        prepared = math.max(prepared, db:query("SELECT count(*) AS n FROM pg_prepared_statements")[1].n)
      end)
    end
  end
  return prepared
end

-- In one transaction the session is made as hostile as it gets; values
-- still read back exactly.
local function hostile(db, t)
  db:transaction(function()
    db:exec("SET TimeZone = 'Asia/Tokyo'")
    db:exec("SET DateStyle = 'SQL, DMY'")
    db:exec("SET extra_float_digits = -15")
    local r = db:query(("SELECT ts, tz, f, 0.1::float8 + 0.2::float8 AS sum, '2024-02-29'::date AS d "
      .. "FROM %s WHERE id = ?"):format(t), { 3 })[1]
    assert.are.equal(TS, r.ts)
    assert.are.equal(TZ, r.tz)
    assert.are.equal(3.1, r.f)
    assert.are.equal(0.1 + 0.2, r.sum) -- 0.30000000000000004, not the 0.3 the session prints
    assert.are.equal("2024-02-29", r.d)
  end)
end

local function drop(url, t)
  local db = sqorm.connect(url)
  db:exec(("DROP TABLE IF EXISTS %s"):format(t))
  db:close()
end

if H.need_servers("pgbouncer") then
  describe("[pgbouncer] pooler mode", function()
    local url = H.pgbouncer_url()

    for _, how in ipairs({ "?prepare=false", "?pgbouncer=true", "table" }) do
      it("works through PgBouncer in transaction mode (" .. how .. ")", function()
        local db
        if how == "table" then
          db = sqorm.connect(url .. H.tls_query("postgres"), { prepare = false, pool = { max = 3 } })
        else
          db = sqorm.connect(url .. H.tls_query("postgres") .. "&" .. how:sub(2), { pool = { max = 3 } })
        end
        local t = make_table(db)
        finally(function()
          db:close()
          drop(url .. "?prepare=false", t)
        end)
        assert.are.equal(0, hundred(db, t)) -- no server-side prepared statement, ever
        hostile(db, t)
        -- a session SET outside a transaction changes nothing we decode
        db:exec("SET TimeZone = 'America/Los_Angeles'")
        assert.are.equal(TZ, db:query(("SELECT tz FROM %s WHERE id = ?"):format(t), { 1 })[1].tz)
        -- a failed statement leaves the transaction aborted (25P02), as ever
        local err = H.raises(function()
          db:transaction(function()
            pcall(db.query, db, "SELECT 1 / ?", { 0 })
            db:query("SELECT 1 AS x")
          end)
        end)
        assert.are.equal("25P02", err.sqlstate)
        assert.are.equal(0, db:pool_stats().in_use)
      end)
    end

    it("without pooler mode the same run fails with SQLSTATE 26000, as docs/api.md explains", function()
      local setup = sqorm.connect(url, { prepare = false })
      local t = make_table(setup)
      setup:close()
      local db = sqorm.connect(url, { pool = { max = 3 } })
      finally(function()
        db:close()
        drop(url .. "?prepare=false", t)
      end)
      local err = H.raises(function() hundred(db, t) end)
      assert.are.equal("database", err.kind)
      assert.are.equal("26000", err.sqlstate)
      assert.truthy(err.message:find("prepared statement \"sq_%d+\" does not exist"))
    end)
  end)
end

if H.need_servers("postgres") then
  describe("[postgres] pooler mode directly", function()
    it("needs no session setup: hostile session defaults still decode exactly", function()
      local db = sqorm.connect(H.pg_url(), {
        prepare = false,
        pool = { max = 1 },
        params = { options = "-c TimeZone=Asia/Tokyo -c DateStyle=German -c extra_float_digits=-15" },
      })
      local t = make_table(db)
      finally(function()
        db:close()
        drop(H.pg_url(), t)
      end)
      -- nothing was SET at connect
      assert.are.equal("-15", db:query("SHOW extra_float_digits")[1].extra_float_digits)
      local r = db:query(("SELECT ts, tz, f FROM %s WHERE id = ?"):format(t), { 7 })[1]
      assert.are.same({ ts = TS, tz = TZ, f = 7.1 }, r)
      hostile(db, t)
      assert.are.equal(0, hundred(db, t))
      assert.are.equal(0, db:query("SELECT count(*) AS n FROM pg_prepared_statements")[1].n)
      -- statements that refuse to run in a pipeline run alone
      db:exec(("CREATE INDEX CONCURRENTLY %s_v ON %s (v)"):format(t, t))
      db:exec(("VACUUM %s"):format(t))
    end)

    it("is off by default, so named statements are kept (the contrast)", function()
      local db = sqorm.connect(H.pg_url(), { pool = { max = 1 } })
      finally(function() db:close() end)
      for i = 1, 3 do db:query("SELECT ?::int AS x", { i }) end
      assert.is_true(db:query("SELECT count(*) AS n FROM pg_prepared_statements")[1].n > 0)
    end)

    it("turns on by itself for -pooler. hosts, and prepare = true turns it off", function()
      -- hostaddr connects the made-up Neon name to the test server (no TLS
      -- verification: the certificate names 127.0.0.1)
      local host = "ep-cool-darkness-123456-pooler.us-east-2.aws.neon.tech"
      local u = ("postgres://%s:%s@%s:%s/%s?hostaddr=127.0.0.1&sslmode=require"):format(os.getenv("SQORM_TEST_PG_USER"),
        os.getenv("SQORM_TEST_PG_PASSWORD"), host, os.getenv("SQORM_TEST_PG_PORT"), os.getenv("SQORM_TEST_PG_DB"))
      local db = sqorm.connect(u, { pool = { max = 1 }, params = { options = "-c extra_float_digits=-15" } })
      assert.are.equal("-15", db:query("SHOW extra_float_digits")[1].extra_float_digits) -- no setup: pooler mode
      for i = 1, 3 do db:query("SELECT ?::int AS x", { i }) end
      assert.are.equal(0, db:query("SELECT count(*) AS n FROM pg_prepared_statements")[1].n)
      db:close()
      db = sqorm.connect(u .. "&prepare=true", { pool = { max = 1 } })
      for i = 1, 3 do db:query("SELECT ?::int AS x", { i }) end
      assert.is_true(db:query("SELECT count(*) AS n FROM pg_prepared_statements")[1].n > 0)
      db:close()
    end)

    it("refuses prepare and pgbouncer on other dialects", function()
      H.raises_kind("usage", "postgres only", function() sqorm.connect("sqlite::memory:", { prepare = false }) end)
      H.raises_kind("usage", "postgres only", function() sqorm.connect("mysql://u@h/db?pgbouncer=true") end)
      H.raises_kind("usage", "prepare", function() sqorm.connect(H.pg_url(), { prepare = "sometimes" }) end)
    end)
  end)
end
