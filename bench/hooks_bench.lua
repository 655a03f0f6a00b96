-- hooks_bench.lua: the cost of hooks on the hot paths, SQLite :memory:.
-- 20k creates + 20k find_by_pk on a model with no hooks (which must run
-- as fast as before hooks existed: its methods stay the C ones) and on a
-- model with a before_create and an after_find hook (Lua wrappers).
--   source scripts/env.sh build && lua5.4 bench/hooks_bench.lua
local sqorm = require "sqorm"
local T = sqorm.types

local function bench(label, hooks)
  local db = sqorm.connect("sqlite::memory:")
  local P = db:define("player", { { "id", T.INTEGER, primary_key = true, auto_increment = true },
    { "name", T.STRING(32) }, { "coins", T.INTEGER, default = 0 } }, { timestamps = false, hooks = hooks })
  db:sync()
  local N = 20000
  local best_c, best_f = math.huge, math.huge
  for _ = 1, 5 do
    db:exec("DELETE FROM players")
    local t0 = os.clock()
    for i = 1, N do P:create{ name = "p" .. i, coins = i } end
    local t1 = os.clock()
    local first = P:find_one{ order = { "id" } }.id
    for i = 0, N - 1 do P:find_by_pk(first + i) end
    local t2 = os.clock()
    best_c, best_f = math.min(best_c, t1 - t0), math.min(best_f, t2 - t1)
  end
  print(("%-9s create %.1f ms  find_by_pk %.1f ms  (best of 5, %d each)"):format(label, best_c * 1e3, best_f * 1e3, N))
  db:close()
end

bench("no hooks", nil)
bench("hooked", { before_create = function() end, after_find = function() end })
