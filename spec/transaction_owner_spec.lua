-- A transaction is one object that owns its connection, its savepoints and
-- the cursors opened on it (issue 9, item 14): a cursor or savepoint never
-- outlives it, finalisers run no SQL, and only the coroutine that opened a
-- transaction may end it.
local sqorm = require "sqorm"
local H = require "spec.helper"
local T = sqorm.types

-- SQLite in memory is one connection; the specs that need two concurrent
-- transactions use a file instead.
local function url_for(d, two_conns)
  if d.name ~= "sqlite" or not two_conns then return d.url end
  local path = os.tmpname()
  return "sqlite:" .. path, path
end

H.each_dialect(describe, function(d)
  local db, t, P, path, log

  local function setup_db(two_conns, opts)
    local url
    url, path = url_for(d, two_conns)
    log = {}
    local o = { pool = { max = two_conns and 2 or 1, acquire_timeout = 5 },
                logging = function(m) log[#log + 1] = m end }
    for k, v in pairs(opts or {}) do o[k] = v end
    db = sqorm.connect(url, o)
    t = H.tname("txo")
    db:exec(("CREATE TABLE %s (id INTEGER PRIMARY KEY, coins INTEGER)"):format(t))
    db:exec(("INSERT INTO %s VALUES (1, 100), (2, 100), (3, 100)"):format(t))
    P = db:define("player", {
      { "id", T.INTEGER, primary_key = true, auto_increment = true },
      { "coins", T.INTEGER },
    }, { table_name = H.tname("txo_players"), timestamps = false })
    P:sync{ force = true }
    local recs = {}
    for i = 1, 100 do recs[i] = { coins = i } end
    P:bulk_create(recs)
  end

  after_each(function()
    if db and not db:is_closed() then
      pcall(db.exec, db, "DROP TABLE " .. t)
      pcall(P.drop, P)
      db:close()
    end
    db = nil
    collectgarbage()
    if path then os.remove(path) end
    path = nil
  end)

  local function coins(id)
    return db:query(("SELECT coins FROM %s WHERE id = ?"):format(t), { id })[1].coins
  end

  local function set(id, v)
    db:exec(("UPDATE %s SET coins = ? WHERE id = ?"):format(t), { v, id })
  end

  local function logged(pattern)
    for _, m in ipairs(log) do
      if m:find(pattern) then return true end
    end
    return false
  end

  describe("cursors", function()
    it("a cursor opened in a transaction is closed when it commits (more rows than a batch)", function()
      setup_db(false)
      local tx = db:begin()
      local n = 0
      local err = H.raises(function()
        for p in P:each{ order = { "id" } } do
          n = n + 1
          assert.are.equal(n, p.id)
          if n == 1 then tx:commit() end
        end
      end)
      assert.are.equal("closed", err.kind)
      assert.matches("transaction", err.message)
      assert.matches("committed", err.message)
      assert.are.equal(1, n) -- the rows buffered before the commit are not handed out
      assert.are.equal(0, db:pool_stats().in_use)
      assert.are.equal(100, P:count())
    end)

    it("a cursor closed by its transaction fails cleanly after the connection is gone", function()
      setup_db(false)
      local tx = db:begin()
      local iter, _, _, cur = P:each{ order = { "id" } }
      assert.are.equal(1, iter().id)
      tx:rollback()
      db:close() -- closes the idle connections: the cursor must not touch them
      -- (past the rows already fetched, a cursor still pointing at the
      -- freed connection would read it)
      local calls, ok, err = 0, true, nil
      while ok and calls < 40 do
        calls = calls + 1
        ok, err = pcall(iter)
      end
      assert.is_false(ok)
      assert.are.equal(1, calls)
      assert.is_true(sqorm.is_error(err), tostring(err))
      assert.are.equal("closed", err.kind)
      assert.matches("rolled back", err.message)
      cur:close() -- idempotent
    end)

    it("each inside a transaction streams more than one batch on the transaction's connection", function()
      setup_db(false)
      db:transaction(function()
        P:create{ coins = 1000 }
        local n, sum = 0, 0
        for p in P:each{ order = { "id" } } do
          n = n + 1
          sum = sum + p.coins
          assert.are.equal(1, db:pool_stats().in_use)
        end
        assert.are.equal(101, n)
        assert.are.equal(5050 + 1000, sum)
      end)
      assert.are.equal(101, P:count())
      assert.are.equal(0, db:pool_stats().in_use)
    end)

    it("a cursor abandoned inside a transaction is closed at the transaction's next statement", function()
      setup_db(false)
      db:transaction(function()
        do
          local iter = P:each{ order = { "id" } }
          assert.are.equal(1, iter().id)
        end
        collectgarbage()
        collectgarbage()
        assert.are.equal(100, P:count())
      end)
      assert.are.equal(0, db:pool_stats().in_use)
    end)
  end)

  describe("savepoints", function()
    it("a savepoint used after its root finished raises closed", function()
      setup_db(false)
      local tx = db:begin()
      local sp = db:begin()
      set(1, 5)
      assert.is_true(sp:is_open())
      -- a commit with a savepoint still open inside is refused, changing nothing
      H.raises_kind("usage", "savepoint", function() tx:commit() end)
      assert.is_true(sp:is_open())
      tx:rollback()
      assert.is_false(sp:is_open())
      db:close() -- the connection is freed: the savepoint must not reach for it
      H.raises_kind("closed", "transaction", function() sp:commit() end)
      H.raises_kind("closed", "transaction", function() sp:rollback() end)
    end)

    it("a savepoint ended by its parent raises closed, its work follows the parent", function()
      setup_db(false)
      db:transaction(function()
        local sp1 = db:begin()
        set(1, 1)
        local sp2 = db:begin()
        set(2, 2)
        sp1:rollback() -- ends sp2 too
        assert.is_false(sp2:is_open())
        H.raises_kind("closed", "savepoint", function() sp2:commit() end)
        set(3, 3)
      end)
      assert.are.equal(100, coins(1))
      assert.are.equal(100, coins(2))
      assert.are.equal(3, coins(3))
    end)

    it("a dropped savepoint never undoes later work, and its parent refuses to commit", function()
      setup_db(false)
      local err = H.raises_kind("usage", "dropped without commit or rollback", db.transaction, db, function()
        do
          local sp = db:begin() -- luacheck: ignore (dropped without commit or rollback)
          set(1, 1)
        end
        set(2, 2) -- the outer transaction's later work
        collectgarbage()
        collectgarbage() -- the savepoint's finaliser runs here: it must run no SQL
        set(3, 3)
        assert.are.equal(2, coins(2)) -- not undone by the finaliser
      end)
      assert.truthy(err.message:find("roll back", 1, true))
      assert.is_false(logged("ROLLBACK TO"))
      -- nobody can say whether the dropped savepoint's work should be kept:
      -- the commit was refused and db:transaction rolled everything back
      assert.are.equal(100, coins(1))
      assert.are.equal(100, coins(2))
      assert.are.equal(100, coins(3))
    end)

    it("releasing a savepoint with an inner one still open is refused", function()
      setup_db(false)
      db:transaction(function()
        local sp1 = db:begin()
        local sp2 = db:begin()
        set(1, 1)
        H.raises_kind("usage", "savepoint", function() sp1:commit() end)
        assert.is_true(sp2:is_open())
        sp2:commit()
        sp1:commit()
      end)
      assert.are.equal(1, coins(1))
    end)

    it("a dropped savepoint's work is undone when its parent rolls back", function()
      setup_db(false)
      local ok = pcall(db.transaction, db, function()
        do
          local sp = db:begin() -- luacheck: ignore
          set(1, 1)
        end
        collectgarbage()
        collectgarbage()
        set(2, 2)
        error("boom")
      end)
      assert.is_false(ok)
      assert.are.equal(100, coins(1))
      assert.are.equal(100, coins(2))
    end)

    it("a savepoint closed with <close> rolls back at once", function()
      setup_db(false)
      db:transaction(function()
        do
          local sp <close> = db:begin()
          set(1, 1)
        end
        set(2, 2)
      end)
      assert.are.equal(100, coins(1))
      assert.are.equal(2, coins(2))
    end)
  end)

  describe("coroutines", function()
    it("only the owning coroutine may commit or roll back; others can't disturb their own", function()
      setup_db(true)
      local txA = db:begin() -- owned by the main thread
      assert.are.equal(1, db:query("SELECT 1 AS one")[1].one)
      local co = coroutine.create(function()
        return db:transaction(function()
          set(2, 7) -- in this coroutine's own transaction
          local e1 = H.raises_kind("usage", "coroutine", function() txA:commit() end)
          local e2 = H.raises_kind("usage", "coroutine", function() txA:rollback() end)
          set(3, 8) -- still in this coroutine's own transaction
          assert.are.equal(2, db:pool_stats().in_use)
          return e1.message .. e2.message
        end)
      end)
      local ok, msg = coroutine.resume(co)
      assert.is_true(ok, tostring(msg))
      assert.is_true(txA:is_open())
      txA:commit()
      assert.are.equal(7, coins(2))
      assert.are.equal(8, coins(3))
      assert.are.equal(0, db:pool_stats().in_use)
    end)

    it("a transaction whose coroutine finished can be ended by anyone", function()
      setup_db(false)
      local tx = coroutine.wrap(function()
        local tx = db:begin()
        set(1, 9)
        return tx
      end)()
      tx:commit()
      assert.are.equal(9, coins(1))
      assert.are.equal(0, db:pool_stats().in_use)
    end)

    it("an abandoned coroutine's transaction gives its connection back, rolled back before it is lent again", function()
      setup_db(false)
      local co = coroutine.create(function()
        db:transaction(function()
          set(1, 0)
          coroutine.yield()
        end)
      end)
      coroutine.resume(co)
      assert.are.equal(1, db:pool_stats().in_use)
      local before = #log
      co = nil -- luacheck: ignore
      collectgarbage()
      collectgarbage()
      assert.are.equal(before, #log)
      assert.are.equal(0, db:pool_stats().in_use)
      assert.are.equal(100, coins(1)) -- rolled back before the connection was lent again
    end)

    it("a coroutine closed inside db:transaction gives its connection back at once, rolled back", function()
      setup_db(false)
      local co = coroutine.create(function()
        db:transaction(function()
          set(1, 0)
          db:transaction(function() -- a savepoint: its root goes with it
            set(2, 0)
            coroutine.yield()
          end)
        end)
      end)
      assert(coroutine.resume(co))
      assert.are.equal(1, db:pool_stats().in_use)
      assert.is_true(coroutine.close(co))
      -- co is still referenced: this is not the collector
      assert.are.equal(0, db:pool_stats().in_use)
      assert.are.equal(100, coins(1)) -- rolled back before the connection was lent again
      assert.are.equal(100, coins(2))
      db:transaction(function() set(3, 1) end)
      assert.are.equal(1, coins(3))
      assert.are.equal(0, db:pool_stats().in_use)
      assert.are.equal("dead", coroutine.status(co))
    end)

    it("a db:transaction whose fn returned or raised leaves nothing to end when its coroutine is closed", function()
      setup_db(false)
      local co = coroutine.create(function()
        local ok = pcall(db.transaction, db, function() set(1, 5) error("no") end)
        assert(not ok)
        assert.are.same({ 7, 8 }, { db:transaction(function() set(2, 6) return 7, 8 end) })
        coroutine.yield()
      end)
      assert(coroutine.resume(co))
      assert.is_true(coroutine.close(co))
      assert.are.equal(100, coins(1))
      assert.are.equal(6, coins(2))
      assert.are.equal(0, db:pool_stats().in_use)
    end)
  end)

  describe("options", function()
    it("db:transaction and db:begin refuse unknown options", function()
      setup_db(false)
      H.raises_kind("usage", "isolaton", function()
        db:transaction(function() end, { isolaton = "serializable" })
      end)
      H.raises_kind("usage", "isolaton", function() db:begin{ isolaton = "serializable" } end)
      H.raises_kind("usage", "must be a table", function() db:begin(42) end)
      assert.are.equal(0, db:pool_stats().in_use)
    end)
  end)
end)
