-- check-docs.lua -- the API reference (doc/ref/*.lua, LDoc) against the
-- real module: every public function and value reachable from
-- `require "sqorm"` (the module and its tables, and the methods of a Db,
-- a Model, an instance, a Tx and a cursor) must be documented, and
-- everything documented must exist. Exits 1 listing the differences.
--
--   lua5.4 scripts/check-docs.lua [DOC_DIR]     (LUA_PATH/LUA_CPATH: scripts/env.sh)
--   lua5.4 scripts/check-docs.lua --list        prints what the module exposes
local doc_dir = "doc/ref"
local list_only = false
for _, a in ipairs(arg) do
  if a == "--list" then list_only = true else doc_dir = a end
end

local sqorm = require "sqorm"

-- ---------------------------------------------------------------- the module
local found, kinds = {}, {}
local function add(name, what)
  found[name] = true
  kinds[name] = what
end

local function public(k) return type(k) == "string" and not k:match("^_") end

local function has_public(t)
  for k in pairs(t) do
    if public(k) then return true end
  end
  return false
end

-- The module, and its tables of functions (op, fn, types, env): a table
-- with public keys is walked, anything else is a value to document.
local function walk(prefix, t, depth)
  for k, v in pairs(t) do
    if public(k) then
      local name = prefix .. "." .. k
      if type(v) == "function" then
        add(name, "function")
      elseif type(v) == "table" and depth < 2 and has_public(v) then
        walk(name, v, depth + 1)
      else
        add(name, "value")
      end
    end
  end
end
walk("sqorm", sqorm, 1)

-- An object's methods: its metatable's __index table, or the tables an
-- __index function reaches through its upvalues (the binding keeps its
-- method tables there).
local function methods(class, obj)
  local mt = getmetatable(obj)
  assert(type(mt) == "table", class .. ": no metatable")
  local idx = mt.__index
  local tables = {}
  if type(idx) == "table" then
    tables[1] = idx
  elseif type(idx) == "function" then
    for i = 1, 255 do
      local n, v = debug.getupvalue(idx, i)
      if not n then break end
      if type(v) == "table" then tables[#tables + 1] = v end
    end
  end
  local n = 0
  for _, t in ipairs(tables) do
    for k, v in pairs(t) do
      if public(k) and type(v) == "function" then
        add(class .. ":" .. k, "method")
        n = n + 1
      end
    end
  end
  assert(n > 0, class .. ": no methods found (did the binding change how they are reached?)")
end

local T = sqorm.types
local db = sqorm.connect("sqlite::memory:")
methods("Db", db)
local Player = db:define("player", { { "id", T.INTEGER, primary_key = true }, { "name", T.STRING(16) } })
methods("Model", Player)
db:sync()
methods("Instance", Player:build{ id = 1, name = "a" })
local tx = db:begin()
methods("Tx", tx)
tx:rollback()
local it, _, _, closing = Player:each()
methods("Cursor", closing or it)
if closing then closing:close() end
db:close()

if list_only then
  local names = {}
  for n in pairs(found) do names[#names + 1] = n end
  table.sort(names)
  for _, n in ipairs(names) do print(kinds[n], n) end
  os.exit(0)
end

-- ---------------------------------------------------------------- the docs
-- Documented names, from the stubs: `function sqorm.connect(...)`,
-- `function Db:query(...)`, `-- @function name` and `-- @field name` (the
-- module's or class's), each right under an LDoc comment ("---").
local prefix_of = { sqorm = "sqorm", ["sqorm.op"] = "sqorm.op", ["sqorm.fn"] = "sqorm.fn",
                    ["sqorm.types"] = "sqorm.types", ["sqorm.env"] = "sqorm.env" }
local documented, where = {}, {}
local problems = {}

local function files(dir)
  local p = io.popen('ls "' .. dir .. '"/*.lua 2>/dev/null')
  local out = {}
  for f in p:lines() do out[#out + 1] = f end
  p:close()
  return out
end

local doc_files = files(doc_dir)
if #doc_files == 0 then
  io.stderr:write("check-docs: no doc sources in " .. doc_dir .. "\n")
  os.exit(1)
end

for _, file in ipairs(doc_files) do
  local module, class, in_doc = nil, nil, false
  local lineno = 0
  for line in io.lines(file) do
    lineno = lineno + 1
    local m = line:match("@module%s+([%w_.]+)")
    if m then module, class = m, nil end
    local c = line:match("@classmod%s+([%w_]+)")
    if c then class, module = c, nil end
    local function note(name)
      if documented[name] then
        problems[#problems + 1] = ("%s:%d: %s documented twice (also %s)"):format(file, lineno, name, where[name])
      end
      documented[name] = true
      where[name] = file .. ":" .. lineno
    end
    local base, sep, fname = line:match("^%s*function%s+([%w_]+)([.:])([%w_]+)%s*%(")
    if base then
      if not in_doc then
        problems[#problems + 1] = ("%s:%d: %s%s%s has no LDoc comment (---) right above it"):format(
          file, lineno, base, sep, fname)
      end
      if sep == ":" then
        note(base .. ":" .. fname)
      else
        local owner = class or (prefix_of[module or ""] or module)
        note((owner or base) .. "." .. fname)
      end
    end
    local tagged = line:match("^%s*%-%-.-@function%s+([%w_]+)") or line:match("^%s*%-%-.-@field%s+([%w_]+)")
    if tagged and (module or class) then
      if class then note(class .. ":" .. tagged) else note((prefix_of[module] or module) .. "." .. tagged) end
    end
    if line:match("^%s*%-%-%-") then
      in_doc = true
    elseif not line:match("^%s*%-%-") then
      in_doc = false
    end
  end
end

local missing, stale = {}, {}
for n in pairs(found) do
  if not documented[n] then missing[#missing + 1] = ("%s (%s)"):format(n, kinds[n]) end
end
for n in pairs(documented) do
  if not found[n] then stale[#stale + 1] = n .. "  [" .. where[n] .. "]" end
end
table.sort(missing)
table.sort(stale)
local nfound = 0
for _ in pairs(found) do nfound = nfound + 1 end
for _, p in ipairs(problems) do print("check-docs: " .. p) end
if #missing > 0 then
  print("check-docs: public functions and values the reference does not document:")
  for _, n in ipairs(missing) do print("  " .. n) end
end
if #stale > 0 then
  print("check-docs: documented, but the module has no such thing:")
  for _, n in ipairs(stale) do print("  " .. n) end
end
if #missing + #stale + #problems > 0 then os.exit(1) end
print(("check-docs: all %d public functions and values are documented (%s)"):format(nfound, doc_dir))
