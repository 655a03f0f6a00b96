-- benchspec.lua: benchlib's counts and SQL as JSON, for the peers written
-- in other languages (bench/peers/*), so that every client counts, creates,
-- seeds and checks exactly as the Lua and C clients do.
--
--   lua5.4 bench/benchspec.lua <sqlite|mysql|postgres>
--
-- Reads SCALE and BENCH_ROWS like benchlib; prints one JSON object with
-- every count already scaled, the DDL, transaction statements and the seed
-- statements for the sizes the workloads use.

local here = arg[0]:match("^(.*)/[^/]*$") or "."
package.path = here .. "/?.lua;" .. package.path
local B = require "benchlib"

local dialect = arg[1]
if not B.DIALECTS[dialect or ""] then
  io.stderr:write("usage: lua5.4 benchspec.lua <sqlite|mysql|postgres>\n")
  os.exit(2)
end

local function json(v)
  local t = type(v)
  if t == "string" then
    return '"' .. v:gsub('[%c"\\]', function(c)
      local esc = { ['"'] = '\\"', ["\\"] = "\\\\", ["\n"] = "\\n", ["\t"] = "\\t" }
      return esc[c] or ("\\u%04x"):format(c:byte())
    end) .. '"'
  elseif t == "number" then
    return math.type(v) == "integer" and tostring(v) or ("%.17g"):format(v)
  elseif t == "boolean" then
    return tostring(v)
  elseif t == "nil" then
    return "null"
  end
  local keys = {}
  for k in pairs(v) do keys[#keys + 1] = k end
  table.sort(keys)
  local parts = {}
  for _, k in ipairs(keys) do parts[#parts + 1] = json(k) .. ":" .. json(v[k]) end
  return "{" .. table.concat(parts, ",") .. "}"
end

local seed = B.scaled(B.SEED_ROWS)
local seed2 = math.max(2, seed)
local stream = B.scaled(B.N_STREAM)
-- A JIT-compiled peer (Sequelize on V8) runs each workload once, untimed
-- and smaller, before the measured run; its stream reads this many rows.
local warm = math.min(20000, seed)

print(json{
  dialect = dialect,
  scale = B.scale,
  workloads = table.concat(B.WORKLOADS, " "),
  n_insert_single = B.scaled(B.N_INSERT_SINGLE),
  n_bulk = B.scaled(B.N_BULK),
  bulk_batch = B.BULK_BATCH,
  seed_rows = seed,
  seed_rows_transfer = seed2,
  n_pk_lookup = B.scaled(B.N_PK_LOOKUP),
  scan_threshold = B.SCAN_THRESHOLD,
  scan_repeat = B.SCAN_REPEAT,
  scan_expected = B.scan_expected(seed),
  n_update = B.scaled(B.N_UPDATE),
  n_transfer = B.scaled(B.N_TRANSFER),
  n_stream = stream,
  ins_cols = B.INS_COLS,
  sel_cols = B.SEL_COLS,
  create_sql = B.CREATE_SQL[dialect],
  begin_sql = B.BEGIN_SQL[dialect],
  lock_clause = B.LOCK_CLAUSE[dialect],
  after_seed = B.AFTER_SEED[dialect],
  seed_sql = B.seed_sql(dialect, seed),
  seed_sql_transfer = B.seed_sql(dialect, seed2),
  seed_sql_stream = B.seed_sql(dialect, stream),
  warm_rows = warm,
  seed_sql_warm = B.seed_sql(dialect, warm),
  server = dialect ~= "sqlite" and B.server(dialect) or nil,
})
