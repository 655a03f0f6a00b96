-- Async mode while the server restarts mid-load: every op completes
-- exactly once (its result, or an error such as kind connection - never
-- a coroutine left waiting, never a second resume), statements in flight
-- when the server goes away included; afterwards the db works again and
-- no connection is left in use. MariaDB and PostgreSQL (the test
-- servers' `mysql` and `postgres` instances, restarted by
-- scripts/test-servers.sh).
local sqorm = require "sqorm"
local H = require "spec.helper"

for _, d in ipairs(H.dialects()) do
  if d.name ~= "sqlite" then
    describe("async restart [" .. d.name .. "]", function()
      it("completes every op exactly once across a server restart", function()
        if not os.getenv("SQORM_TEST_SCRIPT") then
          if os.getenv("SQORM_TEST_REQUIRE_SERVERS") == "1" then error("SQORM_TEST_SCRIPT is not set") end
          return
        end
        local db = sqorm.connect(d.url, { async = true, pool = { max = 4, acquire_timeout = 60 }, timeout = 30 })
        local slow = d.name == "postgres" and "SELECT pg_sleep(0.3) AS s" or "SELECT SLEEP(0.3) AS s"
        local N = 20
        local issued, returned, ok_after, errors = {}, {}, {}, {}
        local restarted = false
        for c = 1, N do
          issued[c], returned[c], ok_after[c] = 0, 0, 0
          sqorm.spawn(function()
            while not restarted or ok_after[c] < 3 do
              issued[c] = issued[c] + 1
              local ok, e
              if c % 3 == 0 then ok, e = pcall(db.query, db, slow)
              else ok, e = pcall(db.query, db, "SELECT ? AS v", { c }) end
              returned[c] = returned[c] + 1
              if ok and restarted then ok_after[c] = ok_after[c] + 1 end
              if not ok then errors[e.kind] = (errors[e.kind] or 0) + 1 end
            end
          end)
        end
        local seen_errors
        sqorm.on_error(function(e) seen_errors = tostring(e) end)
        -- some load first, then the restart while it keeps going
        local t0 = os.time()
        while os.time() - t0 < 1 do sqorm.poll() end
        local h = H.test_servers_bg("restart", d.name)
        while not h:done() do sqorm.poll() end
        h:wait()
        restarted = true
        local t1 = os.time()
        while sqorm.pending() > 0 do
          sqorm.poll()
          assert(os.time() - t1 < 120, "ops still pending 120 s after the restart")
        end
        sqorm.on_error(nil)
        assert.is_nil(seen_errors)
        for c = 1, N do
          assert.are.equal(issued[c], returned[c], "coroutine " .. c)
          assert.is_true(ok_after[c] >= 3)
        end
        assert.is_truthy(next(errors), "the restart failed no op")
        local total, kinds = 0, {}
        for c = 1, N do total = total + issued[c] end
        for k, n in pairs(errors) do kinds[#kinds + 1] = k .. " " .. n end
        table.sort(kinds)
        print(("\n[%s] %d ops, each completed once; errors: %s"):format(d.name, total, table.concat(kinds, ", ")))
        assert.are.equal(0, db:pool_stats().in_use)
        local v
        sqorm.spawn(function() v = db:query("SELECT 1 AS one")[1].one end)
        while sqorm.pending() > 0 do sqorm.poll() end
        assert.are.equal(1, tonumber(v))
        db:close()
      end)
    end)
  end
end
