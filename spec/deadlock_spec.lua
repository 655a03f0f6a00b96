-- Kind deadlock: the server ended the transaction (a deadlock, a
-- serialization failure, a TiDB write conflict). The transaction is over:
-- later statements, savepoints and commit raise kind deadlock again (they
-- must not run in autocommit mode), rollback succeeds and clears it. A
-- lock-wait timeout is kind timeout.
--
-- A real deadlock needs two transactions that both wait, so the other
-- side runs in a child lua5.4 (a blocked call blocks its whole process):
-- this process (A) locks row 1, the child (B) locks rows 2..20, A asks
-- for row 2 and waits, B sees A waiting and asks for row 1, closing the
-- cycle. A is the victim on both servers: InnoDB rolls back the lighter
-- transaction (A changed one row, B nineteen), and PostgreSQL's check
-- runs first in the session that waited first (A).
local sqorm = require "sqorm"
local H = require "spec.helper"

local ROWS = 20

-- The child's side, run as: DL_URL=url DL_TABLE=table DL_DIALECT=dialect lua5.4 -e <CHILD>
local CHILD = [[
local sqorm = require "sqorm"
local url, t, dialect = os.getenv("DL_URL"), os.getenv("DL_TABLE"), os.getenv("DL_DIALECT")
local db, probe = sqorm.connect(url), sqorm.connect(url)
local tx = db:begin()
if dialect == "mysql" then db:exec("SET SESSION innodb_lock_wait_timeout = 20")
else db:exec("SET LOCAL lock_timeout = '20s'") end
db:exec("UPDATE " .. t .. " SET v = v + 1 WHERE id >= 2")
print("ready") io.stdout:flush()
local waiting = dialect == "mysql"
  and "SELECT COUNT(*) AS n FROM information_schema.INNODB_TRX WHERE trx_state = 'LOCK WAIT'"
  or "SELECT count(*) AS n FROM pg_locks WHERE NOT granted"
local nap = dialect == "mysql" and "DO SLEEP(0.05)" or "SELECT pg_sleep(0.05)"
for _ = 1, 200 do
  if tonumber(probe:query(waiting)[1].n) > 0 then break end
  probe:exec(nap)
end
db:exec("UPDATE " .. t .. " SET v = v + 10 WHERE id = 1")
tx:commit()
print("done")
]]

local function spawn(url, t, dialect)
  local cmd = ("DL_URL='%s' DL_TABLE='%s' DL_DIALECT='%s' lua5.4 -e '%s' 2>&1"):format(url, t, dialect,
    (CHILD:gsub("'", "'\\''")))
  return io.popen(cmd, "r")
end

local function finish(p)
  local out = p:read("a")
  p:close()
  return out
end

local server_dialects = {}
for _, d in ipairs(H.dialects()) do
  if d.name ~= "sqlite" then server_dialects[#server_dialects + 1] = d end
end

for _, d in ipairs(server_dialects) do
  describe("[" .. d.name .. "] deadlock", function()
    local db, t

    before_each(function()
      db = sqorm.connect(d.url)
      t = H.tname("dl")
      db:exec("CREATE TABLE " .. t .. " (id INTEGER PRIMARY KEY, v INTEGER NOT NULL)")
      for i = 1, ROWS do db:exec("INSERT INTO " .. t .. " (id, v) VALUES (?, 0)", { i }) end
    end)

    after_each(function()
      db:exec("DROP TABLE " .. t)
      db:close()
    end)

    local function v(id) return tonumber(db:query("SELECT v FROM " .. t .. " WHERE id = ?", { id })[1].v) end

    -- A's side up to the deadlock: returns the error, the open Tx and the child.
    local function deadlock()
      local tx = db:begin()
      if d.name == "mysql" then db:exec("SET SESSION innodb_lock_wait_timeout = 20")
      else db:exec("SET LOCAL lock_timeout = '20s'") end
      db:exec("UPDATE " .. t .. " SET v = v + 100 WHERE id = 1")
      local child = spawn(d.url, t, d.name)
      assert.are.equal("ready", child:read("l"))
      local err = H.raises_kind("deadlock", nil, function()
        db:exec("UPDATE " .. t .. " SET v = v + 100 WHERE id = 2")
      end)
      return err, tx, child
    end

    it("raises kind deadlock, and the transaction stays over until rollback", function()
      local err, tx, child = deadlock()
      assert.is_truthy(err.code == "1213" or err.code == "40P01", err.code)
      -- the server rolled A back: the child got its lock and committed
      assert.are.equal("done\n", finish(child))
      -- a later statement of the transaction must not autocommit
      H.raises_kind("deadlock", "rolled back", function()
        db:exec("UPDATE " .. t .. " SET v = 5 WHERE id = 3")
      end)
      H.raises_kind("deadlock", nil, function() db:query("SELECT v FROM " .. t .. " WHERE id = 3") end)
      -- nor may a nested transaction (savepoint) revive it
      H.raises_kind("deadlock", nil, function() db:begin() end)
      -- the server ended it (is_open says so), but it stays this
      -- coroutine's transaction until rolled back, so nothing autocommits
      assert.is_false(tx:is_open())
      tx:rollback()
      assert.is_false(tx:is_open())
      assert.are.equal(10, v(1))  -- B's change; A's +100 is gone
      assert.are.equal(1, v(3))   -- B's +1; A's "= 5" never ran
      -- the connection is healthy again
      db:transaction(function() db:exec("UPDATE " .. t .. " SET v = 42 WHERE id = 4") end)
      assert.are.equal(42, v(4))
    end)

    it("commit after a deadlock raises instead of succeeding", function()
      local _, tx, child = deadlock()
      assert.are.equal("done\n", finish(child))
      H.raises_kind("deadlock", "rolled back", function() tx:commit() end)
      assert.is_false(tx:is_open())
      assert.are.equal(10, v(1))
      -- the pool got the connection back clean
      db:exec("UPDATE " .. t .. " SET v = 7 WHERE id = 5")
      assert.are.equal(7, v(5))
    end)

    it("db:transaction re-raises kind deadlock and rolls back", function()
      local child
      local err = H.raises(function()
        db:transaction(function()
          if d.name == "mysql" then db:exec("SET SESSION innodb_lock_wait_timeout = 20")
          else db:exec("SET LOCAL lock_timeout = '20s'") end
          db:exec("UPDATE " .. t .. " SET v = v + 100 WHERE id = 1")
          child = spawn(d.url, t, d.name)
          assert.are.equal("ready", child:read("l"))
          db:exec("UPDATE " .. t .. " SET v = v + 100 WHERE id = 2")
        end)
      end)
      assert.are.equal("done\n", finish(child))
      assert.are.equal("deadlock", err.kind)
      assert.are.equal(10, v(1))
    end)
  end)

  describe("[" .. d.name .. "] lock wait timeout", function()
    local db, db2, t

    before_each(function()
      db, db2 = sqorm.connect(d.url), sqorm.connect(d.url)
      t = H.tname("lw")
      db:exec("CREATE TABLE " .. t .. " (id INTEGER PRIMARY KEY, v INTEGER NOT NULL)")
      db:exec("INSERT INTO " .. t .. " (id, v) VALUES (1, 0), (2, 0)")
    end)

    after_each(function()
      db:exec("DROP TABLE " .. t)
      db:close()
      db2:close()
    end)

    it("is kind timeout", function()
      local holder = db2:begin()
      db2:exec("UPDATE " .. t .. " SET v = 1 WHERE id = 1")
      local tx = db:begin()
      if d.name == "mysql" then db:exec("SET SESSION innodb_lock_wait_timeout = 1")
      else db:exec("SET LOCAL lock_timeout = '1s'") end
      local err = H.raises_kind("timeout", nil, function() db:exec("UPDATE " .. t .. " SET v = 2 WHERE id = 1") end)
      assert.is_truthy(err.code == "1205" or err.code == "55P03", err.code)
      if d.name == "mysql" then
        -- InnoDB (innodb_rollback_on_timeout off) rolled back the statement
        -- only: the transaction goes on, as the server's status says
        db:exec("UPDATE " .. t .. " SET v = 3 WHERE id = 2")
        tx:commit()
        assert.are.equal(3, tonumber(db:query("SELECT v FROM " .. t .. " WHERE id = 2")[1].v))
      else
        -- PostgreSQL aborted the transaction: commit must not report success
        H.raises_kind("database", nil, function() db:exec("UPDATE " .. t .. " SET v = 3 WHERE id = 2") end)
        local cerr = H.raises(function() tx:commit() end)
        assert.are.equal("25P02", cerr.code)
        assert.are.equal(0, tonumber(db:query("SELECT v FROM " .. t .. " WHERE id = 2")[1].v))
      end
      holder:rollback()
    end)
  end)
end

describe("[postgres] serialization failure", function()
  local d
  for _, x in ipairs(server_dialects) do if x.name == "postgres" then d = x end end
  if not d then return end

  it("is kind deadlock and ends the transaction", function()
    local db, db2 = sqorm.connect(d.url), sqorm.connect(d.url)
    local t = H.tname("sf")
    db:exec("CREATE TABLE " .. t .. " (id INTEGER PRIMARY KEY, v INTEGER NOT NULL)")
    db:exec("INSERT INTO " .. t .. " (id, v) VALUES (1, 0), (2, 0)")
    local tx = db:begin { isolation = "repeatable_read" }
    db:query("SELECT v FROM " .. t .. " WHERE id = 1") -- takes the snapshot
    db2:exec("UPDATE " .. t .. " SET v = 1 WHERE id = 1")
    local err = H.raises_kind("deadlock", nil, function() db:exec("UPDATE " .. t .. " SET v = 2 WHERE id = 1") end)
    assert.are.equal("40001", err.code)
    H.raises_kind("deadlock", "serialization failure", function() db:exec("UPDATE " .. t .. " SET v = 2 WHERE id = 2") end)
    H.raises_kind("deadlock", nil, function() tx:commit() end)
    assert.are.equal(0, tonumber(db:query("SELECT v FROM " .. t .. " WHERE id = 2")[1].v))
    db:exec("DROP TABLE " .. t)
    db:close()
    db2:close()
  end)
end)
