-- TLS on the MySQL-family and PostgreSQL servers the test command starts
-- (their certificate is signed by a throwaway CA, SAN IP:127.0.0.1 only).
local sqorm = require "sqorm"
local H = require "spec.helper"

local getenv = os.getenv

local servers = {}
if getenv("SQORM_TEST_MYSQL_PORT") then
  servers[#servers + 1] = {
    name = "mysql", port = getenv("SQORM_TEST_MYSQL_PORT"), plain = getenv("SQORM_TEST_MYSQL_PLAIN_PORT"),
    user = getenv("SQORM_TEST_MYSQL_USER"), password = getenv("SQORM_TEST_MYSQL_PASSWORD"),
    database = getenv("SQORM_TEST_MYSQL_DB"),
    tls_version = function(db) return db:query("SHOW SESSION STATUS LIKE 'Ssl_version'")[1].Value end,
  }
end
if getenv("SQORM_TEST_PG_PORT") then
  servers[#servers + 1] = {
    name = "postgres", port = getenv("SQORM_TEST_PG_PORT"), plain = getenv("SQORM_TEST_PG_PLAIN_PORT"),
    user = getenv("SQORM_TEST_PG_USER"), password = getenv("SQORM_TEST_PG_PASSWORD"),
    database = getenv("SQORM_TEST_PG_DB"),
    tls_version = function(db)
      local r = db:query("SELECT ssl, version FROM pg_stat_ssl WHERE pid = pg_backend_pid()")[1]
      return r.ssl and r.version or ""
    end,
  }
end
if #servers == 0 and getenv("SQORM_TEST_REQUIRE_SERVERS") == "1" then
  error("SQORM_TEST_REQUIRE_SERVERS=1 but no test server is configured")
end

for _, s in ipairs(servers) do
  describe("[" .. s.name .. "] TLS", function()
    local function connect(ssl, host, port)
      return sqorm.connect {
        dialect = s.name, host = host or "127.0.0.1", port = tonumber(port or s.port),
        user = s.user, password = s.password, database = s.database, ssl = ssl, connect_timeout = 10,
      }
    end

    it("connects with mode require", function()
      local db = connect { mode = "require" }
      assert.is_truthy(s.tls_version(db):match("^TLSv1%.[23]$"))
      db:close()
    end)

    it("verifies the server with the test CA (verify_identity)", function()
      local db = connect { mode = "verify_identity", ca = getenv("SQORM_TEST_CA") }
      assert.is_true(db:authenticate())
      assert.is_truthy(s.tls_version(db):match("^TLSv1%.[23]$"))
      db:close()
    end)

    it("treats a CA without a mode as verification", function()
      local db = connect { ca = getenv("SQORM_TEST_CA") }
      assert.is_truthy(s.tls_version(db):match("^TLSv1"))
      db:close()
      local bad = connect { ca = getenv("SQORM_TEST_WRONG_CA") }
      H.raises_kind("connection", nil, function() bad:authenticate() end)
      bad:close()
    end)

    it("refuses a certificate signed by another CA", function()
      local db = connect { mode = "verify_ca", ca = getenv("SQORM_TEST_WRONG_CA") }
      local err = H.raises_kind("connection", nil, function() db:authenticate() end)
      assert.is_truthy(err.message:lower():find("certificate", 1, true) or err.message:lower():find("verif", 1, true),
        "the library's reason is kept: " .. err.message)
      db:close()
    end)

    it("refuses a host-name mismatch under verify_identity", function()
      -- the certificate names IP 127.0.0.1 only, not "localhost"
      local db = connect({ mode = "verify_identity", ca = getenv("SQORM_TEST_CA") }, "localhost")
      H.raises_kind("connection", nil, function() db:authenticate() end)
      db:close()
    end)

    it("fails when TLS is required and the server has none", function()
      local db = connect({ mode = "require" }, nil, s.plain)
      H.raises_kind("connection", nil, function() db:authenticate() end)
      db:close()
      local plain = connect({ mode = "disable" }, nil, s.plain)
      assert.is_true(plain:authenticate())
      plain:close()
    end)

    if s.name == "mysql" then
      it("require and verify_ca never send the login to a server without TLS", function()
        -- the server counts connections that ended before authentication
        local plain = connect({ mode = "disable" }, nil, s.plain)
        local function preauth()
          return tonumber(plain:query("SHOW GLOBAL STATUS LIKE 'Aborted_connects_preauth'")[1].Value)
        end
        for _, ssl in ipairs { { mode = "require" }, { mode = "verify_ca", ca = getenv("SQORM_TEST_CA") } } do
          local before = preauth()
          local db = connect(ssl, nil, s.plain)
          local err = H.raises_kind("connection", "before sending the login", function() db:authenticate() end)
          assert.is_nil(err.message:find(s.password, 1, true))
          db:close()
          -- the server notices the closed socket on its own time
          local now = preauth()
          for _ = 1, 40 do
            if now > before then break end
            plain:exec("DO SLEEP(0.05)")
            now = preauth()
          end
          assert.are.equal(before + 1, now, ssl.mode .. ": the server saw the login")
        end
        plain:close()
      end)

      it("require still authenticates over TLS (any auth plugin, after TLS is up)", function()
        local db = connect { mode = "require" }
        assert.are.equal(s.user, db:query("SELECT SUBSTRING_INDEX(CURRENT_USER(), '@', 1) AS u")[1].u)
        assert.is_truthy(s.tls_version(db):match("^TLSv1%.[23]$"))
        db:close()
        local bad = sqorm.connect {
          dialect = "mysql", host = "127.0.0.1", port = tonumber(s.port), user = s.user, password = "wrong",
          database = s.database, ssl = { mode = "verify_ca", ca = getenv("SQORM_TEST_CA") },
        }
        H.raises_kind("auth", nil, function() bad:authenticate() end)
        bad:close()
      end)
    end

    it("connects without TLS under mode disable", function()
      local db = connect { mode = "disable" }
      assert.are.equal("", s.tls_version(db))
      db:close()
    end)

    it("honours min_version", function()
      local db = connect { mode = "require", min_version = "TLSv1.3" }
      assert.are.equal("TLSv1.3", s.tls_version(db))
      db:close()
      local db2 = connect { mode = "require", min_version = "TLSv1.2" }
      assert.is_truthy(s.tls_version(db2):match("^TLSv1%.[23]$"))
      db2:close()
      H.raises_kind("usage", "TLSv1.1", function() connect { mode = "require", min_version = "TLSv1.1" } end)
    end)

    it("takes TLS settings from URL parameters", function()
      local url = ("%s://%s:%s@127.0.0.1:%s/%s?sslmode=verify_identity&sslrootcert=%s"):format(
        s.name, s.user, s.password, s.port, s.database, getenv("SQORM_TEST_CA"))
      local db = sqorm.connect(url)
      assert.is_truthy(s.tls_version(db):match("^TLSv1"))
      db:close()
    end)
  end)
end
