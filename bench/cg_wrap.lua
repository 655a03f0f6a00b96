-- cg_wrap.lua: runs a Lua client of the benchmark with benchlib's clock
-- wrapped so that every B.clock() call first calls os.difftime (libc's
-- difftime): under `valgrind --tool=callgrind --dump-before=difftime`
-- each timed part of a workload becomes its own dump. See bench/cg.sh.
--
--   lua5.4 bench/cg_wrap.lua bench/sqorm_bench.lua <db> <workload>
local script = table.remove(arg, 1)
local here = script:match("^(.*)/[^/]*$") or "."
package.path = here .. "/?.lua;" .. package.path
local B = require "benchlib"
local clock, difftime = B.clock, os.difftime
B.clock = function()
  difftime(0, 0)
  return clock()
end
arg[0] = script -- luacheck: ignore 122
dofile(script)
