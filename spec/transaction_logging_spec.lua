-- Transaction statements are logged like any other (issue 9, item 26):
-- BEGIN (START TRANSACTION on MySQL), COMMIT, ROLLBACK, SAVEPOINT,
-- RELEASE SAVEPOINT and ROLLBACK TO SAVEPOINT of db:transaction and
-- db:begin; with benchmark = true each one is followed by its elapsed
-- time, with sub-millisecond precision.
local sqorm = require "sqorm"
local H = require "spec.helper"

H.each_dialect(describe, function(d)
  local db, log, t
  local begin_sql = d.name == "mysql" and "START TRANSACTION" or "BEGIN"

  local function open(opts)
    log = {}
    local o = { logging = function(m) log[#log + 1] = m end, pool = { max = 1 } }
    for k, v in pairs(opts or {}) do o[k] = v end
    db = sqorm.connect(d.url, o)
    t = H.tname("txlog")
    db:exec(("CREATE TABLE %s (id INTEGER PRIMARY KEY, coins INTEGER)"):format(t))
    for i = #log, 1, -1 do log[i] = nil end
  end

  after_each(function()
    pcall(db.exec, db, "DROP TABLE " .. t)
    db:close()
  end)

  -- The logged statements, without the "Executing (default): " prefix.
  local function statements()
    local out = {}
    for _, m in ipairs(log) do
      local s = m:match("^Executing %(default%): (.*)$")
      if s then out[#out + 1] = s end
    end
    return out
  end

  local function ins(id)
    db:exec(("INSERT INTO %s VALUES (?, 1)"):format(t), { id })
    return ("INSERT INTO %s VALUES (?, 1)"):format(t)
  end

  it("db:transaction logs BEGIN and COMMIT, savepoints by name", function()
    open()
    local sql
    db:transaction(function()
      sql = ins(1)
      db:transaction(function() ins(2) end)
      pcall(db.transaction, db, function() ins(3); error("inner") end)
    end)
    assert.are.same({ begin_sql, sql, "SAVEPOINT sq_sp_1", sql, "RELEASE SAVEPOINT sq_sp_1",
                      "SAVEPOINT sq_sp_2", sql, "ROLLBACK TO SAVEPOINT sq_sp_2", "RELEASE SAVEPOINT sq_sp_2",
                      "COMMIT" }, statements())
  end)

  it("db:transaction logs ROLLBACK when fn raises", function()
    open()
    local sql
    pcall(db.transaction, db, function() sql = ins(1); error("boom") end)
    assert.are.same({ begin_sql, sql, "ROLLBACK" }, statements())
  end)

  it("db:begin logs BEGIN, COMMIT, ROLLBACK and its savepoints", function()
    open()
    local tx = db:begin()
    local sp = db:begin()
    sp:rollback()
    tx:commit()
    tx = db:begin({ isolation = "serializable" })
    tx:rollback()
    local s = statements()
    assert.are.equal(begin_sql, s[1])
    assert.are.same({ "SAVEPOINT sq_sp_1", "ROLLBACK TO SAVEPOINT sq_sp_1", "RELEASE SAVEPOINT sq_sp_1", "COMMIT" },
                    { s[2], s[3], s[4], s[5] })
    assert.truthy(s[6]:find("BEGIN", 1, true) or s[6]:find("START TRANSACTION", 1, true), s[6])
    assert.are.equal("ROLLBACK", s[7])
    assert.are.equal(7, #s)
  end)

  it("benchmark = true times every statement with sub-millisecond precision", function()
    open({ benchmark = true })
    db:transaction(function() db:query("SELECT 1 AS one") end)
    local executed = {}
    for _, m in ipairs(log) do
      local sql, ms = m:match("^Executed %(default%): (.-) Elapsed time: (%d+%.%d%d)ms$")
      if sql then executed[#executed + 1] = sql end
      if m:find("^Executed") then assert.truthy(ms, m) end
    end
    assert.are.same({ begin_sql, "SELECT 1 AS one", "COMMIT" }, executed)
  end)

  it("a logging function that raises at COMMIT still ends the transaction", function()
    open()
    db:close()
    local fail = false
    db = sqorm.connect(d.url, { pool = { max = 1 }, logging = function(m)
      if fail and m:find("COMMIT", 1, true) then error("logger broke") end
    end })
    db:exec(("CREATE TABLE IF NOT EXISTS %s (id INTEGER PRIMARY KEY, coins INTEGER)"):format(t))
    fail = true
    local ok, err = pcall(db.transaction, db, function() ins(1) end)
    fail = false
    assert.is_false(ok)
    assert.matches("logger broke", tostring(err))
    assert.are.equal(0, db:pool_stats().in_use)
    assert.are.equal(1, #db:query(("SELECT id FROM %s"):format(t))) -- committed
    -- and no transaction is left registered for this coroutine
    ins(2)
    assert.are.equal(2, #db:query(("SELECT id FROM %s"):format(t)))
  end)
end)
