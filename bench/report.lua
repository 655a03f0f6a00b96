-- report.lua: turns RESULT lines into a table, a markdown file and a chart.
--
--   lua5.4 bench/report.lua bench/results/latest.txt bench/results/latest
--   lua5.4 bench/report.lua --sweep bench/results/sweep.txt bench/results/sweep
--
-- writes <prefix>.md, <prefix>.dat and <prefix>.png (through gnuplot, when
-- installed) and prints the table on stdout. Where a (workload, db, client)
-- has several RESULT lines (run.sh's REPEAT), the run with the median rate
-- stands for it. The markdown also marks each target of issue 15 met or
-- missed from the measured ratios. --sweep reads the size sweep (RESULT
-- lines with the row count appended) and writes a time / peak memory table
-- per size instead. Exits non-zero only when the input is unreadable; a
-- missing figure shows as "-".

local sweep = false
if arg[1] == "--sweep" then
  sweep = true
  table.remove(arg, 1)
end
local input, prefix = arg[1], arg[2]
if not (input and prefix) then
  io.stderr:write("usage: lua5.4 report.lua [--sweep] RESULTS.txt OUTPUT_PREFIX\n")
  os.exit(2)
end

local WORKLOADS = {
  "insert_single", "bulk_insert", "pk_lookup", "scan", "update",
  "txn_transfer", "stream", "include",
}
-- The workloads every client (the peers and LuaSQL too) runs; include has
-- only sqorm, lua_floor and raw C.
local COMMON = {
  "insert_single", "bulk_insert", "pk_lookup", "scan", "update",
  "txn_transfer", "stream",
}
-- What one "op" is, so that rows/s and transactions/s are not confused.
local UNIT = {
  insert_single = "row", bulk_insert = "row", pk_lookup = "lookup",
  scan = "row", update = "load+save", txn_transfer = "txn", stream = "row",
  include = "object",
}
local DBS = { "sqlite", "mysql", "postgres" }
local CLIENT_ORDER = {
  "sqorm", "sqorm_raw", "sqorm_noret", "lua_floor", "lua_floor_raw", "raw_c",
  "luasql", "sequelize", "sqlalchemy_orm", "sqlalchemy_core",
}
local LABEL = {
  sqorm = "sqorm", sqorm_raw = "sqorm raw", sqorm_noret = "sqorm returning=false",
  lua_floor = "lua_floor", lua_floor_raw = "lua_floor raw", raw_c = "raw C",
  luasql = "LuaSQL", sequelize = "Sequelize", sqlalchemy_orm = "SQLAlchemy ORM",
  sqlalchemy_core = "SQLAlchemy Core",
}
local function label(c) return LABEL[c] or c end

-- Parse -----------------------------------------------------------------

local f, err = io.open(input)
if not f then
  io.stderr:write("report: ", err, "\n")
  os.exit(1)
end
local runs, meta, seen_client, failed, unavailable = {}, {}, {}, {}, {}
local sizes, seen_size = {}, {}
for line in f:lines() do
  local w, db, c, ops, secs, rate, rss, rest = line:match(
    "^RESULT (%S+) (%S+) (%S+) (%S+) (%S+) (%S+) (%S+)%s*(.*)")
  if w then
    local rows = tonumber(rest:match("^(%d+)"))
    if sweep and not rows then goto continue end
    local key = w .. " " .. db .. " " .. c .. (sweep and (" " .. rows) or "")
    runs[key] = runs[key] or {}
    table.insert(runs[key], {
      ops = tonumber(ops), secs = tonumber(secs), rate = tonumber(rate),
      rss = tonumber(rss), rows = rows,
    })
    seen_client[c] = true
    if rows and not seen_size[rows] then
      seen_size[rows] = true
      sizes[#sizes + 1] = rows
    end
  elseif line:match("^# FAILED") then
    failed[#failed + 1] = line:sub(3)
  elseif line:match("^# UNAVAILABLE") then
    unavailable[#unavailable + 1] = line:sub(3)
  elseif line:match("^# ") and not line:match("^# RESULT") then
    meta[#meta + 1] = line:sub(3)
  end
  ::continue::
end
f:close()
table.sort(sizes)

-- The run with the median rate (the lower middle one of an even count);
-- spread = (max - min) / median, over the repeats.
local res, max_spread = {}, nil
for key, list in pairs(runs) do
  table.sort(list, function(a, b) return a.rate < b.rate end)
  local m = list[(#list + 1) // 2]
  m.n = #list
  if #list > 1 and m.rate > 0 then
    m.spread = (list[#list].rate - list[1].rate) / m.rate
    if not max_spread or m.spread > max_spread.spread then
      max_spread = { spread = m.spread, key = key, n = #list }
    end
  end
  res[key] = m
end

local clients = {}
for _, c in ipairs(CLIENT_ORDER) do
  if seen_client[c] then clients[#clients + 1] = c; seen_client[c] = nil end
end
local others = {}
for c in pairs(seen_client) do others[#others + 1] = c end
table.sort(others)
for _, c in ipairs(others) do clients[#clients + 1] = c end
local has = {}
for _, c in ipairs(clients) do has[c] = true end

local function get(w, db, c, rows)
  return res[w .. " " .. db .. " " .. c .. (rows and (" " .. rows) or "")]
end

-- Formatting --------------------------------------------------------------

-- 1234567.8 -> "1,234,568"
local function thousands(x)
  local s = string.format("%.0f", x)
  local neg, digits = s:match("^(-?)(%d+)$")
  if not digits then return s end
  digits = digits:reverse():gsub("(%d%d%d)", "%1,"):reverse():gsub("^,", "")
  return neg .. digits
end

local function text_table(hdr, body, nleft)
  nleft = nleft or 3
  local width = {}
  for i, h in ipairs(hdr) do width[i] = #h end
  for _, row in ipairs(body) do
    for i, cell in ipairs(row) do width[i] = math.max(width[i], #cell) end
  end
  local out = {}
  local function line(cells)
    local parts = {}
    for i, cell in ipairs(cells) do
      -- Names left-aligned, figures right-aligned.
      local left = i <= nleft and not cell:match("^[%d,.%-]+$")
      parts[i] = left and cell .. string.rep(" ", width[i] - #cell)
        or string.rep(" ", width[i] - #cell) .. cell
    end
    out[#out + 1] = table.concat(parts, "  ")
  end
  line(hdr)
  local rule = {}
  for i = 1, #hdr do rule[i] = string.rep("-", width[i]) end
  out[#out + 1] = table.concat(rule, "  ")
  for _, row in ipairs(body) do line(row) end
  return table.concat(out, "\n")
end

local function md_table(hdr, body, nleft)
  nleft = nleft or 2
  local out = { "| " .. table.concat(hdr, " | ") .. " |" }
  local align = {}
  for i = 1, #hdr do align[i] = i <= nleft and ":--" or "--:" end
  if hdr[3] == "op" then align[3] = ":--" end
  out[#out + 1] = "| " .. table.concat(align, " | ") .. " |"
  for _, row in ipairs(body) do
    out[#out + 1] = "| " .. table.concat(row, " | ") .. " |"
  end
  return table.concat(out, "\n")
end

local function write_meta(md)
  for _, line in ipairs(meta) do md:write("    ", line, "\n") end
end

local function write_unavailable(md)
  if #unavailable > 0 then
    md:write("\nNot measured (a peer could not be installed or run here):\n\n")
    for _, line in ipairs(unavailable) do md:write("- ", line:gsub("^UNAVAILABLE ", ""), "\n") end
  end
  if #failed > 0 then
    md:write("\nFailed runs:\n\n")
    for _, line in ipairs(failed) do md:write("- ", line, "\n") end
  end
end

-- The size sweep ------------------------------------------------------------

if sweep then
  -- One row per workload x db x client, a "seconds / MiB" cell per size,
  -- and how much time and memory grew from the smallest to the largest
  -- size against how much the rows grew (linear: both equal the rows').
  local hdr = { "workload", "db", "client" }
  for _, n in ipairs(sizes) do hdr[#hdr + 1] = thousands(n) .. " rows: s / MiB" end
  local growth = #sizes > 1 and ("x%s rows: time, RSS growth"):format(
    thousands(sizes[#sizes] / sizes[1])) or nil
  if growth then hdr[#hdr + 1] = growth end
  local body = {}
  for _, w in ipairs{ "bulk_insert", "scan", "stream" } do
    for _, db in ipairs(DBS) do
      for _, c in ipairs(clients) do
        local row, any = { w, db, label(c) }, false
        for _, n in ipairs(sizes) do
          local r = get(w, db, c, n)
          any = any or r ~= nil
          row[#row + 1] = r and ("%.3f / %.1f"):format(r.secs, r.rss / 1024) or "-"
        end
        if growth then
          local a, b = get(w, db, c, sizes[1]), get(w, db, c, sizes[#sizes])
          row[#row + 1] = (a and b and a.secs > 0 and a.rss > 0) and
            ("x%.1f, x%.1f"):format(b.secs / a.secs, b.rss / a.rss) or "-"
        end
        if any then body[#body + 1] = row end
      end
    end
  end
  print()
  print(text_table(hdr, body))
  for _, line in ipairs(failed) do print("!! " .. line) end
  for _, line in ipairs(unavailable) do print("-- " .. line) end
  print()
  local md = assert(io.open(prefix .. ".md", "w"))
  md:write("# sqorm benchmark: cost growth\n\n")
  write_meta(md)
  md:write("\nSeconds for the whole workload / peak resident memory of the client",
    " process (VmHWM, MiB) at each size. bulk_insert inserts N rows; scan reads",
    " about N / 2 rows of an N-row table 5 times into lists; stream iterates",
    " over N rows. The last column is how much the time and the memory grew",
    " from the smallest to the largest size.\n\n")
  md:write(md_table(hdr, body, 3), "\n")
  write_unavailable(md)
  md:close()
  os.exit(0)
end

-- Ratio columns and targets ------------------------------------------------

local RATIOS = {
  { "sqorm", "raw_c" }, { "sqorm", "lua_floor" }, { "sqorm", "sequelize" },
  { "sqorm", "sqlalchemy_orm" }, { "sqorm", "luasql" },
}
local ratios = {}
for _, r in ipairs(RATIOS) do
  if has[r[1]] and has[r[2]] then ratios[#ratios + 1] = r end
end

local function ratio(w, db, a, b)
  local ra, rb = get(w, db, a), get(w, db, b)
  if not (ra and rb) or rb.rate <= 0 then return nil end
  return ra.rate / rb.rate
end

local function ratio_cell(w, db, a, b)
  local x = ratio(w, db, a, b)
  return x and string.format("%.2f", x) or "-"
end

local function rate_cell(w, db, c)
  local r = get(w, db, c)
  return r and thousands(r.rate) or "-"
end

-- Rows of cells shared by the text table and the markdown table.
local header = { "workload", "db", "op" }
for _, c in ipairs(clients) do header[#header + 1] = label(c) end
for _, r in ipairs(ratios) do header[#header + 1] = label(r[1]) .. "/" .. label(r[2]) end

local rows = {}
for _, w in ipairs(WORKLOADS) do
  for _, db in ipairs(DBS) do
    local any = false
    for _, c in ipairs(clients) do any = any or get(w, db, c) ~= nil end
    if any then
      local row = { w, db, UNIT[w] }
      for _, c in ipairs(clients) do row[#row + 1] = rate_cell(w, db, c) end
      for _, r in ipairs(ratios) do
        row[#row + 1] = ratio_cell(w, db, r[1], r[2])
      end
      rows[#rows + 1] = row
    end
  end
end

-- Issue 15's targets: one row per target and workload, a cell per dialect
-- with the measured value and whether it meets the target.
local targets = {}
local n_met, n_missed, n_none = 0, 0, 0
local function target(name, w, need, value_of, opts)
  opts = opts or {}
  local row = { name, w, (opts.less and "< %g MiB" or ">= %g"):format(need) }
  for _, db in ipairs(DBS) do
    local value, note = value_of(db)
    local cell
    if value == nil then
      cell = "-" .. (note and (" (" .. note .. ")") or "")
      n_none = n_none + 1
    else
      local ok = opts.less and value < need or (not opts.less and value >= need)
      cell = (opts.less and "%.1f MiB %s" or "%.2f %s"):format(value, ok and "met" or "**MISSED**")
      if ok then n_met = n_met + 1 else n_missed = n_missed + 1 end
    end
    row[#row + 1] = cell
  end
  targets[#targets + 1] = row
end
local function vs(a, b, w) return function(db) return ratio(w, db, a, b) end end
for _, w in ipairs{ "insert_single", "pk_lookup", "update", "txn_transfer" } do
  target("round trip: sqorm / raw C", w, 0.92, vs("sqorm", "raw_c", w))
end
target("bulk, instances returned: sqorm / raw C", "bulk_insert", 0.85,
  vs("sqorm", "raw_c", "bulk_insert"))
target("bulk, returning = false: sqorm_noret / raw C", "bulk_insert", 0.95, function(db)
  return ratio("bulk_insert", db, "sqorm_noret", "raw_c"), not has.sqorm_noret and
    "no sqorm_noret figures" or nil
end)
for _, w in ipairs{ "scan", "stream" } do
  target("sqorm / lua_floor", w, 0.9, vs("sqorm", "lua_floor", w))
end
target("raw rows: sqorm raw / lua_floor raw", "scan", 0.9, vs("sqorm_raw", "lua_floor_raw", "scan"))
target("raw = true >= instances: sqorm raw / sqorm", "scan", 1.0, vs("sqorm_raw", "sqorm", "scan"))
for _, w in ipairs(COMMON) do
  target("sqorm / Sequelize", w, 5, vs("sqorm", "sequelize", w))
end
for _, w in ipairs(COMMON) do
  target("sqorm / SQLAlchemy ORM", w, 5, vs("sqorm", "sqlalchemy_orm", w))
end
for _, w in ipairs(COMMON) do
  target("sqorm / LuaSQL", w, 1.0, vs("sqorm", "luasql", w))
end
target("peak RSS of a 1,000,000-row stream", "stream", 32, function(db)
  local st = get("stream", db, "sqorm")
  if not st then return nil end
  if st.ops < 1000000 then return nil, ("%s rows at this SCALE"):format(thousands(st.ops)) end
  return st.rss / 1024
end, { less = true })
target("include: sqorm / raw SQL joins in C", "include", 0.8, vs("sqorm", "raw_c", "include"))
local target_header = { "target", "workload", "needed" }
for _, db in ipairs(DBS) do target_header[#target_header + 1] = db end

-- Peak client memory matters for the two workloads that move many rows.
local rss_header = { "workload", "db" }
for _, c in ipairs(clients) do rss_header[#rss_header + 1] = label(c) .. " MiB" end
local rss_rows = {}
for _, w in ipairs{ "scan", "stream" } do
  for _, db in ipairs(DBS) do
    local row, any = { w, db }, false
    for _, c in ipairs(clients) do
      local r = get(w, db, c)
      any = any or r ~= nil
      row[#row + 1] = r and string.format("%.1f", r.rss / 1024) or "-"
    end
    if any then rss_rows[#rss_rows + 1] = row end
  end
end

local scale_note = ""
for _, line in ipairs(meta) do
  scale_note = line:match("(SCALE=%S+)") or scale_note
end
local official = scale_note == "SCALE=1" or scale_note == "SCALE=1.0"

-- Text ------------------------------------------------------------------

print()
print(text_table(header, rows))
if #rss_rows > 0 then
  print()
  print("peak client RSS")
  print(text_table(rss_header, rss_rows, 2))
end
print()
print(("issue 15 targets: %d met, %d missed, %d not measured%s"):format(n_met, n_missed, n_none,
  official and "" or (" (" .. scale_note .. ": indicative only)")))
for _, t in ipairs(targets) do
  for i, db in ipairs(DBS) do
    local cell = t[3 + i]
    if cell:match("MISSED") then
      print(("  missed: %s, %s, %s: %s (needs %s)"):format(t[1], t[2], db,
        cell:match("^(%S+)"), t[3]))
    end
  end
end
for _, line in ipairs(failed) do print("!! " .. line) end
for _, line in ipairs(unavailable) do print("-- " .. line) end
print()

-- Markdown --------------------------------------------------------------

local md = assert(io.open(prefix .. ".md", "w"))
md:write("# sqorm benchmark results\n\n")
write_meta(md)
md:write("\nOperations per second, higher is better; `op` says what one",
  " operation is. Ratios above 1 mean sqorm is faster.")
if max_spread then
  md:write((" Each figure is the median of %d runs; the widest spread between" ..
    " the fastest and slowest run of one figure was %.0f%% (%s)."):format(
    max_spread.n, max_spread.spread * 100, max_spread.key))
end
md:write(" `sqorm raw` and `lua_floor raw` are scans returning rows keyed by",
  " column name (`raw = true`).\n\n")
md:write(md_table(header, rows), "\n")
if #rss_rows > 0 then
  md:write("\nPeak resident memory of the client process (VmHWM).\n\n")
  md:write(md_table(rss_header, rss_rows), "\n")
end
md:write("\n## Targets of issue 15\n\n")
md:write(("%d met, %d missed, %d not measured%s. Round trips and bulk inserts are" ..
  " measured against raw C, scans and streams against lua_floor, include against the raw C join."):format(
  n_met, n_missed, n_none, official and "" or
  (" — " .. scale_note .. ", so indicative only: the targets are for SCALE=1, medians of 3")))
md:write("\n\n", md_table(target_header, targets, 3), "\n")
write_unavailable(md)
md:write("\n![ops/s per workload](", prefix:match("[^/]*$"), ".png)\n")
md:close()

-- Chart -----------------------------------------------------------------

-- One data block per database: a row per workload, a column per client.
-- Only databases with at least one figure get a panel.
local dat = assert(io.open(prefix .. ".dat", "w"))
local lo, hi = math.huge, 0
local panels = {}
for _, db in ipairs(DBS) do
  local any = false
  for _, w in ipairs(WORKLOADS) do
    for _, c in ipairs(clients) do
      local r = get(w, db, c)
      any = any or (r ~= nil and r.rate > 0)
    end
  end
  if any then panels[#panels + 1] = db end
end
for i, db in ipairs(panels) do
  if i > 1 then dat:write("\n\n") end
  -- The header is a comment: as a data line it would take a cluster slot.
  dat:write("# ", db, ": workload")
  for _, c in ipairs(clients) do dat:write(" ", c) end
  dat:write("\n")
  for _, w in ipairs(WORKLOADS) do
    dat:write(w)
    for _, c in ipairs(clients) do
      local r = get(w, db, c)
      if r and r.rate > 0 then
        lo, hi = math.min(lo, r.rate), math.max(hi, r.rate)
        dat:write(" ", string.format("%.1f", r.rate))
      else
        dat:write(" NaN")
      end
    end
    dat:write("\n")
  end
end
dat:close()

if hi == 0 then os.exit(0) end
if os.execute("command -v gnuplot >/dev/null 2>&1") ~= true then
  io.stderr:write("report: gnuplot not found, no chart\n")
  os.exit(0)
end

-- Log axis from the decade below the slowest bar to the one above the
-- fastest, identical in every facet so they can be compared by eye.
local ymin = 10 ^ math.floor(math.log(lo, 10))
local ymax = 10 ^ math.ceil(math.log(hi, 10) + 0.05)
local colors = {
  sqorm = "#55a868", sqorm_raw = "#8fd19e", sqorm_noret = "#2d6a3e",
  lua_floor = "#8172b3", lua_floor_raw = "#b8addb", raw_c = "#4c72b0",
  luasql = "#dd8452", sequelize = "#c44e52", sqlalchemy_orm = "#937860",
  sqlalchemy_core = "#ccb974",
}
local fallback = { "#64b5cd", "#da8bc3", "#8c8c8c" }

local gp = {}
local function g(s, ...) gp[#gp + 1] = s:format(...) end
g("set terminal pngcairo size %d,%d font 'Sans,11'", math.max(1200, 150 * #clients + 300),
  100 + 470 * #panels)
g("set output '%s.png'", prefix)
g("set datafile missing 'NaN'")
g("set style data histograms")
g("set style histogram clustered gap 1")
g("set style fill solid 0.9 border -1")
g("set boxwidth 0.9")
g("set logscale y")
g("set yrange [%g:%g]", ymin, ymax)
g("set format y '10^{%%L}'")
g("set ytics nomirror")
g("set grid ytics")
-- Enhanced text would turn the underscores of names into subscripts.
g("set xtics nomirror noenhanced scale 0")
g("set key outside right top vertical")
g("set ylabel 'ops/s (log scale)'")
g("set multiplot layout %d,1 title 'sqorm bench: operations per second, "
  .. "higher is better (%s)' font 'Sans,14'", #panels, scale_note)
for i, db in ipairs(panels) do
  g("set title '%s'", db)
  local plots = {}
  for j, c in ipairs(clients) do
    local color = colors[c] or fallback[(j - 1) % #fallback + 1]
    -- A client with no figure on this database would only draw a warning.
    local any = false
    for _, w in ipairs(WORKLOADS) do any = any or get(w, db, c) ~= nil end
    if any then plots[#plots + 1] = ("'%s.dat' index %d using %d:xtic(1) title '%s' "
      .. "noenhanced lc rgb '%s'"):format(prefix, i - 1, j + 1, label(c), color) end
  end
  g("plot %s", table.concat(plots, ", \\\n     "))
end
g("unset multiplot")

local p = assert(io.popen("gnuplot", "w"))
p:write(table.concat(gp, "\n"), "\n")
local ok = p:close()
if not ok then
  io.stderr:write("report: gnuplot failed\n")
  os.exit(1)
end
