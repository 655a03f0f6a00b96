-- Several hosts (issue 14, DESIGN.md "Several hosts"): a MySQL-family URL
-- mysql://u:p@h1:3306,h2:3306/db (or host = "h1:3306,h2:3306", or
-- hosts = { "h1:3306", "h2:3306" }) connects to the first host that
-- answers; PostgreSQL passes the list to libpq (host=a,b), with
-- target_session_attrs choosing the role. Port 1 on 127.0.0.1 stands for a
-- dead host (nothing listens there: connection refused). The Galera kill /
-- restart cycle is tests/test_failover_live.c.
local sqorm = require "sqorm"
local H = require "spec.helper"

local getenv = os.getenv

local function port_of(db)
  return math.tointeger(db:query("SELECT @@port AS p")[1].p)
end

if H.need_servers("mysql") then
  describe("[mysql] several hosts", function()
    local user, pw = getenv("SQORM_TEST_MYSQL_USER"), getenv("SQORM_TEST_MYSQL_PASSWORD")
    local host, port, db_name = getenv("SQORM_TEST_MYSQL_HOST"), getenv("SQORM_TEST_MYSQL_PORT"), getenv("SQORM_TEST_MYSQL_DB")
    local live = host .. ":" .. port
    local dead = host .. ":1"

    it("connects to the first host that answers (URL form)", function()
      local db = sqorm.connect(("mysql://%s:%s@%s,%s/%s"):format(user, pw, dead, live, db_name))
      assert.are.equal(tonumber(port), port_of(db))
      db:close()
    end)

    it("takes the list as hosts = { ... } or host = \"a,b\" in the connect table", function()
      for _, hosts in ipairs({ { dead, live }, dead .. "," .. live }) do
        for _, key in ipairs({ "hosts", "host" }) do
          local db = sqorm.connect{ dialect = "mysql", [key] = hosts, user = user, password = pw, database = db_name,
                                    host_backoff = 0.5 }
          assert.are.equal(tonumber(port), port_of(db))
          db:close()
        end
      end
      -- a port given apart applies to the hosts that have none
      local db = sqorm.connect{ dialect = "mysql", hosts = { host .. ":1", host }, port = tonumber(port), user = user,
                                password = pw, database = db_name }
      assert.are.equal(tonumber(port), port_of(db))
      db:close()
    end)

    it("names every host when none answers, never the password", function()
      local db = sqorm.connect(("mysql://%s:%s@%s,%s:2/%s"):format(user, "s3cret_pw", dead, host, db_name))
      local err = H.raises_kind("connection", "no host answered (2 tried)", function() db:authenticate() end)
      assert.truthy(err.message:find(dead .. ": ", 1, true))
      assert.truthy(err.message:find(host .. ":2: ", 1, true))
      assert.falsy(tostring(err):find("s3cret_pw", 1, true))
      db:close()
    end)

    it("refuses bad host lists with kind usage", function()
      H.raises_kind("usage", "entry 2", function() sqorm.connect{ dialect = "mysql", hosts = { "a", 3306 } } end)
      H.raises_kind("usage", "non-empty", function() sqorm.connect{ dialect = "mysql", hosts = {} } end)
      H.raises_kind("usage", "port", function() sqorm.connect("mysql://u@a:1,b:x/db") end)
      H.raises_kind("usage", "empty host", function() sqorm.connect("mysql://u@a:1,,b/db") end)
      H.raises_kind("usage", "host_backoff", function() sqorm.connect("mysql://u@a,b/db?host_backoff=0") end)
      H.raises_kind("usage", "hosts", function() sqorm.connect{ dialect = "sqlite", hosts = { "a", "b" } } end)
    end)
  end)
end

if H.need_servers("galera") then
  describe("[galera] several hosts", function()
    it("uses the first node of the cluster URL, and the next one when it is listed after a dead host", function()
      local ports = H.galera_ports()
      local db = sqorm.connect(H.galera_url() .. H.tls_query("mysql"))
      assert.are.equal(ports[1], port_of(db))
      db:close()
      local u = ("mysql://%s:%s@127.0.0.1:1,127.0.0.1:%d,127.0.0.1:%d/%s"):format(getenv("SQORM_TEST_GALERA_USER"),
        getenv("SQORM_TEST_GALERA_PASSWORD"), ports[3], ports[2], getenv("SQORM_TEST_GALERA_DB"))
      db = sqorm.connect(u)
      assert.are.equal(ports[3], port_of(db))
      db:close()
    end)
  end)
end

if H.need_servers("postgres") then
  describe("[postgres] several hosts", function()
    local user, pw = getenv("SQORM_TEST_PG_USER"), getenv("SQORM_TEST_PG_PASSWORD")
    local port, db_name = getenv("SQORM_TEST_PG_PORT"), getenv("SQORM_TEST_PG_DB")

    it("passes the list to libpq, which tries the hosts in order", function()
      local db = sqorm.connect(("postgres://%s:%s@127.0.0.1:1,127.0.0.1:%s/%s"):format(user, pw, port, db_name))
      assert.are.equal(tonumber(port), math.tointeger(db:query("SELECT inet_server_port() AS p")[1].p))
      db:close()
    end)

    if H.need_servers("postgres-standby") then
      it("lets target_session_attrs pick the primary or the standby", function()
        local standby = getenv("SQORM_TEST_PG_STANDBY_PORT")
        local function url(a, b, attrs)
          return ("postgres://%s:%s@127.0.0.1:%s,127.0.0.1:%s/%s?target_session_attrs=%s"):format(user, pw, a, b,
            db_name, attrs)
        end
        local db = sqorm.connect(url(standby, port, "read-write"))
        assert.is_false(db:query("SELECT pg_is_in_recovery() AS r")[1].r)
        db:close()
        db = sqorm.connect(url(port, standby, "standby"))
        assert.is_true(db:query("SELECT pg_is_in_recovery() AS r")[1].r)
        db:close()
      end)
    end
  end)
end
