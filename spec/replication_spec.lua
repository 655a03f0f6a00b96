-- Read replicas (issue 14 item 2, DESIGN.md "Read replicas"):
-- sqorm.connect{ replication = { write, read = { ... }, sticky, fallback } }
-- against the real MariaDB replica (binlog, read_only) and PostgreSQL
-- streaming standby of the test servers. Where a statement ran is told by
-- the server itself: @@server_id (1 the primary, 2 the replica) or
-- pg_is_in_recovery(). Model reads are shown to reach the replica with a
-- row the replica has not applied yet (replication paused with
-- `test-servers.sh replication pause`). Port 1 on 127.0.0.1 stands for a
-- dead replica (nothing listens there: connection refused).
local sqorm = require "sqorm"
local H = require "spec.helper"

local T = sqorm.types

local families = {
  { name = "mysql", family = "mysql-replica", primary = H.mysql_url, replica = H.mysql_replica_url,
    dead = function() return H.mysql_replica_url() and H.mysql_replica_url():gsub(":%d+/", ":1/") end,
    -- true when the statement ran on the replica
    on_replica_sql = "SELECT @@server_id AS r",
    is_replica = function(v) return math.tointeger(v) == 2 end },
  { name = "postgres", family = "postgres-standby", primary = H.pg_url, replica = H.pg_standby_url,
    dead = function() return H.pg_standby_url() and H.pg_standby_url():gsub(":%d+/", ":1/") end,
    on_replica_sql = "SELECT pg_is_in_recovery() AS r",
    is_replica = function(v) return v == true end },
}

for _, f in ipairs(families) do
  if H.need_servers(f.family) then
    describe("[" .. f.name .. "] read replicas", function()
      local P_URL, R_URL, DEAD = f.primary(), f.replica(), f.dead()
      local plain -- a plain connection to the primary (writes nobody's sticky)
      local tname = H.tname("rpl_players")

      local function connect(repl, opts)
        local o = { replication = repl }
        for k, v in pairs(opts or {}) do o[k] = v end
        return sqorm.connect(o)
      end

      -- true when db's next raw read (with opts) ran on the replica
      local function on_replica(db, opts)
        return f.is_replica(db:query(f.on_replica_sql, nil, opts)[1].r)
      end

      local function players(db)
        return db:define("rpl_player", {
          { "id", T.INTEGER, primary_key = true, auto_increment = true },
          { "name", T.STRING(32), unique = true },
          { "coins", T.INTEGER, allow_null = false, default = 0 },
        }, { table_name = tname, timestamps = false })
      end

      local function sync() H.test_servers("replication", "sync", f.name) end

      -- runs fn with the replica's replication paused (changes arrive, none
      -- is applied), resumed and caught up afterwards whatever fn does
      local function paused(fn)
        H.test_servers("replication", "pause", f.name)
        local ok, err = pcall(fn)
        H.test_servers("replication", "resume", f.name)
        sync()
        if not ok then error(err, 0) end
      end

      setup(function()
        plain = sqorm.connect(P_URL)
        local db = connect{ write = P_URL, read = { R_URL } }
        players(db):sync{ force = true }
        db:close()
        sync()
      end)

      teardown(function()
        if plain then
          pcall(plain.exec, plain, "DROP TABLE IF EXISTS " .. tname)
          plain:close()
        end
      end)

      it("sends raw reads to the replica, writes and use_primary = true to the primary", function()
        local db = connect{ write = P_URL, read = { R_URL } }
        assert.is_true(on_replica(db))
        assert.is_false(on_replica(db, { use_primary = true }))
        -- a write would fail on the replica (read_only / hot standby)
        local r = db:exec("INSERT INTO " .. tname .. " (name, coins) VALUES (?, ?)", { "raw-write", 1 })
        assert.are.equal(1, r.affected_rows)
        -- several statements run on the primary
        local rows = db:query(f.on_replica_sql .. "; " .. f.on_replica_sql, nil, { multi = true })
        assert.is_false(f.is_replica(rows[1].r))
        plain:exec("DELETE FROM " .. tname)
        db:close()
      end)

      it("sends ORM reads to the replica (a row it has not applied yet) and use_primary, lock, reload, " ..
         "find_or_create to the primary", function()
        local db = connect{ write = P_URL, read = { R_URL } }
        local Pl = players(db)
        plain:exec("INSERT INTO " .. tname .. " (name, coins) VALUES (?, ?)", { "old", 7 })
        sync()
        paused(function()
          -- a row present only on the replica (deleted on the primary since)
          plain:exec("DELETE FROM " .. tname .. " WHERE name = ?", { "old" })
          assert.are.equal(7, Pl:find_one{ where = { name = "old" } }.coins)
          assert.are.equal(1, #db:query("SELECT id FROM " .. tname .. " WHERE name = ?", { "old" }))
          assert.is_nil(Pl:find_one{ where = { name = "old" }, use_primary = true })
          -- a row present only on the primary
          plain:exec("INSERT INTO " .. tname .. " (name, coins) VALUES (?, ?)", { "fresh", 5 })
          local id = math.tointeger(plain:query("SELECT id FROM " .. tname .. " WHERE name = ?", { "fresh" })[1].id)
          -- the replica has not got it
          assert.are.same({}, Pl:find_all{ where = { name = "fresh" } })
          assert.is_nil(Pl:find_one{ where = { name = "fresh" } })
          assert.is_nil(Pl:find_by_pk(id))
          assert.are.equal(0, Pl:count{ where = { name = "fresh" } })
          assert.is_nil(Pl:max("coins", { where = { name = "fresh" } }))
          local n = 0
          for _ in Pl:each{ where = { name = "fresh" } } do n = n + 1 end
          assert.are.equal(0, n)
          assert.are.same({}, db:query("SELECT id FROM " .. tname .. " WHERE name = ?", { "fresh" }))
          -- the primary has
          assert.are.equal(1, #Pl:find_all{ where = { name = "fresh" }, use_primary = true })
          assert.are.equal(5, Pl:find_one{ where = { name = "fresh" }, use_primary = true }.coins)
          assert.is_not_nil(Pl:find_by_pk(id, { use_primary = true }))
          assert.are.equal(1, Pl:count{ where = { name = "fresh" }, use_primary = true })
          assert.are.equal(5, Pl:max("coins", { where = { name = "fresh" }, use_primary = true }))
          n = 0
          for _ in Pl:each{ where = { name = "fresh" }, use_primary = true } do n = n + 1 end
          assert.are.equal(1, n)
          assert.are.equal(1, #db:query("SELECT id FROM " .. tname .. " WHERE name = ?", { "fresh" },
            { use_primary = true }))
          -- a locking read
          assert.is_not_nil(Pl:find_one{ where = { name = "fresh" }, lock = "update" })
          -- reload reads the primary's row
          local p = Pl:find_by_pk(id, { use_primary = true })
          plain:exec("UPDATE " .. tname .. " SET coins = 9 WHERE id = ?", { id })
          p:reload()
          assert.are.equal(9, p.coins)
          -- find_or_create finds it on the primary (and creates nothing)
          local q, created = Pl:find_or_create{ where = { name = "fresh" } }
          assert.is_false(created)
          assert.are.equal(id, q.id)
          -- a transaction runs on the primary, its reads too
          db:transaction(function()
            assert.is_false(on_replica(db))
            assert.is_not_nil(Pl:find_by_pk(id))
          end)
        end)
        -- caught up: the replica has it now
        assert.are.equal(1, Pl:count{ where = { name = "fresh" } })
        plain:exec("DELETE FROM " .. tname)
        db:close()
      end)

      it("reads your writes from the primary for `sticky` seconds, per coroutine", function()
        local db = connect{ write = P_URL, read = { R_URL }, sticky = 2 }
        local Pl = players(db)
        paused(function()
          local co_writer = coroutine.wrap(function()
            Pl:create{ name = "mine", coins = 1 }
            -- read back at once: from the primary
            coroutine.yield(Pl:find_one{ where = { name = "mine" } } ~= nil, on_replica(db))
            os.execute("sleep 2.2")
            -- sticky has run out: from the replica, which has not got it
            coroutine.yield(Pl:find_one{ where = { name = "mine" } } ~= nil, on_replica(db))
          end)
          local found, there = co_writer()
          assert.is_true(found)
          assert.is_false(there)
          -- another coroutine that wrote nothing reads from the replica
          local other = coroutine.wrap(function()
            return Pl:find_one{ where = { name = "mine" } } ~= nil, on_replica(db)
          end)
          found, there = other()
          assert.is_false(found)
          assert.is_true(there)
          -- and the main thread, too (raw reads follow the same rule)
          assert.is_true(on_replica(db))
          found, there = co_writer()
          assert.is_false(found)
          assert.is_true(there)
          -- a raw write and a transaction's commit make the main thread sticky
          db:exec("UPDATE " .. tname .. " SET coins = 2 WHERE name = ?", { "mine" })
          assert.is_false(on_replica(db))
          os.execute("sleep 2.2")
          assert.is_true(on_replica(db))
          -- a transaction that only read is no write
          db:transaction(function() return Pl:count() end)
          assert.is_true(on_replica(db))
          db:transaction(function() Pl:update({ coins = 3 }, { where = { name = "mine" } }) end)
          assert.is_false(on_replica(db))
        end)
        -- without sticky the same read misses the write while the replica lags
        local nosticky = connect{ write = P_URL, read = { R_URL } }
        local Pn = players(nosticky)
        paused(function()
          Pn:create{ name = "lagging", coins = 1 }
          assert.is_nil(Pn:find_one{ where = { name = "lagging" } })
        end)
        plain:exec("DELETE FROM " .. tname)
        nosticky:close()
        db:close()
      end)

      it("runs transaction(fn, { read_only = true }) on the replica, where a write fails", function()
        local db = connect{ write = P_URL, read = { R_URL } }
        local Pl = players(db)
        local there = db:transaction(function() return on_replica(db) end, { read_only = true })
        assert.is_true(there)
        local err = H.raises(function()
          db:transaction(function() Pl:create{ name = "ro", coins = 1 } end, { read_only = true })
        end)
        if f.name == "postgres" then
          assert.are.equal("25006", err.sqlstate)
        else
          assert.are.equal(1290, math.tointeger(err.code))
        end
        -- db:begin takes it too
        local tx = db:begin{ read_only = true }
        assert.is_true(on_replica(db))
        tx:commit()
        -- a transaction belongs to its coroutine: others keep reading from replicas
        local co = coroutine.wrap(function()
          local t <close> = db:begin()
          assert.is_true(t:is_open())
          coroutine.yield(on_replica(db))
          coroutine.yield(on_replica(db))
        end)
        assert.is_false(co())
        assert.is_true(on_replica(db))
        assert.is_false(co())
        co()
        -- a nested one can't be read-only
        H.raises_kind("usage", "read_only", function()
          db:transaction(function() db:transaction(function() end, { read_only = true }) end)
        end)
        H.raises_kind("usage", "read_only", function() db:transaction(function() end, { read_only = 1 }) end)
        assert.are.equal(0, Pl:count{ where = { name = "ro" }, use_primary = true })
        db:close()
        if f.name == "postgres" then
          -- fallen back to the primary, it is still read-only there
          local fb = connect{ write = P_URL, read = { DEAD }, fallback = true }
          err = H.raises(function()
            fb:transaction(function()
              assert.is_false(on_replica(fb))
              fb:exec("INSERT INTO " .. tname .. " (name, coins) VALUES ('ro2', 1)")
            end, { read_only = true })
          end)
          assert.are.equal("25006", err.sqlstate)
          fb:close()
        end
      end)

      it("skips a dead replica for a while and reads from the next one", function()
        local db = connect{ write = P_URL, read = { DEAD, R_URL }, backoff = 30 }
        for _ = 1, 6 do assert.is_true(on_replica(db)) end
        local Pl = players(db)
        for _ = 1, 3 do assert.are.same({}, Pl:find_all{ where = { name = "nobody" } }) end
        local st = db:pool_stats()
        assert.is_true(st.replicas[1].down)
        assert.are.equal(1, st.replicas[1].failed)
        assert.truthy(st.replicas[1].retry_in > 20)
        assert.truthy(st.replicas[1].last_error and #st.replicas[1].last_error > 0)
        assert.falsy(st.replicas[1].last_error:find("sqorm_pw", 1, true))
        assert.is_false(st.replicas[2].down)
        assert.are.equal(9, st.replicas[2].picks)
        db:close()
        -- the first read of a handle finding the dead one: a cursor, a key
        -- lookup, a read-only transaction each go on to the live replica
        local firsts = {
          function(h)
            local n = 0
            for _ in players(h):each() do n = n + 1 end
            return n == 0
          end,
          function(h) return players(h):find_by_pk(-1) == nil end,
          function(h) return h:transaction(function() return on_replica(h) end, { read_only = true }) end,
        }
        for _, first in ipairs(firsts) do
          local h = connect{ write = P_URL, read = { DEAD, R_URL } }
          assert.is_true(first(h))
          local s = h:pool_stats()
          assert.is_true(s.replicas[1].down)
          assert.are.equal(1, s.replicas[2].picks)
          assert.are.equal(0, s.primary.created)
          h:close()
        end
      end)

      it("falls back to the primary when no replica answers, or raises with fallback = false", function()
        local db = connect{ write = P_URL, read = { DEAD }, fallback = true }
        assert.is_false(on_replica(db))
        assert.is_false(on_replica(db))
        db:close()
        db = connect{ write = P_URL, read = { DEAD }, fallback = false }
        local e1 = H.raises_kind("connection", nil, function() on_replica(db) end)
        assert.falsy(tostring(e1):find("sqorm_pw", 1, true))
        -- then it is skipped: the message names it and why
        local e2 = H.raises_kind("connection", "no read replica available (fallback is off)", function()
          players(db):find_all()
        end)
        assert.truthy(e2.message:find("replica 1 (127.0.0.1:1)", 1, true))
        assert.falsy(tostring(e2):find("sqorm_pw", 1, true))
        -- writes still go to the primary
        assert.are.equal(0, db:exec("DELETE FROM " .. tname .. " WHERE name = 'nobody'").affected_rows)
        db:close()
      end)

      it("reports pool_stats per pool, and shares a named set's pools and health", function()
        local db = connect({ write = P_URL, read = { R_URL } }, { name = "rpl_" .. f.name, pool = { max = 3 } })
        local other = connect({ write = P_URL, read = { R_URL } }, { name = "rpl_" .. f.name, pool = { max = 3 } })
        on_replica(db)
        on_replica(other, { use_primary = true })
        local st = db:pool_stats()
        assert.are.equal(3, st.max)
        assert.are.equal(3, st.primary.max)
        assert.are.equal(1, #st.replicas)
        assert.are.equal(3, st.replicas[1].max)
        assert.are.equal(1, st.replicas[1].created)
        assert.are.equal(1, st.primary.created)
        assert.are.equal(1, st.replicas[1].picks)
        assert.is_false(st.replicas[1].down)
        -- the other handle sees the same pools (one read each way so far)
        local so = other:pool_stats()
        assert.are.equal(1, so.replicas[1].picks)
        assert.are.equal(1, so.primary.created)
        -- different settings under the same name are refused
        H.raises_kind("usage", nil, function()
          connect({ write = P_URL, read = { R_URL, R_URL } }, { name = "rpl_" .. f.name })
        end)
        other:close()
        db:close()
      end)

      it("opens pool.min connections in the primary's and each replica's pool at connect; a dead replica " ..
         "does not fail it", function()
        local db = connect({ write = P_URL, read = { R_URL, DEAD } }, { pool = { max = 3, min = 2 } })
        local st = db:pool_stats()
        assert.are.same({ 2, 2, 0 }, { st.primary.created, st.primary.idle, st.primary.in_use })
        assert.are.same({ 2, 2 }, { st.replicas[1].created, st.replicas[1].idle })
        assert.are.equal(0, st.replicas[2].created)
        assert.is_true(on_replica(db)) -- the live replica serves the read from what was opened
        assert.are.equal(2, db:pool_stats().replicas[1].created)
        db:close()
        -- a primary that does not answer fails the connect
        H.raises_kind("connection", nil, function()
          connect({ write = DEAD, read = { R_URL } }, { pool = { max = 2, min = 1 } })
        end)
      end)

      it("refuses bad replication options with kind usage", function()
        H.raises_kind("usage", "unknown key 'reads'", function() connect{ write = P_URL, reads = { R_URL } } end)
        H.raises_kind("usage", "replication.read", function() connect{ write = P_URL, read = { 1 } } end)
        H.raises_kind("usage", "replication.read", function() connect{ write = P_URL, read = 5 } end)
        H.raises_kind("usage", "replication.sticky", function() connect{ write = P_URL, sticky = -1 } end)
        H.raises_kind("usage", "replication.fallback", function() connect{ write = P_URL, fallback = "yes" } end)
        H.raises_kind("usage", "needs write", function() connect{ read = { R_URL } } end)
        H.raises_kind("usage", "must be a table", function() connect("x") end)
        H.raises_kind("usage", "SQLite", function() connect{ write = "sqlite::memory:" } end)
        -- a URL given apart is the primary's
        local db = sqorm.connect(P_URL, { replication = { read = { R_URL } } })
        assert.is_true(on_replica(db))
        assert.is_false(on_replica(db, { use_primary = true }))
        db:close()
      end)
    end)
  end
end

-- Without servers: the options, and what happens when nothing answers
-- (127.0.0.1:1: connection refused).
describe("replication options", function()
  local P, R = "postgres://u:s3cret_pw@127.0.0.1:1/db", "postgres://u:s3cret_pw@127.0.0.1:1/db2"

  it("refuses bad options with kind usage, never showing a password", function()
    H.raises_kind("usage", "unknown key 'reads'", function() sqorm.connect{ replication = { write = P, reads = { R } } } end)
    H.raises_kind("usage", "replication.read[1]", function() sqorm.connect{ replication = { write = P, read = { 1 } } } end)
    H.raises_kind("usage", "replication.backoff", function()
      sqorm.connect{ replication = { write = P, read = { R }, backoff = 0 } }
    end)
    local err = H.raises_kind("usage", "replication.read[2]", function()
      sqorm.connect{ replication = { write = P, read = { R, "postgres://u:s3cret_pw@h:port/db" } } }
    end)
    assert.falsy(tostring(err):find("s3cret_pw", 1, true))
    H.raises_kind("usage", "read replica 1 is mysql", function()
      sqorm.connect{ replication = { write = P, read = { "mysql://u:p@127.0.0.1:1/db" } } }
    end)
  end)

  it("reads raise kind connection when neither a replica nor the primary answers", function()
    local db = sqorm.connect{ replication = { write = P, read = { R } } }
    local err = H.raises_kind("connection", nil, function() db:query("SELECT 1") end)
    assert.falsy(tostring(err):find("s3cret_pw", 1, true))
    local st = db:pool_stats()
    assert.is_true(st.replicas[1].down)
    assert.are.equal(0, st.size)
    assert.falsy(st.replicas[1].last_error:find("s3cret_pw", 1, true))
    db:close()
    assert.is_true(db:is_closed())
  end)
end)
