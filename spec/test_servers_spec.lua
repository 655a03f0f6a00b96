-- The scale-out test servers that scripts/test-servers.sh starts work, as
-- seen through sqorm: PgBouncer in transaction mode, the MariaDB replica,
-- the PostgreSQL standby and the Galera cluster (a node killed and
-- restarted rejoins). The features built on them have their own specs.
local sqorm = require "sqorm"
local H = require "spec.helper"

local getenv = os.getenv

local function count(db, t)
  return db:query(("SELECT count(*) AS n FROM %s"):format(t))[1].n
end

if H.need_servers("pgbouncer") then
  describe("[pgbouncer] test server", function()
    local url = H.pgbouncer_url()

    it("speaks TLS verified against the test CA, in front of the TLS PostgreSQL", function()
      local db = sqorm.connect(url .. H.tls_query("postgres"), { pool = { max = 1 } })
      -- Inside one transaction the server connection is ours.
      local r = db:transaction(function()
        return db:query("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()")[1]
      end)
      assert.is_true(r.ssl)
      db:close()
      local bad = sqorm.connect(url .. ("?sslmode=verify-full&sslrootcert=%s"):format(getenv("SQORM_TEST_WRONG_CA")))
      H.raises_kind("connection", nil, function() bad:authenticate() end)
      bad:close()
    end)

    it("pools per transaction: a named prepared statement does not outlive its transaction", function()
      local db = sqorm.connect(url, { pool = { max = 1 } })
      local t = H.tname("bouncer")
      db:transaction(function()
        db:exec(("CREATE TABLE %s (id INT PRIMARY KEY)"):format(t))
        db:exec(("INSERT INTO %s VALUES (?)"):format(t), { 1 })
        assert.are.equal(1, count(db, t))
      end)
      -- Outside a transaction sqorm prepares a named statement, and
      -- PgBouncer hands the execute to a server session without it: the
      -- failure that pooler mode (prepare = false) avoids.
      local err = H.raises(function() db:query(("SELECT id FROM %s"):format(t)) end)
      assert.are.equal("26000", err.sqlstate)
      db:close()
      local direct = sqorm.connect(H.pg_url())
      direct:exec(("DROP TABLE %s"):format(t))
      direct:close()
    end)
  end)
end

if H.need_servers("mysql-replica") then
  describe("[mysql-replica] test server", function()
    it("replicates from the primary, can be paused, and refuses the test user's writes", function()
      local primary = sqorm.connect(H.mysql_url())
      local replica = sqorm.connect(H.mysql_replica_url())
      local t = H.tname("repl")
      primary:exec(("CREATE TABLE %s (id INT PRIMARY KEY)"):format(t))
      primary:exec(("INSERT INTO %s VALUES (1)"):format(t))
      H.test_servers("replication", "sync", "mysql")
      assert.are.equal(1, count(replica, t))

      H.test_servers("replication", "pause", "mysql")
      finally(function() H.test_servers("replication", "resume", "mysql") end)
      assert.are.equal("paused\n", H.test_servers("replication", "status", "mysql"))
      primary:exec(("INSERT INTO %s VALUES (2)"):format(t))
      assert.are.equal(2, count(primary, t))
      assert.are.equal(1, count(replica, t))
      H.test_servers("replication", "resume", "mysql")
      H.test_servers("replication", "sync", "mysql")
      assert.are.equal(2, count(replica, t))

      local err = H.raises(function() replica:exec(("INSERT INTO %s VALUES (3)"):format(t)) end)
      assert.are.equal("1290", err.code) -- --read-only
      local admin = sqorm.connect(H.mysql_admin_url("replica"))
      assert.are.equal(2, count(admin, t))
      admin:close()

      primary:exec(("DROP TABLE %s"):format(t))
      primary:close()
      replica:close()
    end)
  end)
end

if H.need_servers("postgres-standby") then
  describe("[postgres-standby] test server", function()
    it("streams from the primary, can be paused, and refuses writes with 25006", function()
      local primary = sqorm.connect(H.pg_url())
      local standby = sqorm.connect(H.pg_standby_url() .. H.tls_query("postgres"))
      local t = H.tname("standby")
      primary:exec(("CREATE TABLE %s (id INT PRIMARY KEY)"):format(t))
      primary:exec(("INSERT INTO %s VALUES (1)"):format(t))
      H.test_servers("replication", "sync", "postgres")
      assert.are.equal(1, count(standby, t))
      assert.is_true(standby:query("SELECT pg_is_in_recovery() AS r")[1].r)

      H.test_servers("replication", "pause", "postgres")
      finally(function() H.test_servers("replication", "resume", "postgres") end)
      primary:exec(("INSERT INTO %s VALUES (2)"):format(t))
      assert.are.equal(2, count(primary, t))
      assert.are.equal(1, count(standby, t))
      -- The test user is a superuser: tests may resume replay themselves.
      standby:query("SELECT pg_wal_replay_resume()")
      H.test_servers("replication", "sync", "postgres")
      assert.are.equal(2, count(standby, t))

      local err = H.raises(function() standby:exec(("INSERT INTO %s VALUES (3)"):format(t)) end)
      assert.are.equal("25006", err.sqlstate)

      primary:exec(("DROP TABLE %s"):format(t))
      primary:close()
      standby:close()
    end)
  end)
end

if H.need_servers("galera") then
  describe("[galera] test servers", function()
    it("replicate across the 3 nodes; a killed node restarts, rejoins and sees new rows", function()
      local g1 = sqorm.connect(H.galera_url(1) .. H.tls_query("mysql"))
      local g3 = sqorm.connect(H.galera_url(3))
      local t = H.tname("galera")
      g1:exec(("CREATE TABLE %s (id INT PRIMARY KEY, v VARCHAR(10))"):format(t))
      g1:exec(("INSERT INTO %s VALUES (1, 'one')"):format(t))
      -- wsrep_sync_wait = 1: a read on any node sees what was committed.
      assert.are.same({ { id = 1, v = "one" } }, g3:query(("SELECT id, v FROM %s"):format(t)))

      H.test_servers("kill", "galera2")
      g1:exec(("INSERT INTO %s VALUES (2, 'two')"):format(t))
      g3:exec(("INSERT INTO %s VALUES (3, 'three')"):format(t))
      -- Writes go on while galera2 recovers and rejoins.
      local restart = H.test_servers_bg("restart", "galera2")
      local n = 3
      repeat
        n = n + 1
        g1:exec(("INSERT INTO %s VALUES (?, 'during')"):format(t), { n })
        os.execute("sleep 0.2")
      until restart:done()
      restart:wait()
      local g2 = sqorm.connect(H.galera_url(2))
      assert.are.equal(n, count(g2, t))
      assert.are.equal("3", g2:query("SHOW STATUS LIKE 'wsrep_cluster_size'")[1].Value)
      g2:exec(("INSERT INTO %s VALUES (?, 'after')"):format(t), { n + 1 })
      assert.are.equal(n + 1, count(g1, t))

      g1:exec(("DROP TABLE %s"):format(t))
      for _, db in ipairs { g1, g2, g3 } do db:close() end
    end)
  end)
end
