-- report.lua: turns RESULT lines into a table, a markdown file and a chart.
--
--   lua5.4 bench/report.lua bench/results/latest.txt bench/results/latest
--
-- writes <prefix>.md, <prefix>.dat and <prefix>.png (through gnuplot, when
-- installed) and prints the table on stdout. Exits non-zero only when the
-- input is unreadable; a missing figure shows as "-".

local input, prefix = arg[1], arg[2]
if not (input and prefix) then
  io.stderr:write("usage: lua5.4 report.lua RESULTS.txt OUTPUT_PREFIX\n")
  os.exit(2)
end

local WORKLOADS = {
  "insert_single", "bulk_insert", "pk_lookup", "scan", "update",
  "txn_transfer", "stream",
}
-- What one "op" is, so that rows/s and transactions/s are not confused.
local UNIT = {
  insert_single = "row", bulk_insert = "row", pk_lookup = "lookup",
  scan = "row", update = "load+save", txn_transfer = "txn", stream = "row",
}
local DBS = { "sqlite", "mysql", "postgres" }
local CLIENT_ORDER = { "raw_c", "luasql", "sqorm" }

-- Parse -----------------------------------------------------------------

local f, err = io.open(input)
if not f then
  io.stderr:write("report: ", err, "\n")
  os.exit(1)
end
local res, meta, seen_client, failed = {}, {}, {}, {}
for line in f:lines() do
  local w, db, c, ops, secs, rate, rss = line:match(
    "^RESULT (%S+) (%S+) (%S+) (%S+) (%S+) (%S+) (%S+)")
  if w then
    res[w .. " " .. db .. " " .. c] = {
      ops = tonumber(ops), secs = tonumber(secs), rate = tonumber(rate),
      rss = tonumber(rss),
    }
    seen_client[c] = true
  elseif line:match("^# FAILED") then
    failed[#failed + 1] = line:sub(3)
  elseif line:match("^# ") and not line:match("^# RESULT") then
    meta[#meta + 1] = line:sub(3)
  end
end
f:close()

local clients = {}
for _, c in ipairs(CLIENT_ORDER) do
  if seen_client[c] then clients[#clients + 1] = c; seen_client[c] = nil end
end
for c in pairs(seen_client) do clients[#clients + 1] = c end  -- any others
local has = {}
for _, c in ipairs(clients) do has[c] = true end

local function get(w, db, c) return res[w .. " " .. db .. " " .. c] end

-- Ratio columns: how far the baseline sits from the floor, and, once the
-- sqorm client exists, how sqorm compares with both.
local ratios = {}
if has.luasql and has.raw_c then ratios[#ratios + 1] = { "luasql", "raw_c" } end
if has.sqorm and has.raw_c then ratios[#ratios + 1] = { "sqorm", "raw_c" } end
if has.sqorm and has.luasql then ratios[#ratios + 1] = { "sqorm", "luasql" } end

-- Formatting --------------------------------------------------------------

-- 1234567.8 -> "1,234,568"
local function thousands(x)
  local s = string.format("%.0f", x)
  local neg, digits = s:match("^(-?)(%d+)$")
  if not digits then return s end
  digits = digits:reverse():gsub("(%d%d%d)", "%1,"):reverse():gsub("^,", "")
  return neg .. digits
end

local function rate_cell(w, db, c)
  local r = get(w, db, c)
  return r and thousands(r.rate) or "-"
end

local function ratio_cell(w, db, a, b)
  local ra, rb = get(w, db, a), get(w, db, b)
  if not (ra and rb) or rb.rate <= 0 then return "-" end
  return string.format("%.2f", ra.rate / rb.rate)
end

-- Rows of cells shared by the text table and the markdown table.
local header = { "workload", "db", "op" }
for _, c in ipairs(clients) do header[#header + 1] = c .. " ops/s" end
for _, r in ipairs(ratios) do header[#header + 1] = r[1] .. "/" .. r[2] end

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

-- Peak client memory matters for the two workloads that move many rows.
local rss_header = { "workload", "db" }
for _, c in ipairs(clients) do rss_header[#rss_header + 1] = c .. " MiB" end
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

local function text_table(hdr, body)
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
      local left = i <= 3 and not cell:match("^[%d,.%-]+$")
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

local function md_table(hdr, body)
  local out = { "| " .. table.concat(hdr, " | ") .. " |" }
  local align = {}
  for i = 1, #hdr do align[i] = i <= 2 and ":--" or "--:" end
  if hdr[3] == "op" then align[3] = ":--" end
  out[#out + 1] = "| " .. table.concat(align, " | ") .. " |"
  for _, row in ipairs(body) do
    out[#out + 1] = "| " .. table.concat(row, " | ") .. " |"
  end
  return table.concat(out, "\n")
end

-- Text ------------------------------------------------------------------

print()
print(text_table(header, rows))
if #rss_rows > 0 then
  print()
  print("peak client RSS")
  print(text_table(rss_header, rss_rows))
end
for _, line in ipairs(failed) do print("!! " .. line) end
print()

-- Markdown --------------------------------------------------------------

local md = assert(io.open(prefix .. ".md", "w"))
md:write("# sqorm benchmark results\n\n")
for _, line in ipairs(meta) do md:write("    ", line, "\n") end
md:write("\nOperations per second, higher is better; `op` says what one",
  " operation is. Ratios above 1 mean the first client is faster.\n\n")
md:write(md_table(header, rows), "\n")
if #rss_rows > 0 then
  md:write("\nPeak resident memory of the client process (VmHWM).\n\n")
  md:write(md_table(rss_header, rss_rows), "\n")
end
if #failed > 0 then
  md:write("\nFailed runs:\n\n")
  for _, line in ipairs(failed) do md:write("- ", line, "\n") end
end
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
local scale_note = ""
for _, line in ipairs(meta) do
  scale_note = line:match("(SCALE=%S+)") or scale_note
end
local colors = { raw_c = "#4c72b0", luasql = "#dd8452", sqorm = "#55a868" }
local fallback = { "#8172b3", "#c44e52", "#937860" }

local gp = {}
local function g(s, ...) gp[#gp + 1] = s:format(...) end
g("set terminal pngcairo size 1200,%d font 'Sans,11'", 100 + 470 * #panels)
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
g("set key top right horizontal")
g("set ylabel 'ops/s (log scale)'")
g("set multiplot layout %d,1 title 'sqorm bench: operations per second, "
  .. "higher is better (%s)' font 'Sans,14'", #panels, scale_note)
for i, db in ipairs(panels) do
  g("set title '%s'", db)
  local plots = {}
  for j, c in ipairs(clients) do
    local color = colors[c] or fallback[(j - 1) % #fallback + 1]
    plots[#plots + 1] = ("'%s.dat' index %d using %d:xtic(1) title '%s' "
      .. "noenhanced lc rgb '%s'"):format(prefix, i - 1, j + 1, c, color)
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
