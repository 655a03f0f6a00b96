-- SQLite lock conflicts on a file database (WAL), two connections:
-- a transaction that can never succeed (its snapshot is stale, or it would
-- wait for a writer that may wait for it) is kind "deadlock", is over
-- (rolled back) and can be retried; a lock still held when the busy
-- timeout runs out is kind "timeout".
local sqorm = require "sqorm"
local H = require "spec.helper"

describe("sqlite lock conflicts", function()
  local path, db1, db2

  local function n_of() return db1:query("SELECT n FROM acct WHERE id = 1")[1].n end

  before_each(function()
    path = os.tmpname()
    -- busy timeout (connect_timeout): long for db1, so a deadlock that
    -- waited for it would show, short for db2
    db1 = sqorm.connect { dialect = "sqlite", storage = path, connect_timeout = 10 }
    db2 = sqorm.connect { dialect = "sqlite", storage = path, connect_timeout = 0.2 }
    db1:exec("CREATE TABLE acct (id INTEGER PRIMARY KEY, n INTEGER NOT NULL)")
    db1:exec("INSERT INTO acct (id, n) VALUES (1, 0)")
    assert.are.equal("wal", db1:query("PRAGMA journal_mode")[1].journal_mode)
  end)

  after_each(function()
    db1:close()
    db2:close()
    for _, suffix in ipairs { "", "-wal", "-shm" } do os.remove(path .. suffix) end
  end)

  it("maps a busy snapshot (read, another commit, then write) to deadlock and ends the transaction", function()
    local err = H.raises(function()
      db1:transaction(function()
        db1:query("SELECT n FROM acct WHERE id = 1")          -- the snapshot
        db2:exec("UPDATE acct SET n = n + 1 WHERE id = 1")    -- another connection commits
        db1:exec("UPDATE acct SET n = n + 10 WHERE id = 1")   -- the stale snapshot writes
      end)
    end)
    assert.are.equal("deadlock", err.kind, tostring(err))
    assert.are.equal("SQLITE_BUSY_SNAPSHOT", err.code)
    assert.is_truthy(err.message:find("rolled back", 1, true), err.message)
    assert.are.equal(1, n_of())
    -- the transaction is over: retried, it succeeds
    db1:transaction(function()
      db1:query("SELECT n FROM acct WHERE id = 1")
      db1:exec("UPDATE acct SET n = n + 10 WHERE id = 1")
    end)
    assert.are.equal(11, n_of())
  end)

  it("maps a write after reads while another connection holds the write lock to deadlock, at once", function()
    local tx2 = db2:begin()
    db2:exec("UPDATE acct SET n = n + 1 WHERE id = 1") -- holds the write lock, uncommitted
    local t0 = os.time()
    local err = H.raises(function()
      db1:transaction(function()
        db1:query("SELECT n FROM acct WHERE id = 1")
        db1:exec("UPDATE acct SET n = n + 10 WHERE id = 1")
      end)
    end)
    assert.is_true(os.time() - t0 <= 2, "waited for the busy timeout")
    assert.are.equal("deadlock", err.kind, tostring(err))
    assert.are.equal("SQLITE_BUSY", err.code)
    tx2:commit()
    assert.are.equal(1, n_of())
  end)

  it("keeps a lock held past the busy timeout as timeout", function()
    local tx1 = db1:begin()
    db1:exec("UPDATE acct SET n = n + 1 WHERE id = 1") -- db1 holds the write lock
    -- an autocommit write on db2 waits 0.2 s, then gives up
    local err = H.raises(function() db2:exec("UPDATE acct SET n = n + 5 WHERE id = 1") end)
    assert.are.equal("timeout", err.kind, tostring(err))
    assert.are.equal("SQLITE_BUSY", err.code)
    -- a transaction whose first statement writes waits too: timeout, and
    -- the transaction is still the caller's to roll back
    err = H.raises(function()
      db2:transaction(function() db2:exec("UPDATE acct SET n = n + 5 WHERE id = 1") end)
    end)
    assert.are.equal("timeout", err.kind, tostring(err))
    tx1:commit()
    assert.are.equal(1, n_of())
    db2:exec("UPDATE acct SET n = n + 5 WHERE id = 1")
    assert.are.equal(6, n_of())
  end)
end)
