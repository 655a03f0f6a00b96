-- A Galera node killed under async load (issue 14 item 5, "64 async
-- coroutines"; the threaded C twin is tests/test_galera_load_live.c).
--
-- One Lua state, async = true: 64 coroutines (sqorm.spawn) run
-- read-modify-write transfers through three multi-host handles whose host
-- lists are rotated (node 1,2,3 / 2,3,1 / 3,1,2; pool.max 3 each):
--
--   BEGIN; SELECT balance ... FOR UPDATE; UPDATE balance = read + delta;
--   INSERT INTO ledger (txid, acct, delta); COMMIT
--
-- on 4 shared accounts (nodes conflict: Galera's certification failures
-- raise kind deadlock). Nothing is retried: each transaction commits or
-- raises to its coroutine. The main thread is the tick loop (sqorm.poll).
-- After ~2 s node 2 is SIGKILLed and restarted in the background (the
-- tick goes on meanwhile); the load stops 2 s after it is Synced again, or
-- at the latest 40 s after the start (a restart still running then is
-- waited for: the cluster must be whole for what runs next). Then, read
-- from node 1 (a survivor): 0 committed transactions lost (ledger), no
-- transaction that raised before its COMMIT applied, every balance equals
-- its ledger sum, and the three pools end healthy. The figures are
-- printed.
local sqorm = require "sqorm"
local H = require "spec.helper"

local COROUTINES, ACCOUNTS, BUDGET = 64, 4, 40

if H.need_servers("galera") then
  describe("[galera] async load with a node killed and restarted", function()
    it("commits or raises every transaction exactly once and loses no committed write", function()
      local ports = H.galera_ports()
      local user, pw, dbname = os.getenv("SQORM_TEST_GALERA_USER"), os.getenv("SQORM_TEST_GALERA_PASSWORD"),
        os.getenv("SQORM_TEST_GALERA_DB")
      local reader = sqorm.connect(H.galera_url(1))
      reader:exec("DROP TABLE IF EXISTS sq_aload_acct, sq_aload_ledger")
      reader:exec("CREATE TABLE sq_aload_acct (id INT PRIMARY KEY, balance BIGINT NOT NULL)")
      reader:exec("CREATE TABLE sq_aload_ledger (txid INT PRIMARY KEY, acct INT NOT NULL, delta INT NOT NULL)")
      for a = 1, ACCOUNTS do reader:exec("INSERT INTO sq_aload_acct VALUES (?, 0)", { a }) end

      local dbs = {}
      for i = 1, 3 do
        local hosts = {}
        for k = 0, 2 do hosts[#hosts + 1] = ("127.0.0.1:%d"):format(ports[(i + k - 1) % 3 + 1]) end
        dbs[i] = sqorm.connect(("mysql://%s:%s@%s/%s"):format(user, pw, table.concat(hosts, ","), dbname),
          { async = true, host_backoff = 2, pool = { max = 3, acquire_timeout = 60 } })
      end

      -- outcome[txid]: "committed", "raised" (before COMMIT) or "commit"
      -- (kind connection at COMMIT: the reply may be lost)
      local outcome, by_kind = {}, {}
      local next_txid, stop, committed, raised = 0, false, 0, 0
      local finished, escaped = 0, {}
      sqorm.on_error(function(err) escaped[#escaped + 1] = tostring(err) end)
      for c = 1, COROUTINES do
        sqorm.spawn(function()
          local db = dbs[c % 3 + 1]
          local seed = c * 7919 + 1
          while not stop do
            next_txid = next_txid + 1
            local txid = next_txid
            seed = (seed * 1103515245 + 12345) % 2147483648
            local acct, delta = 1 + (seed >> 16) % ACCOUNTS, 1 + (seed >> 8) % 9
            local body_done = false
            local ok, err = pcall(db.transaction, db, function()
              local b = db:query("SELECT balance FROM sq_aload_acct WHERE id = ? FOR UPDATE", { acct })[1].balance
              db:exec("UPDATE sq_aload_acct SET balance = ? WHERE id = ?", { tonumber(b) + delta, acct })
              db:exec("INSERT INTO sq_aload_ledger (txid, acct, delta) VALUES (?, ?, ?)", { txid, acct, delta })
              body_done = true
            end)
            if ok then
              outcome[txid] = "committed"
              committed = committed + 1
            else
              local kind = type(err) == "table" and err.kind or tostring(err)
              outcome[txid] = (body_done and kind == "connection") and "commit" or "raised"
              by_kind[kind] = (by_kind[kind] or 0) + 1
              raised = raised + 1
              if kind == "connection" or kind == "pool_timeout" then
                pcall(db.query, db, "SELECT 1 AS one", nil, { timeout = 5 }) -- a turn's pause
              end
            end
          end
          finished = finished + 1
        end)
      end

      local socket = require "socket"
      local t0 = socket.gettime()
      local function tick_until(cond)
        while not cond() do
          sqorm.poll(16, 0.002)
          socket.select({ { getfd = function() return sqorm.pollfd() end, dirty = function() return false end } },
            nil, 0.001)
        end
      end
      tick_until(function() return socket.gettime() - t0 >= 2 end)
      local before_kill = committed
      H.test_servers("kill", "galera2")
      -- restart in the background: the tick goes on meanwhile
      local flag = os.tmpname()
      os.remove(flag)
      local script = assert(os.getenv("SQORM_TEST_SCRIPT"))
      os.execute(("(env -u LD_PRELOAD bash '%s' restart galera2 >/dev/null 2>&1; echo $? > '%s.tmp'; mv '%s.tmp' '%s') &")
        :format(script, flag, flag, flag))
      local t_kill = socket.gettime()
      local restarted_at, at_restart
      tick_until(function()
        if not restarted_at then
          local f = io.open(flag)
          if f then
            restarted_at, at_restart = socket.gettime(), committed
            f:close()
          end
        end
        return (restarted_at and socket.gettime() - restarted_at >= 2) or socket.gettime() - t0 >= BUDGET
      end)
      local at_stop = committed
      stop = true
      tick_until(function() return finished == COROUTINES end)
      -- the restart must be over before anything else uses the cluster
      while not restarted_at do
        local f = io.open(flag)
        if f then
          restarted_at = socket.gettime()
          f:close()
        else
          socket.sleep(0.2)
        end
      end
      local f = io.open(flag)
      local restart_rc = f and f:read("l")
      if f then f:close() end
      os.remove(flag)
      sqorm.on_error(nil)

      local attempted = next_txid
      local lost, phantom, at_commit, applied_unknown = 0, 0, 0, 0
      local in_ledger = {}
      for _, r in ipairs(reader:query("SELECT txid FROM sq_aload_ledger")) do in_ledger[math.tointeger(r.txid)] = true end
      for txid = 1, attempted do
        local o = outcome[txid]
        if o == "committed" and not in_ledger[txid] then lost = lost + 1 end
        if o == "raised" and in_ledger[txid] then phantom = phantom + 1 end
        if o == "commit" then
          at_commit = at_commit + 1
          if in_ledger[txid] then applied_unknown = applied_unknown + 1 end
        end
      end
      local kinds = {}
      for k, n in pairs(by_kind) do kinds[#kinds + 1] = k .. " " .. n end
      table.sort(kinds)
      print(("\n[galera async] %d coroutines: attempted %d, committed %d, raised %d (%s), of which %d at COMMIT " ..
        "with the reply lost (%d of those applied), lost %d; node 2 back after %.1f s; commits: %d before the kill, " ..
        "%s by the restart, %d at the stop; load %.1f s"):format(COROUTINES, attempted, committed, raised,
        table.concat(kinds, ", "), at_commit, applied_unknown, lost, restarted_at - t_kill, before_kill,
        tostring(at_restart), at_stop, socket.gettime() - t0))

      assert.are.equal("0", restart_rc, "galera2 restarted")
      assert.are.equal(attempted, committed + raised)
      for txid = 1, attempted do assert(outcome[txid], "transaction " .. txid .. " never completed") end
      assert.are.same({}, escaped)
      assert.is_true(before_kill > 0, "commits before the kill")
      assert.is_true((at_restart or at_stop) > before_kill, "commits went on while the node was down")
      if at_restart then assert.is_true(at_stop > at_restart, "and after it came back") end
      assert.are.equal(0, lost)
      assert.are.equal(0, phantom)
      for _, r in ipairs(reader:query("SELECT a.id, a.balance, (SELECT COALESCE(SUM(delta), 0) FROM sq_aload_ledger l " ..
        "WHERE l.acct = a.id) AS s FROM sq_aload_acct a ORDER BY a.id")) do
        assert.are.equal(tonumber(r.s), tonumber(r.balance), "account " .. tostring(r.id))
      end
      -- every pool ends healthy
      sqorm.run(function()
        for i = 1, 3 do assert.are.equal(1, math.tointeger(dbs[i]:query("SELECT 1 AS one")[1].one)) end
      end)
      for i = 1, 3 do
        assert.are.equal(0, dbs[i]:pool_stats().in_use)
        dbs[i]:close()
      end
      reader:exec("DROP TABLE IF EXISTS sq_aload_acct, sq_aload_ledger")
      reader:close()
    end)
  end)
end
