-- examples/embed_worker.lua - the Lua side of examples/embed_server.c.
--
-- Each worker thread of the host runs this file in its own lua_State.
-- The file returns a table of functions; the host calls them:
--
--   setup(url, run_id)        main state, before the threads start: opens
--                             the shared pool "main" (and keeps it open
--                             until finish), creates and fills the table
--   worker(id, url, run_id, ticks)
--                             each worker state: a game loop of `ticks`
--                             ticks; returns its counts
--   finish()                  main state, after every thread ended:
--                             returns the coins and the pool's statistics
--
-- No Lua value ever leaves its state: the host reads numbers and strings
-- out of the returned tables and keeps them as C values.
local sqorm = require "sqorm"

local M = {}

local PLAYERS, START_COINS = 10, 100

-- Every state connects with the same name and the same settings, so they
-- all get a handle on one process-wide pool (the first connect creates
-- it; a connect with other settings would raise kind "usage"). max is
-- below the number of threads on purpose: the pool makes them take turns.
local function connect(url)
  return sqorm.connect(url, { name = "main", pool = { max = 3, acquire_timeout = 30 } })
end

local function table_name(run_id)
  return "embed_players_" .. run_id
end

function M.setup(url, run_id)
  local db = connect(url)
  -- The main state holds a handle for the whole run: a named pool lives
  -- while any state holds a handle on it.
  M.db, M.players = db, table_name(run_id)
  db:exec("DROP TABLE IF EXISTS " .. M.players)
  db:exec(("CREATE TABLE %s (id INTEGER PRIMARY KEY, name VARCHAR(32) NOT NULL, coins INTEGER NOT NULL)")
    :format(M.players))
  for id = 1, PLAYERS do
    db:exec(("INSERT INTO %s (id, name, coins) VALUES (?, ?, ?)"):format(M.players),
            { id, "player" .. id, START_COINS })
  end
  return db:dialect()
end

-- One worker's game loop. Each tick reads a player and gives it a coin;
-- every 20th tick two players trade a coin inside a transaction (both
-- updates or neither). Any error propagates to the host, which fails.
function M.worker(id, url, run_id, ticks)
  local db <close> = connect(url)
  local players = table_name(run_id)
  local select_player = ("SELECT id, name, coins FROM %s WHERE id = ?"):format(players)
  local earn = ("UPDATE %s SET coins = coins + ? WHERE id = ?"):format(players)
  local n = { ticks = 0, reads = 0, writes = 0, trades = 0 }
  for tick = 1, ticks do
    local pid = (id * 7 + tick) % PLAYERS + 1
    local p = db:query(select_player, { pid })[1]
    assert(p and p.name == "player" .. pid, "player " .. pid .. " not found")
    n.reads = n.reads + 1
    db:exec(earn, { 1, pid })
    n.writes = n.writes + 1
    if tick % 20 == 0 then
      local from, to = pid, pid % PLAYERS + 1
      local first, second = { -1, from }, { 1, to }
      if to < from then first, second = second, first end -- lock rows in id order: no deadlock
      db:transaction(function()
        db:exec(earn, first)
        db:exec(earn, second)
      end)
      n.trades = n.trades + 1
    end
    n.ticks = tick
  end
  return n
end

-- Totals and pool statistics, read by the main state; then it closes its
-- handle (the last one: the pool closes its connections).
function M.finish()
  local db = M.db
  local total = 0
  for _, row in ipairs(db:query("SELECT coins FROM " .. M.players)) do total = total + row.coins end
  local stats = db:pool_stats()
  db:exec("DROP TABLE " .. M.players)
  db:close()
  return { total = total, initial = PLAYERS * START_COINS, pool = stats }
end

return M
