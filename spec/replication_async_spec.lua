-- Read replicas in async mode (issue 14 item 2 "works in async mode";
-- DESIGN.md "Read replicas" and "Async"): the routing of
-- spec/replication_spec.lua, with async = true and every call made from
-- coroutines started by sqorm.spawn / sqorm.run, so each statement runs
-- on a worker thread while its coroutine waits. Where a statement ran is
-- told by the server itself: @@server_id (2 on the MariaDB replica) or
-- pg_is_in_recovery(). Against the real MariaDB replica and PostgreSQL
-- standby of the test servers; port 1 on 127.0.0.1 is a dead replica.
local sqorm = require "sqorm"
local H = require "spec.helper"

local T = sqorm.types

local families = {
  { name = "mysql", family = "mysql-replica", primary = H.mysql_url, replica = H.mysql_replica_url,
    on_replica_sql = "SELECT @@server_id AS r",
    is_replica = function(v) return math.tointeger(v) == 2 end },
  { name = "postgres", family = "postgres-standby", primary = H.pg_url, replica = H.pg_standby_url,
    on_replica_sql = "SELECT pg_is_in_recovery() AS r",
    is_replica = function(v) return v == true end },
}

-- Polls until nothing is pending (the main thread's tick loop).
local function drain()
  local t0 = os.time()
  while sqorm.pending() > 0 do
    sqorm.poll()
    assert(os.time() - t0 < 60, "async calls still pending after 60 s")
  end
end

for _, f in ipairs(families) do
  if H.need_servers(f.family) then
    describe("[" .. f.name .. "] read replicas in async mode", function()
      local P_URL, R_URL = f.primary(), f.replica()
      local DEAD = R_URL and R_URL:gsub(":%d+/", ":1/")
      local plain -- a blocking connection to the primary
      local tname = H.tname("rpla_players")

      local function connect(repl, opts)
        local o = { replication = repl, async = true, pool = { max = 4 } }
        for k, v in pairs(opts or {}) do o[k] = v end
        return sqorm.connect(o)
      end

      -- true when db's next raw read (with opts) ran on the replica
      local function on_replica(db, opts)
        return f.is_replica(db:query(f.on_replica_sql, nil, opts)[1].r)
      end

      local function players(db)
        return db:define("rpla_player", {
          { "id", T.INTEGER, primary_key = true, auto_increment = true },
          { "name", T.STRING(32), unique = true },
          { "coins", T.INTEGER, allow_null = false, default = 0 },
        }, { table_name = tname, timestamps = false })
      end

      local function sync() H.test_servers("replication", "sync", f.name) end

      -- fn with the replica's replication paused, resumed and caught up after
      local function paused(fn)
        H.test_servers("replication", "pause", f.name)
        local ok, err = pcall(fn)
        H.test_servers("replication", "resume", f.name)
        sync()
        if not ok then error(err, 0) end
      end

      setup(function()
        plain = sqorm.connect(P_URL)
        players(plain):sync{ force = true }
        sync()
      end)

      before_each(function()
        sqorm.on_error(nil)
        sqorm.scheduler(nil)
      end)

      teardown(function()
        if plain then
          pcall(plain.exec, plain, "DROP TABLE IF EXISTS " .. tname)
          plain:close()
        end
      end)

      it("sends reads to the replica (a row only it has) and writes, use_primary, locks to the primary", function()
        local db = connect{ write = P_URL, read = { R_URL } }
        local Pl = players(db)
        plain:exec("INSERT INTO " .. tname .. " (name, coins) VALUES (?, ?)", { "old", 7 })
        sync()
        paused(function()
          plain:exec("DELETE FROM " .. tname .. " WHERE name = ?", { "old" })
          local got = sqorm.run(function()
            local r = {}
            r.raw = on_replica(db)
            r.raw_primary = on_replica(db, { use_primary = true })
            r.old = Pl:find_one{ where = { name = "old" } }          -- only on the replica
            r.old_primary = Pl:find_one{ where = { name = "old" }, use_primary = true }
            r.insert = db:exec("INSERT INTO " .. tname .. " (name, coins) VALUES (?, ?)", { "w", 1 }).affected_rows
            r.created = Pl:create{ name = "w2", coins = 2 }
            r.locked = Pl:find_one{ where = { name = "w2" }, lock = "update" }
            return r
          end)
          assert.is_true(got.raw)
          assert.is_false(got.raw_primary)
          assert.are.equal(7, got.old.coins)
          assert.is_nil(got.old_primary)
          assert.are.equal(1, got.insert)
          assert.is_not_nil(got.created.id)
          assert.are.equal(2, got.locked.coins)                    -- read on the primary
          -- the writes are on the primary (the replica is paused)
          assert.are.equal(2, #plain:query("SELECT id FROM " .. tname .. " WHERE name IN ('w', 'w2')"))
        end)
        plain:exec("DELETE FROM " .. tname)
        db:close()
      end)

      it("reads your writes per coroutine: the one that wrote reads the primary, another the replica", function()
        local db = connect{ write = P_URL, read = { R_URL }, sticky = 300 }
        local Pl = players(db)
        paused(function()
          local wrote, writer, reader = false, {}, {}
          sqorm.spawn(function()
            writer.before = on_replica(db)
            Pl:create{ name = "mine", coins = 1 }
            wrote = true
            writer.found = Pl:find_one{ where = { name = "mine" } } ~= nil
            writer.after = on_replica(db)
            writer.tx = db:transaction(function() return on_replica(db) end)
          end)
          sqorm.spawn(function()
            -- runs beside the writer: one read per turn until it wrote
            local n = 0
            while not wrote do
              reader.early = on_replica(db)
              n = n + 1
              assert(n < 100000)
            end
            reader.found = Pl:find_one{ where = { name = "mine" } } ~= nil
            reader.after = on_replica(db)
          end)
          drain()
          assert.is_true(writer.before)
          assert.is_true(writer.found)       -- from the primary
          assert.is_false(writer.after)
          assert.is_false(writer.tx)
          assert.is_true(reader.early == nil or reader.early)
          assert.is_false(reader.found)      -- from the lagging replica
          assert.is_true(reader.after)
          -- a fresh coroutine wrote nothing either
          assert.is_true(sqorm.run(function() return on_replica(db) end))
        end)
        plain:exec("DELETE FROM " .. tname)
        db:close()
      end)

      it("runs transactions on the primary, read_only ones on the replica, each on one backend", function()
        local db = connect{ write = P_URL, read = { R_URL } }
        local Pl = players(db)
        local backend = f.name == "postgres" and "SELECT pg_backend_pid() AS b" or "SELECT CONNECTION_ID() AS b"
        local results = {}
        for i = 1, 6 do
          sqorm.spawn(function()
            local r = {}
            r.tx_there, r.b1, r.b2 = db:transaction(function()
              local there = on_replica(db)
              local b1 = db:query(backend)[1].b
              Pl:create{ name = "tx" .. i, coins = i }
              return there, b1, db:query(backend)[1].b
            end)
            r.ro_there = db:transaction(function() return on_replica(db) end, { read_only = true })
            r.ro_err = select(2, pcall(db.transaction, db, function()
              Pl:create{ name = "ro" .. i, coins = 1 }
            end, { read_only = true }))
            results[i] = r
          end)
        end
        drain()
        for i = 1, 6 do
          local r = results[i]
          assert.is_false(r.tx_there)
          assert.are.equal(tostring(r.b1), tostring(r.b2))
          assert.is_true(r.ro_there)
          if f.name == "postgres" then
            assert.are.equal("25006", r.ro_err.sqlstate)
          else
            assert.are.equal(1290, math.tointeger(r.ro_err.code))
          end
        end
        assert.are.equal(6, math.tointeger(plain:query("SELECT COUNT(*) AS n FROM " .. tname ..
          " WHERE name LIKE 'tx%'")[1].n))
        assert.are.equal(0, math.tointeger(plain:query("SELECT COUNT(*) AS n FROM " .. tname ..
          " WHERE name LIKE 'ro%'")[1].n))
        assert.are.equal(0, db:pool_stats().in_use)
        plain:exec("DELETE FROM " .. tname)
        db:close()
      end)

      it("skips a dead replica under concurrent reads, falls back, or raises at the call site", function()
        local db = connect{ write = P_URL, read = { DEAD, R_URL }, backoff = 30 }
        local Pl = players(db)
        local there, n = {}, 20
        for i = 1, n do
          sqorm.spawn(function()
            there[i] = on_replica(db) and #Pl:find_all{ where = { name = "nobody" } } == 0
                       and Pl:find_by_pk(-1) == nil
          end)
        end
        drain()
        for i = 1, n do assert.is_true(there[i], "coroutine " .. i) end
        local st = db:pool_stats()
        assert.is_true(st.replicas[1].down)
        assert.is_false(st.replicas[2].down)
        assert.are.equal(3 * n, st.replicas[2].picks)
        assert.are.equal(0, st.primary.created)
        db:close()
        -- no replica answers: the primary (fallback), or kind connection
        -- raised in the coroutine that called
        local fb = connect{ write = P_URL, read = { DEAD }, fallback = true }
        assert.is_false(sqorm.run(function() return on_replica(fb) end))
        fb:close()
        local nofb = connect{ write = P_URL, read = { DEAD }, fallback = false }
        local errs = {}
        for i = 1, 3 do
          sqorm.spawn(function()
            local ok, e = pcall(on_replica, nofb)
            errs[i] = not ok and e or false
            -- writes still go to the primary
            errs[i .. "w"] = nofb:exec("DELETE FROM " .. tname .. " WHERE name = 'nobody'").affected_rows
          end)
        end
        drain()
        for i = 1, 3 do
          assert.are.equal("connection", errs[i] and errs[i].kind)
          assert.falsy(tostring(errs[i]):find("sqorm_pw", 1, true))
          assert.are.equal(0, errs[i .. "w"])
        end
        nofb:close()
      end)

      it("refuses a call from the main thread with usage naming sqorm.spawn", function()
        local db = connect{ write = P_URL, read = { R_URL } }
        H.raises_kind("usage", "sqorm.spawn", function() on_replica(db) end)
        db:close()
        local auto = connect({ write = P_URL, read = { R_URL } }, { async = "auto" })
        assert.is_true(on_replica(auto))    -- blocks there instead
        assert.is_true(sqorm.run(function() return on_replica(auto) end))
        auto:close()
      end)
    end)
  end
end
