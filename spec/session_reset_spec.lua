-- A connection goes back to the pool in a known session state: what a raw
-- statement changed in its session (settings, temporary tables, locks,
-- attached databases) is gone before the next borrower gets it. Statements
-- sqorm renders never trigger that reset.
local sqorm = require "sqorm"
local H = require "spec.helper"

-- Every statement below runs on the pool's one connection, so the next
-- call is "the next borrower" of the same session.
local function one_conn(url) return sqorm.connect(url, { pool = { max = 1 } }) end

H.each_dialect(describe, function(d)
  local db
  after_each(function() if db and not db:is_closed() then db:close() end end)

  it("drops a temporary table", function()
    db = one_conn(d.url)
    local tmp = H.tname("tmp")
    local create = d.name == "mysql" and "CREATE TEMPORARY TABLE %s (a INTEGER)" or "CREATE TEMP TABLE %s (a INTEGER)"
    db:exec(create:format(tmp))
    H.raises_kind("syntax", nil, function() db:query("SELECT * FROM " .. tmp) end)
  end)

  it("resets a session changed inside a transaction once it ends", function()
    db = one_conn(d.url)
    local set = ({ sqlite = "PRAGMA recursive_triggers = ON", mysql = "SET time_zone = '+05:00'",
      postgres = "SET search_path = nowhere" })[d.name]
    local get = ({ sqlite = "PRAGMA recursive_triggers", mysql = "SELECT @@time_zone AS v",
      postgres = "SHOW search_path" })[d.name]
    local function value() local r = db:query(get)[1]; local _, v = next(r); return v end
    local before = value()
    db:transaction(function() db:exec(set) end)
    assert.are.equal(before, value())
  end)

  it("keeps the session for model statements (no full reset)", function()
    -- a full reset forgets the server's prepared statements; a rendered
    -- statement run twice must be prepared once
    if d.name == "sqlite" then return end -- no server-side counter; see tests/test_session.c
    db = one_conn(d.url)
    local M = db:define("SessionProbe", { id = { type = sqorm.types.INTEGER, primary_key = true },
      n = sqorm.types.INTEGER }, { table_name = H.tname("probe"), timestamps = false })
    M:sync()
    M:create{ id = 1, n = 1 }
    M:find_all{ where = { n = 1 } }
    M:update({ n = 1 }, { where = { id = 1 } })
    local function prepared()
      if d.name == "postgres" then
        return db:query("SELECT count(*) AS n FROM pg_prepared_statements")[1].n
      end
      return tonumber(db:query("SHOW SESSION STATUS LIKE 'Com_stmt_prepare'")[1].Value)
    end
    local p0 = prepared()
    for _ = 1, 3 do
      M:find_all{ where = { n = 1 } }
      M:update({ n = 1 }, { where = { id = 1 } })
    end
    assert.are.equal(p0, prepared())
    M:drop()
  end)

  if d.name == "sqlite" then
    for _, where in ipairs({ "memory", "file" }) do
      it("turns foreign keys back on after PRAGMA foreign_keys = OFF (" .. where .. ")", function()
        local path = where == "file" and os.tmpname() or nil
        db = where == "file" and sqorm.connect("sqlite:" .. path, { pool = { max = 3 } }) or sqorm.connect(d.url)
        db:exec("CREATE TABLE parent (id INTEGER PRIMARY KEY)")
        db:exec("CREATE TABLE child (id INTEGER PRIMARY KEY, parent_id INTEGER REFERENCES parent(id))")
        db:exec("PRAGMA foreign_keys = OFF")
        assert.are.equal(1, db:query("PRAGMA foreign_keys")[1].foreign_keys)
        H.raises_kind("constraint", nil, function() db:exec("INSERT INTO child VALUES (1, 42)") end)
        db:close()
        if path then os.remove(path); os.remove(path .. "-wal"); os.remove(path .. "-shm") end
      end)
    end

    it("detaches attached databases and restores other pragmas", function()
      db = sqorm.connect(d.url)
      db:exec("ATTACH ':memory:' AS aux")
      db:exec("PRAGMA query_only = ON")
      db:exec("PRAGMA busy_timeout = 1")
      for _, r in ipairs(db:query("PRAGMA database_list")) do assert.are_not.equal("aux", r.name) end
      assert.are.equal(0, db:query("PRAGMA query_only")[1].query_only)
      -- sqorm waits for locks through its own (cancellable) busy handler,
      -- which PRAGMA busy_timeout reads as 0: the user's 1 ms is gone
      assert.are_not.equal(1, db:query("PRAGMA busy_timeout")[1].timeout)
      db:exec("CREATE TABLE still_writable (a)")
    end)
  elseif d.name == "mysql" then
    it("restores autocommit: the next borrower's insert does not vanish", function()
      db = one_conn(d.url)
      local t = H.tname("ac")
      db:exec(("CREATE TABLE %s (a INTEGER)"):format(t))
      db:exec("SET autocommit = 0")
      db:exec(("INSERT INTO %s VALUES (1)"):format(t))
      local other = sqorm.connect(d.url)
      assert.are.equal(1, other:query("SELECT count(*) AS n FROM " .. t)[1].n)
      other:exec("DROP TABLE " .. t)
      other:close()
    end)

    it("clears user variables and restores the time zone and database", function()
      db = one_conn(d.url)
      local dbname = db:query("SELECT DATABASE() AS d")[1].d
      db:exec("SET @sqorm_v = 5, time_zone = '+05:00', NAMES latin1")
      db:exec("USE information_schema")
      local r = db:query("SELECT @sqorm_v AS v, @@time_zone AS tz, DATABASE() AS d, @@character_set_client AS cs")[1]
      assert.is_nil(r.v)
      assert.are.equal("+00:00", r.tz)
      assert.are.equal(dbname, r.d)
      assert.are.equal("utf8mb4", r.cs)
    end)

    it("releases a GET_LOCK lock", function()
      db = one_conn(d.url)
      local name = H.tname("lock")
      assert.are.equal(1, db:query("SELECT GET_LOCK(?, 0) AS ok", { name })[1].ok)
      local other = sqorm.connect(d.url)
      assert.are.equal(1, other:query("SELECT GET_LOCK(?, 0) AS ok", { name })[1].ok)
      other:close()
    end)
  else
    it("restores TimeZone and search_path", function()
      db = one_conn(d.url)
      db:exec("SET TimeZone = 'America/New_York'")
      assert.are.equal("UTC", db:query("SHOW TimeZone")[1].TimeZone)
      db:exec("SET search_path = nowhere")
      assert.are.equal('"$user", public', db:query("SHOW search_path")[1].search_path)
      db:exec("SELECT set_config('TimeZone', 'Asia/Tokyo', false)")
      assert.are.equal("UTC", db:query("SHOW TimeZone")[1].TimeZone)
    end)

    it("releases an advisory lock", function()
      db = one_conn(d.url)
      db:query("SELECT pg_advisory_lock(424242)")
      local other = sqorm.connect(d.url)
      assert.is_true(other:query("SELECT pg_try_advisory_lock(424242) AS ok")[1].ok)
      other:query("SELECT pg_advisory_unlock(424242)")
      other:close()
    end)

    it("keeps working after a reset forgot the prepared statements", function()
      db = one_conn(d.url)
      assert.are.equal(2, db:query("SELECT ?::int + 1 AS v", { 1 })[1].v)
      db:exec("SET work_mem = '8MB'")
      assert.are.equal(2, db:query("SELECT ?::int + 1 AS v", { 1 })[1].v)
    end)
  end
end)
