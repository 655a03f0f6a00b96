-- examples/embed_async.lua - the Lua side of `embed_server --async`: one
-- thread, one lua_State, many coroutine "sessions" doing read-modify-write
-- transactions while the host's tick loop keeps running.
--
-- The host calls:
--   setup(url, run_id, sessions)  connect (async = true), create and fill
--                                 the table, spawn the sessions
--   tick()                        once per tick: sqorm.poll(); returns how
--                                 many ops are still pending
--   pollfd()                      the fd the host waits on between ticks
--   finish()                      totals: transfers, retries, coins
local sqorm = require "sqorm"

local M = {}

local PLAYERS, START_COINS, TRANSFERS = 20, 1000, 5

local db, tname, dialect
local done = { sessions = 0, transfers = 0, retries = 0, failed = 0 }

-- One transfer: read both balances (locked), write both. A deadlock
-- (the server chose this transaction as the victim, or SQLite's busy
-- snapshot) rolled it back: run it again; so did a lost connection
-- (coins are only moved, so a COMMIT that was lost after it happened
-- still leaves the total right).
local tx_opts -- set in setup
local function transfer(from, to)
  local lock = dialect == "sqlite" and "" or " FOR UPDATE"
  local a, b = math.min(from, to), math.max(from, to) -- lock in id order
  for _ = 1, 50 do
    -- (on SQLite, serializable is BEGIN IMMEDIATE: the write lock is
    -- waited for at BEGIN, on a worker thread, instead of a retry later)
    local ok, err = pcall(db.transaction, db, function()
      local rows = db:query(("SELECT id, coins FROM %s WHERE id IN (?, ?) ORDER BY id%s"):format(tname, lock), { a, b })
      local coins = {}
      for _, r in ipairs(rows) do coins[tonumber(r.id)] = tonumber(r.coins) end
      db:exec(("UPDATE %s SET coins = ? WHERE id = ?"):format(tname), { coins[from] - 1, from })
      db:exec(("UPDATE %s SET coins = ? WHERE id = ?"):format(tname), { coins[to] + 1, to })
    end, tx_opts)
    if ok then return true end
    local kind = sqorm.is_error(err) and err.kind
    if kind ~= "deadlock" and kind ~= "timeout" and kind ~= "connection" then error(err, 0) end
    done.retries = done.retries + 1
  end
  return false
end

local function session(id)
  for i = 1, TRANSFERS do
    local from = (id + i) % PLAYERS + 1
    local to = (id * 7 + i) % PLAYERS + 1
    if to == from then to = to % PLAYERS + 1 end
    if transfer(from, to) then done.transfers = done.transfers + 1 else done.failed = done.failed + 1 end
  end
  done.sessions = done.sessions + 1
end

function M.setup(url, run_id, sessions)
  db = sqorm.connect(url, { async = true, pool = { max = 8, acquire_timeout = 60 } })
  dialect = db:dialect()
  if dialect == "sqlite" then tx_opts = { isolation = "serializable" } end
  tname = "embed_async_" .. run_id
  sqorm.on_error(function(err, co)
    done.failed = done.failed + 1
    io.stderr:write("session failed: ", tostring(err), "\n", debug.traceback(co), "\n")
  end)
  sqorm.run(function()
    db:exec("DROP TABLE IF EXISTS " .. tname)
    db:exec(("CREATE TABLE %s (id INTEGER PRIMARY KEY, coins INTEGER NOT NULL)"):format(tname))
    for i = 1, PLAYERS do db:exec(("INSERT INTO %s (id, coins) VALUES (?, ?)"):format(tname), { i, START_COINS }) end
  end)
  for s = 1, sessions do sqorm.spawn(session, s) end
  return dialect
end

function M.tick()
  sqorm.poll()
  return sqorm.pending()
end

function M.pollfd() return sqorm.pollfd() end

function M.finish()
  local total = sqorm.run(function()
    local n = db:query("SELECT SUM(coins) AS n FROM " .. tname)[1].n
    db:exec("DROP TABLE " .. tname)
    return tonumber(n)
  end)
  db:close()
  return { sessions = done.sessions, transfers = done.transfers, retries = done.retries, failed = done.failed,
    coins = total, expected = PLAYERS * START_COINS }
end

return M
