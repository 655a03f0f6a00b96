-- record_loop.lua: what the Lua clients' bulk_insert loop costs by itself:
-- the 1,000 record tables per call that sqorm_bench.lua builds for
-- Player:bulk_create, without calling it (issue 15: the part of the
-- distance to raw C that no Lua API taking a list of tables can avoid).
--
--   taskset -c 0 lua5.4 bench/record_loop.lua [rows]
--
-- Prints the best of 5 runs in microseconds per row (LuaSocket's clock).
-- Under callgrind, each run is framed by os.difftime calls, so
-- `valgrind --tool=callgrind --dump-before='difftime*'` gives one dump
-- per run: instructions per row = a run's dump / rows.
local ok, socket = pcall(require, "socket")
local clock = ok and socket.gettime or os.clock
local n, batch = tonumber(arg[1]) or 100000, 1000
local best = math.huge
for _ = 1, 5 do
  collectgarbage()
  os.difftime(0, 0)
  local t0 = clock()
  local done, keep = 0, nil
  while done < n do
    local k = math.min(batch, n - done)
    local rows = {}
    for j = 1, k do
      local i = done + j - 1
      rows[j] = { name = "bulk_" .. i, coins = i % 1000, goods = i % 100 }
    end
    keep = rows
    done = done + k
  end
  local t = clock() - t0
  os.difftime(0, 0)
  if t < best then best = t end
  assert(#keep > 0)
end
print(("record loop: %d rows, best of 5: %.3f s, %.3f us per row"):format(n, best, best * 1e6 / n))
