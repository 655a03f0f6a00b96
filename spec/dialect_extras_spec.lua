-- Small per-driver extras on top of the shared specs.
local sqorm = require "sqorm"
local H = require "spec.helper"

H.each_dialect(describe, function(d)
  if d.name == "postgres" then
    it("passes libpq parameters from the URL through", function()
      local db = sqorm.connect(d.url .. "?application_name=sqorm_spec&sslmode=prefer")
      assert.are.equal("sqorm_spec", db:query("SHOW application_name")[1].application_name)
      db:close()
      H.raises_kind("usage", "bogus_param", function()
        sqorm.connect(d.url .. "?bogus_param=1"):authenticate()
      end)
    end)

    it("leaves :: casts alone next to :name binds", function()
      local db = sqorm.connect(d.url)
      local r = db:query("SELECT :v::int + 1 AS n, '1'::text AS t", { v = "41" })[1]
      assert.are.equal(42, r.n)
      assert.are.equal("1", r.t)
      db:close()
    end)

    it("types numeric, bool, bytea, date and timestamptz by OID", function()
      local db = sqorm.connect(d.url)
      local r = db:query([[SELECT 1.50::numeric AS num, true AS b, '\x00ff'::bytea AS by,
        DATE '2024-01-02' AS da, TIMESTAMPTZ '2024-01-02 03:04:05.5+02' AS ts, 7::int2 AS small]])[1]
      assert.are.equal("1.50", r.num)
      assert.are.equal(true, r.b)
      assert.are.equal("\0\255", r.by)
      assert.are.equal("2024-01-02", r.da)
      assert.are.equal("2024-01-02 01:04:05.500000", r.ts)
      assert.are.equal("integer", math.type(r.small))
      db:close()
    end)
  elseif d.name == "mysql" then
    it("returns BIGINT UNSIGNED above 2^63 as a string", function()
      local db = sqorm.connect(d.url)
      local t = H.tname("u64")
      db:exec(("CREATE TABLE %s (v BIGINT UNSIGNED)"):format(t))
      db:exec(("INSERT INTO %s VALUES (18446744073709551615), (5)"):format(t))
      local rows = db:query(("SELECT v FROM %s ORDER BY v"):format(t))
      assert.are.equal(5, rows[1].v)
      assert.are.equal("18446744073709551615", rows[2].v)
      db:exec("DROP TABLE " .. t)
      db:close()
    end)

    it("speaks utf8mb4 and types DECIMAL, DATETIME and BLOB from metadata", function()
      local db = sqorm.connect(d.url)
      local r = db:query([[SELECT CAST(1.50 AS DECIMAL(5,2)) AS num, CAST('2024-01-02 03:04:05' AS DATETIME) AS dt,
        CAST(X'00FF' AS BINARY) AS bin, '🎮' AS e, @@character_set_client AS cs]])[1]
      assert.are.equal("1.50", r.num)
      assert.are.equal("2024-01-02 03:04:05", r.dt)
      assert.are.equal("\0\255", r.bin)
      assert.are.equal("🎮", r.e)
      assert.are.equal("utf8mb4", r.cs)
      db:close()
    end)

    it("understands mariadb:// and tidb:// URLs", function()
      local url = d.url:gsub("^mysql://", "mariadb://")
      local db = sqorm.connect(url)
      assert.are.equal("mysql", db:dialect())
      assert.is_true(db:authenticate())
      db:close()
    end)
  else
    it("runs several statements in one exec only with multi = true", function()
      local db = sqorm.connect(d.url)
      H.raises_kind("usage", "3 statements", function()
        db:exec("CREATE TABLE a (x INTEGER); INSERT INTO a VALUES (1); INSERT INTO a VALUES (2);")
      end)
      db:exec("CREATE TABLE a (x INTEGER); INSERT INTO a VALUES (1); INSERT INTO a VALUES (2);", nil, { multi = true })
      assert.are.equal(2, db:query("SELECT count(*) AS n FROM a")[1].n)
      db:exec("INSERT INTO a VALUES (?); INSERT INTO a VALUES (?)", { 3, 4 }, { multi = true })
      assert.are.equal(4, db:query("SELECT count(*) AS n FROM a")[1].n)
      db:close()
    end)
  end
end)
