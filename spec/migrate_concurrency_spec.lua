-- The migration lock: two `sqorm migrate up` processes at once apply each
-- migration once; a run killed with SIGKILL while it holds the lock leaves
-- nothing to unlock; a run that can't get the lock in time says why. On
-- every dialect (SQLite: a database file; its lock is the write lock).
local H = require "spec.helper"
local sqorm = require "sqorm"

local function sh_quote(s) return "'" .. tostring(s):gsub("'", "'\\''") .. "'" end

local function scratch_dir()
  local d = os.tmpname()
  os.remove(d)
  assert(os.execute("mkdir -p " .. sh_quote(d)))
  return d
end

local function slurp(path)
  local f = io.open(path, "rb")
  if not f then return nil end
  local s = f:read("a")
  f:close()
  return s
end

-- Each migration notes itself in the ledger table (made by the test, so a
-- MySQL run killed mid-way leaves no half-made DDL behind), after waiting
-- a little so that two runs overlap. With MIG_HOLD set, the first one
-- writes that file and spins (the run to be killed).
local MIG = [[
return {
  up = function(m)
    local hold = os.getenv("MIG_HOLD")
    if hold and "$N" == "001" then
      local f = assert(io.open(hold, "w")); f:write("holding"); f:close()
      -- spin (no child process: a child would inherit the connection's socket)
      local t = os.time()
      while os.time() - t < 60 do end
    end
    os.execute("sleep 0.3")
    m:exec("INSERT INTO $P_ledger (name) VALUES (?)", { "$N" })
  end,
  down = function(m) m:exec("DELETE FROM $P_ledger WHERE name = ?", { "$N" }) end,
}
]]

H.each_dialect(describe, function(d)
  local url, db, dir, P, dbfile

  before_each(function()
    P = H.tname("mc")
    if d.name == "sqlite" then
      dbfile = os.tmpname()
      url = "sqlite://" .. dbfile
    else
      url = d.url
    end
    db = sqorm.connect(url)
    dir = scratch_dir()
    db:exec("CREATE TABLE " .. P .. "_ledger (name VARCHAR(16) NOT NULL)")
    for _, n in ipairs { "001", "002", "003" } do
      local f = assert(io.open(dir .. "/" .. n .. "_step.lua", "w"))
      f:write((MIG:gsub("%$N", n):gsub("%$P", P)))
      f:close()
    end
  end)

  after_each(function()
    pcall(db.exec, db, "DROP TABLE IF EXISTS " .. P .. "_ledger")
    pcall(db.exec, db, "DROP TABLE IF EXISTS " .. P .. "_migs")
    db:close()
    os.execute("rm -rf " .. sh_quote(dir))
    if dbfile then
      os.remove(dbfile)
      os.remove(dbfile .. "-journal")
    end
  end)

  local function cmd(extra)
    return ("bin/sqorm migrate up --dir %s --table %s --url %s %s"):format(sh_quote(dir), P .. "_migs",
      sh_quote(url), extra or "")
  end

  local function ledger()
    local out = {}
    for i, r in ipairs(db:query("SELECT name FROM " .. P .. "_ledger ORDER BY name")) do out[i] = r.name end
    return out
  end

  it("two runs at once apply each migration once", function()
    local o1, o2 = os.tmpname(), os.tmpname()
    local script = ("(%s >%s 2>&1; echo \"rc=$?\" >>%s) & (%s >%s 2>&1; echo \"rc=$?\" >>%s) & wait"):format(
      cmd(), o1, o1, cmd(), o2, o2)
    assert(os.execute(script))
    local out1, out2 = slurp(o1), slurp(o2)
    os.remove(o1)
    os.remove(o2)
    assert.matches("rc=0", out1, 1, true)
    assert.matches("rc=0", out2, 1, true)
    local n1 = tonumber(out1:match("applied (%d+) migration")) or 0
    local n2 = tonumber(out2:match("applied (%d+) migration")) or 0
    assert.equal(3, n1 + n2, out1 .. out2)
    assert.same({ "001", "002", "003" }, ledger())
    local mg = sqorm.migrator(db, { dir = dir, table = P .. "_migs" })
    assert.equal(3, #mg:executed())
    assert.same({}, mg:pending())
  end)

  it("a run killed while it holds the lock leaves nothing to unlock", function()
    local hold = os.tmpname()
    os.remove(hold)
    local log = os.tmpname()
    local pidfile = os.tmpname()
    assert(os.execute(("MIG_HOLD=%s %s >%s 2>&1 & echo $! >%s"):format(sh_quote(hold), cmd(), log, pidfile)))
    local pid = assert(tonumber(slurp(pidfile)))
    -- wait until it holds the lock and runs the first migration
    local t0 = os.time()
    while not slurp(hold) do
      assert(os.time() - t0 < 30, "the runner never started: " .. tostring(slurp(log)))
      os.execute("sleep 0.1")
    end
    -- held: another run gives up after its lock timeout, naming the lock
    local mg = sqorm.migrator(db, { dir = dir, table = P .. "_migs", lock_timeout = 0.5 })
    H.raises_kind("timeout", "another migration run holds the lock", function() mg:up() end)
    assert(os.execute("kill -9 " .. pid))
    os.execute("sleep 0.2")
    -- the next run gets the lock at once and applies everything, once
    local t1 = os.time()
    mg = sqorm.migrator(db, { dir = dir, table = P .. "_migs", lock_timeout = 10 })
    assert.same({ "001_step", "002_step", "003_step" }, mg:up())
    assert.is_true(os.time() - t1 < 8)
    assert.same({ "001", "002", "003" }, ledger())
    os.remove(hold)
    os.remove(log)
    os.remove(pidfile)
  end)
end)
