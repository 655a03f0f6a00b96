-- luacheck: max line length 180
-- fuzz/lua_api.lua -- the Lua API fuzzer (issue 16, item 2).
--
-- Random sequences of sqorm calls on SQLite with random, often hostile,
-- Lua values: nil, huge and binary strings, invalid UTF-8, NaN and
-- infinities, deep and cyclic tables, tables whose metatables raise
-- (__index, __pairs, __len, __tostring, __eq, __close), functions that
-- raise or yield, coroutines, userdata, closed handles, sqorm's own
-- values in the wrong places, validators, defaults and logging functions
-- that raise. Seeded: a seed and a budget give the same run again.
--
-- Every call runs under pcall. A failure must be an error object of
-- sqorm's (`sqorm.is_error(e)`, with a non-empty `kind` and `message`),
-- or the very value a callback of the fuzzer raised, passed through
-- unchanged. Anything else - a plain string error from inside sqorm, a
-- kind `internal`, a crash, a sanitizer report, a leak (under
-- LeakSanitizer) - is a finding: it is printed with the seed, the step
-- and the action, and the run exits 1.
--
--   lua5.4 fuzz/lua_api.lua [--seed N] [--seeds K] [--steps N] [--seconds S] [--verbose] [--actions 1]
--
-- runs K seeds starting at N (default: seed 1, 4 seeds), each for N steps
-- (default 1500), stopping when S seconds (default 20, wall clock) have
-- passed in all. Prints one
-- line per seed and a summary: calls, errors by kind, findings.
-- scripts/run-tests.sh runs it under ASan+UBSan with LeakSanitizer
-- (build-asan/, step lua-fuzz); docs/reliability.md says how to run it
-- by hand.
--
-- Extending: an action is a function(S) registered with
--   action(name, weight, fn)
-- S holds the live objects (S.db, S.dbs, S.models, S.insts, S.txs,
-- S.cursors) and the value makers (S.any, S.hostile, S.where, S.opts...).
-- fn makes calls through S.call(what, f, ...), which runs f under pcall
-- and checks the error. A value a hook or scope function of the
-- fuzzer's raises (a table, an error object, nil) is registered
-- (S_raised, nil_raised) so it is told apart from sqorm's own errors.
-- docs/reliability.md lists what the fuzzer covers (async, associations,
-- hooks, scopes, optimistic locking, bulk_create options).

local sqorm = require "sqorm"
local T, op, fn = sqorm.types, sqorm.op, sqorm.fn

-- ------------------------------------------------------------------
-- Arguments
-- ------------------------------------------------------------------

local args = { seed = 1, seeds = 4, steps = 1500, seconds = 20, verbose = false, actions = 0 }
do
  local i = 1
  while i <= #arg do
    local a = arg[i]
    if a == "--verbose" then
      args.verbose = true
    elseif a:match("^%-%-") and arg[i + 1] then
      local k = a:sub(3)
      if args[k] == nil then error("lua_api.lua: unknown option " .. a) end
      args[k] = tonumber(arg[i + 1])
      i = i + 1
    else
      error("lua_api.lua: unknown argument " .. a)
    end
    i = i + 1
  end
end

-- ------------------------------------------------------------------
-- Random numbers (our own, so a seed means the same run on any Lua)
-- ------------------------------------------------------------------

local R = {}
do
  local state = 0
  function R.seed(s) state = (s * 2654435761 + 1) & 0xffffffff end
  local function next32()
    -- xorshift32
    local x = state
    x = x ~ ((x << 13) & 0xffffffff)
    x = x ~ (x >> 17)
    x = x ~ ((x << 5) & 0xffffffff)
    state = x & 0xffffffff
    if state == 0 then state = 1 end
    return state
  end
  function R.int(lo, hi) return lo + next32() % (hi - lo + 1) end
  function R.chance(p) return next32() % 1000 < p * 1000 end
  function R.pick(t) return t[R.int(1, #t)] end
end

-- ------------------------------------------------------------------
-- Findings and counters
-- ------------------------------------------------------------------

local USER = setmetatable({}, { __name = "fuzz user error", __tostring = function() return "FUZZ_USER_ERROR" end })
local USER_MSG = "FUZZ_USER_ERROR"

-- Yields when it can; where it can't (no coroutine, a C call in between)
-- Lua's own error is turned into the fuzzer's, so it is told apart from
-- an error of sqorm's.
local function try_yield(...)
  local ok, r = pcall(coroutine.yield, ...)
  if not ok then error(USER) end
  return r
end

-- Values the fuzzer's hooks and scope functions raised (tables, error
-- objects, ...): they must come back unchanged, and are passed through.
local S_raised = setmetatable({}, { __mode = "k" })
local nil_raised = 0

local stats = { steps = 0, calls = 0, ok = 0, errors = 0, kinds = {}, passed_through = 0, findings = 0, actions = {},
  hook_runs = 0, scope_runs = 0, late_releases = 0 }
local current = { seed = 0, step = 0, action = "" }

local function finding(what, detail)
  stats.findings = stats.findings + 1
  io.stderr:write(("FINDING (seed %d, step %d, action %s, call %s): %s\n"):format(current.seed, current.step,
    current.action, what, detail))
  if stats.findings >= 20 then
    io.stderr:write("lua_api.lua: too many findings, stopping\n")
    os.exit(1)
  end
end

-- Checks what a pcall returned.
local function check_error(what, ok, e)
  stats.calls = stats.calls + 1
  if ok then
    stats.ok = stats.ok + 1
    return true
  end
  stats.errors = stats.errors + 1
  if e == USER or (type(e) == "string" and e:find(USER_MSG, 1, true)) or (e ~= nil and S_raised[e]) then
    stats.passed_through = stats.passed_through + 1
    return false
  end
  if e == nil and nil_raised > 0 then
    -- a hook or scope function of the fuzzer's raised nil: it comes back
    -- unchanged (error(nil)), counted so a nil sqorm raised is still a finding
    nil_raised = nil_raised - 1
    stats.passed_through = stats.passed_through + 1
    return false
  end
  if not sqorm.is_error(e) then
    finding(what, "not an error object: " .. type(e) .. " " .. tostring(e))
    return false
  end
  local kind, msg = e.kind, e.message
  if type(kind) ~= "string" or kind == "" then
    finding(what, "error without a kind: " .. tostring(e))
  elseif type(msg) ~= "string" or msg == "" then
    finding(what, "error without a message: kind " .. kind)
  elseif kind == "internal" or kind == "nomem" then
    finding(what, "kind " .. kind .. ": " .. msg)
  end
  local s = tostring(e)
  if type(s) ~= "string" or not s:find("sqorm.Error", 1, true) then finding(what, "tostring(err) is " .. tostring(s)) end
  stats.kinds[kind or "?"] = (stats.kinds[kind or "?"] or 0) + 1
  return false
end

local S = {}

-- Runs f(...) under pcall and checks a failure; returns ok and the results.
function S.call(what, f, ...)
  local r = table.pack(pcall(f, ...))
  if args.verbose then
    local okm, msg = pcall(tostring, r[2]) -- (a hostile __tostring may raise)
    io.stderr:write(("  %s -> %s %s\n"):format(what, tostring(r[1]), r[1] and "" or (okm and msg or "?")))
  end
  check_error(what, r[1], r[2])
  return table.unpack(r, 1, r.n)
end

-- ------------------------------------------------------------------
-- Values
-- ------------------------------------------------------------------

local function bytes(n, lo, hi)
  local t = {}
  for i = 1, n do t[i] = string.char(R.int(lo or 0, hi or 255)) end
  return table.concat(t)
end

local NAMES = { "id", "name", "coins", "data", "when", "flag", "price", "tag", "nope", "", "a\"b", "a`b",
  "a'b", "select", "drop table t; --", "x;y", "/*c*/", "?", ":name", "$1", "\xc3\xbc", "tab\there", "nl\n",
  "\xc3\x28", "\0nul", ("x"):rep(64), ("y"):rep(300), "__index", "save", "get", "set", "_sqorm", "id ", "ID" }

local function deep(n, cyclic)
  local root = {}
  local t = root
  for _ = 1, n do
    local c = {}
    t[1] = c
    t.x = c
    t = c
  end
  if cyclic then t[1] = root end
  return root
end

local function raising_mt(which)
  local function boom() error(USER) end
  local mt = {}
  for _, k in ipairs(which) do mt[k] = boom end
  return mt
end

-- A value that hurts: every kind of Lua value, with sizes and shapes
-- that have broken C bindings before.
function S.hostile(depth)
  depth = depth or 0
  local c = R.int(1, 40)
  if c == 1 then return nil
  elseif c == 2 then return R.chance(0.5)
  elseif c == 3 then return R.pick({ 0, -1, 1, math.maxinteger, math.mininteger, 2 ^ 53, -0.0, 1 / 0, -1 / 0, 0 / 0, 1e308, 5e-324, 0.1 })
  elseif c == 4 then return R.int(-1000, 1000)
  elseif c == 5 then return bytes(R.int(0, 40))
  elseif c == 6 then return bytes(R.int(0, 20), 32, 126)
  elseif c == 7 then return ("\0"):rep(R.int(1, 10))
  elseif c == 8 then return ("A"):rep(R.pick({ 1000, 65536, 1048577 }))
  elseif c == 9 then return R.pick(NAMES)
  elseif c == 10 then return "\xff\xfe" .. bytes(5)
  elseif c == 11 then return {}
  elseif c == 12 then return deep(R.pick({ 10, 250, 5000 }), false)
  elseif c == 13 then return deep(R.int(1, 5), true)
  elseif c == 14 then local t = {} t[1] = t t.self = t return t
  elseif c == 15 then return setmetatable({}, raising_mt({ "__index", "__newindex", "__pairs", "__len", "__eq", "__lt", "__le", "__concat", "__call", "__tostring", "__name" }))
  elseif c == 16 then return setmetatable({ 1, 2, 3 }, raising_mt({ "__len", "__pairs" }))
  elseif c == 17 then return setmetatable({}, { __index = function(_, k) return k end })
  elseif c == 18 then return setmetatable({}, { __gc = function() error(USER) end, __close = function() error(USER) end })
  elseif c == 19 then return function() error(USER) end
  elseif c == 20 then return function() return try_yield(1) end
  elseif c == 21 then return function(...) return ... end
  elseif c == 22 then return coroutine.create(function() end)
  elseif c == 23 then local co = coroutine.create(function() error(USER) end) coroutine.resume(co) return co
  elseif c == 24 then return io.stdout
  elseif c == 25 then return sqorm.null
  elseif c == 26 then return S.opv()
  elseif c == 27 then return S.db or R.pick(S.dbs)
  elseif c == 28 then return S.model()
  elseif c == 29 then return S.inst()
  elseif c == 30 then return #S.txs > 0 and R.pick(S.txs) or nil
  elseif c == 31 then return sqorm.raw(R.pick({ "1 = 1", "coins > ?", "x' --", "; DROP TABLE players" }), { 1 })
  elseif c == 32 then return R.pick({ fn.now(), fn.uuidv4(), fn.count("id", "n"), fn.sum("coins") })
  elseif c == 33 then return sqorm.error(R.pick({ "usage", "nope", "" }), "fake")
  elseif c == 34 then return sqorm
  elseif c == 35 then return sqorm.types
  elseif c == 36 then return { ["$gt"] = 1, op = "gt", value = 1 }
  elseif c == 37 then return string.format("%d-%02d-%02d %02d:%02d:%02d", R.int(0, 9999), R.int(0, 13), R.int(0, 32), R.int(0, 25), R.int(0, 61), R.int(0, 61))
  elseif c == 38 and depth < 3 then
    local t = {}
    for i = 1, R.int(0, 5) do t[i] = S.hostile(depth + 1) end
    return t
  elseif c == 39 and depth < 3 then
    local t = {}
    for _ = 1, R.int(0, 4) do
      local k = S.hostile(depth + 1)
      if k ~= nil and k == k then t[k] = S.hostile(depth + 1) end
    end
    return t
  else
    return R.int(0, 100)
  end
end

-- A value of a column's sort, sometimes hostile.
function S.value()
  if R.chance(0.3) then return S.hostile() end
  return R.pick({ 1, 42, -7, "ann", "bob", "x'y", "", 3.5, true, false, sqorm.null, "2024-01-02", "2024-01-02 03:04:05",
    "12.50", "\0bin\255", "c0ffee00-0000-4000-8000-000000000000", R.int(-100000, 100000) })
end

-- An operator value (sometimes with hostile arguments).
function S.opv()
  local a, b = S.value(), S.value()
  local c = R.int(1, 17)
  local ok, v = pcall(function()
    if c == 1 then return op.eq(a)
    elseif c == 2 then return op.ne(a)
    elseif c == 3 then return op.gt(a)
    elseif c == 4 then return op.gte(a)
    elseif c == 5 then return op.lt(a)
    elseif c == 6 then return op.lte(a)
    elseif c == 7 then return op.between(a, b)
    elseif c == 8 then return op.not_between(a, b)
    elseif c == 9 then return op.in_({ a, b })
    elseif c == 10 then return op.not_in(R.chance(0.5) and {} or { a })
    elseif c == 11 then return op.like(R.pick({ "a%", "%", "_", "\\%", a }))
    elseif c == 12 then return op.not_like("%x")
    elseif c == 13 then return op.is_null()
    elseif c == 14 then return op.not_null()
    elseif c == 15 then return op.or_(op.lt(1), op.gt(a))
    elseif c == 16 then return op.and_(op.gte(0), op.lte(b))
    else return op.not_(op.eq(a)) end
  end)
  stats.calls = stats.calls + 1
  if ok then return v end
  check_error("op", ok, v)
  return nil
end

local COLS = { "id", "name", "coins", "data", "when", "flag", "price", "tag" }

-- A where table: columns with values, operators, lists; sometimes hostile.
function S.where(depth)
  depth = depth or 0
  if R.chance(0.1) then return S.hostile() end
  local w = {}
  for _ = 1, R.int(0, 3) do
    local k = R.chance(0.85) and R.pick(COLS) or S.hostile()
    local c = R.int(1, 6)
    local v
    if c == 1 then v = S.value()
    elseif c == 2 then v = S.opv()
    elseif c == 3 then v = { S.value(), S.value() }
    elseif c == 4 then v = sqorm.null
    elseif c == 5 and depth < 2 then
      w[#w + 1] = R.pick({ op.or_, op.and_ })(S.where(depth + 1), S.where(depth + 1))
      v = nil
    else v = S.value() end
    if k ~= nil and k == k and v ~= nil then
      local ok = pcall(function() w[k] = v end)
      if not ok then w = S.hostile() break end
    end
  end
  if R.chance(0.05) then w[#w + 1] = sqorm.raw(R.pick({ "coins > ?", "1 = 1", "'", "x; y", "a -- c", "/*" }), { S.value() }) end
  return w
end

-- Query options: sometimes right, sometimes not.
function S.opts()
  if R.chance(0.1) then return S.hostile() end
  local o = {}
  if R.chance(0.7) then o.where = S.where() end
  if R.chance(0.2) then o.order = R.pick({ { { "coins", "desc" }, "id" }, { "nope" }, { { "id", "sideways" } }, "id", S.hostile() }) end
  if R.chance(0.2) then o.limit = R.pick({ 1, 0, -1, 10, 2 ^ 63, 0.5, "3", S.hostile() }) end
  if R.chance(0.1) then o.offset = R.pick({ 0, 1, -5, S.hostile() }) end
  if R.chance(0.15) then o.attributes = R.pick({ { "id", "name" }, { fn.count("id", "n") }, { "nope" }, {}, S.hostile() }) end
  if R.chance(0.1) then o.group = R.pick({ { "coins" }, "name", S.hostile() }) end
  if R.chance(0.05) then o.having = S.where() end
  if R.chance(0.1) then o.raw = R.chance(0.5) end
  if R.chance(0.05) then o.lock = R.pick({ "update", "share", "nope", S.hostile() }) end
  if R.chance(0.05) then o.paranoid = S.hostile() end
  if R.chance(0.05) then pcall(function() o[S.hostile() or "bogus"] = S.hostile() end) end
  return o
end

-- Values for a write.
function S.values()
  if R.chance(0.1) then return S.hostile() end
  local v = {}
  for _ = 1, R.int(0, 5) do
    local k = R.chance(0.9) and R.pick(COLS) or S.hostile()
    if k ~= nil and k == k then pcall(function() v[k] = S.value() end) end
  end
  return v
end

-- ------------------------------------------------------------------
-- Live objects
-- ------------------------------------------------------------------

S.dbs, S.models, S.insts, S.txs, S.cursors = {}, {}, {}, {}, {}

local known_objs = setmetatable({}, { __mode = "k" }) -- the dbs and models sqorm gave the fuzzer
local function keep(list, v, max)
  if v == nil then return end
  if list == S.dbs or list == S.models then known_objs[v] = true end
  list[#list + 1] = v
  if #list > (max or 30) then table.remove(list, 1) end
end

-- Every Tx the main thread opened: a root Tx of the main thread stays
-- registered (and holds its connection) until it is ended, by design, so
-- the end of a seed ends them; those of coroutines go with the coroutine.
S.all_txs = setmetatable({}, { __mode = "k" })
local function keep_tx(tx)
  keep(S.txs, tx, 5)
  if not coroutine.isyieldable() then S.all_txs[#S.all_txs + 1] = tx end
end

function S.model() return #S.models > 0 and R.pick(S.models) or nil end
function S.inst() return #S.insts > 0 and R.pick(S.insts) or nil end
-- an instance (a table with a metatable: a find's result is one, never junk)
local function is_inst(v) return type(v) == "table" and getmetatable(v) ~= nil end

-- A validator: passes, fails, raises, yields, or normalises.
local function validator()
  return R.pick({
    function() return true end,
    function() return false, "fuzz says no" end,
    function() return nil end,
    function() error(USER) end,
    function() error(USER_MSG) end,
    function() try_yield() end,
    function(_, inst) if inst then inst.name = "normalised" end return true end,
    function(_, inst) if inst then inst.coins = S.hostile() end return true end,
    function() collectgarbage() return true end,
  })
end

-- A column list that define takes.
local function sane_columns()
  return {
    { "id", T.INTEGER, primary_key = true, auto_increment = true },
    { "name", T.STRING(32) },
    { "coins", T.INTEGER, allow_null = true, default = 0 },
    { "data", T.BLOB }, { "when", T.DATETIME }, { "flag", T.BOOLEAN }, { "price", T.DECIMAL(10, 2) }, { "tag", T.UUID },
  }
end

-- A column list for define, mostly sane.
local function columns()
  if R.chance(0.05) then return S.hostile() end
  local cols = {
    { "id", T.INTEGER, primary_key = true, auto_increment = true },
    { "name", T.STRING(R.pick({ 8, 32, 255 })), unique = R.chance(0.3) or nil },
    { "coins", T.INTEGER, allow_null = R.chance(0.5), default = R.pick({ 0, 5, nil }), validate = { min = R.pick({ 0, -10 }) } },
    { "data", T.BLOB },
    { "when", T.DATETIME },
    { "flag", T.BOOLEAN },
    { "price", T.DECIMAL(10, 2) },
    { "tag", T.UUID },
  }
  if R.chance(0.3) then cols[2].validate = { v = validator(), len = R.pick({ 3, { 1, 10 } }) } end
  if R.chance(0.2) then cols[3].default = function() if R.chance(0.3) then error(USER) end return 1 end end
  if R.chance(0.1) then cols[R.int(1, #cols)][2] = S.hostile() end
  if R.chance(0.1) then cols[R.int(1, #cols)][1] = S.hostile() end
  if R.chance(0.1) then pcall(function() cols[R.int(1, #cols)][S.hostile() or "x"] = S.hostile() end) end
  if R.chance(0.1) then cols[#cols + 1] = S.hostile() end
  if R.chance(0.05) then cols[2].comment = S.hostile() end
  return cols
end

-- ------------------------------------------------------------------
-- Actions
-- ------------------------------------------------------------------

local actions, total_weight = {}, 0
local function action(name, weight, f)
  actions[#actions + 1] = { name = name, weight = weight, fn = f }
  total_weight = total_weight + weight
end
S.action = action

local function logger()
  return R.pick({ false, print and function() end, function() error(USER) end, function(...) return ... end,
    function() try_yield() end, S.hostile() })
end

action("connect", 2, function()
  local url = R.pick({ "sqlite::memory:", "sqlite::memory:", "sqlite:", "sqlite://", "nope::x", "", "mysql://u:pw@\0",
    "sqlite::memory:?pool.max=2", "sqlite::memory:?x=1", "postgres://u:p@127.0.0.1:1/db?connect_timeout=1",
    S.hostile() })
  local o = nil
  if R.chance(0.5) then
    o = { logging = R.chance(0.5) and logger() or nil, benchmark = R.chance(0.3) and S.hostile() or nil,
      pool = R.chance(0.3) and { max = R.pick({ 1, 2, 0, -1, S.hostile() }) } or nil }
    if R.chance(0.1) then o = S.hostile() end
  end
  local ok, db = S.call("connect", sqorm.connect, url, o)
  if ok and db then
    keep(S.dbs, db, 6)
    if R.chance(0.5) then S.db = db end
  end
end)

action("close db", 1, function()
  local db = R.pick(S.dbs)
  if db and db ~= S.main then
    S.call("db:close", db.close, db)
    if S.db == db then S.db = S.main end
  end
end)

action("define", 4, function()
  local db = R.chance(0.9) and S.db or R.pick(S.dbs)
  if not db then return end
  local name = R.chance(0.8) and R.pick({ "player", "player", "item", "thing" }) or S.hostile()
  local o = nil
  if R.chance(0.6) then
    o = { table_name = R.chance(0.2) and S.hostile() or nil, timestamps = R.pick({ true, false, nil }),
      paranoid = R.chance(0.3) or nil }
    if R.chance(0.2) then o.indexes = R.pick({ { { fields = { "coins" } } }, { { fields = { "nope" } } }, S.hostile() }) end
    if R.chance(0.05) then o = S.hostile() end
  end
  local ok, m = S.call("define", db.define, db, name, columns(), o)
  if ok and m then keep(S.models, m, 10) end
end)

action("sync", 3, function()
  local m = S.model()
  local o = R.pick({ nil, { force = true }, { alter = true }, { alter = { drop = true } }, { force = S.hostile() }, S.hostile() })
  if m and R.chance(0.8) then S.call("Model:sync", m.sync, m, o)
  elseif S.db then S.call("db:sync", S.db.sync, S.db, o) end
end)

action("drop", 0.3, function()
  local m = S.model()
  if m then S.call("Model:drop", m.drop, m) end
end)

action("create", 8, function()
  local m = S.model()
  if not m then return end
  local ok, inst = S.call("create", m.create, m, S.values(), R.chance(0.1) and { fields = S.hostile() } or nil)
  if ok and inst then keep(S.insts, inst) end
end)

action("bulk_create", 2, function()
  local m = S.model()
  if not m then return end
  local list = {}
  for i = 1, R.int(0, 5) do list[i] = S.values() end
  if R.chance(0.1) then list = S.hostile() end
  S.call("bulk_create", m.bulk_create, m, list, R.chance(0.3) and { batch_size = R.pick({ 1, 2, 0, S.hostile() }) } or nil)
end)

action("build+save", 3, function()
  local m = S.model()
  if not m then return end
  local ok, inst = S.call("build", m.build, m, S.values())
  if ok and inst then
    S.call("inst:save", inst.save, inst, R.chance(0.2) and S.hostile() or nil)
    keep(S.insts, inst)
  end
end)

local READS = { "find_all", "find_one", "count", "find_by_pk", "sum", "min", "max", "avg" }
action("read", 10, function()
  local m = S.model()
  if not m then return end
  local what = R.pick(READS)
  local f = m[what]
  if what == "find_by_pk" then
    S.call(what, f, m, S.value(), R.chance(0.2) and S.opts() or nil)
  elseif what == "sum" or what == "min" or what == "max" or what == "avg" then
    S.call(what, f, m, R.chance(0.8) and R.pick(COLS) or S.hostile(), R.chance(0.5) and S.opts() or nil)
  else
    local ok, r = S.call(what, f, m, R.chance(0.9) and S.opts() or nil)
    if ok and what == "find_all" and type(r) == "table" then
      -- raw = true gives plain row tables: only instances are kept
      for i = 1, math.min(#r, 3) do if getmetatable(r[i]) ~= nil then keep(S.insts, r[i]) end end
    end
  end
end)

action("write many", 4, function()
  local m = S.model()
  if not m then return end
  local what = R.pick({ "update", "destroy", "restore", "increment", "decrement", "upsert", "find_or_create" })
  if what == "update" then S.call(what, m.update, m, S.values(), S.opts())
  elseif what == "destroy" or what == "restore" then S.call(what, m[what], m, R.chance(0.2) and { all = true } or S.opts())
  elseif what == "upsert" then S.call(what, m.upsert, m, S.values(), R.chance(0.3) and { conflict = R.pick({ { "id" }, { "name" }, S.hostile() }) } or nil)
  elseif what == "find_or_create" then
    S.call(what, m.find_or_create, m, R.chance(0.9) and { where = S.where(), defaults = R.chance(0.5) and S.values() or nil } or S.hostile())
  else
    S.call(what, m[what], m, R.chance(0.8) and { coins = R.pick({ 1, -1, 2 ^ 62, 0.5, S.hostile() }) } or S.hostile(), S.opts())
  end
end)

action("instance", 8, function()
  local inst = S.inst()
  if not inst then return end
  local c = R.int(1, 12)
  if c == 1 then S.call("inst.__index", function() return inst[R.chance(0.8) and R.pick(COLS) or S.hostile()] end)
  elseif c == 2 then S.call("inst.__newindex", function() inst[R.chance(0.8) and R.pick(COLS) or S.hostile()] = S.value() end)
  elseif c == 3 then S.call("inst:save", inst.save, inst, R.chance(0.2) and { fields = S.hostile() } or nil)
  elseif c == 4 then S.call("inst:update", inst.update, inst, S.values())
  elseif c == 5 then S.call("inst:destroy", inst.destroy, inst, R.chance(0.2) and { force = S.hostile() } or nil)
  elseif c == 6 then S.call("inst:reload", inst.reload, inst)
  elseif c == 7 then S.call("inst:changed", inst.changed, inst)
  elseif c == 8 then S.call("inst:to_table", inst.to_table, inst)
  elseif c == 9 then S.call("inst:increment", inst.increment, inst, R.chance(0.8) and "coins" or S.hostile(), R.pick({ 1, -1, { by = 2 }, S.hostile() }))
  elseif c == 10 then S.call("inst:get/set", function() inst:set(R.pick(COLS), S.value()) return inst:get(R.chance(0.8) and R.pick(COLS) or S.hostile()) end)
  elseif c == 11 then S.call("tostring(inst)", tostring, inst)
  else
    -- a method of one model's instance called on another value
    local other = R.pick({ S.hostile(), S.model(), S.db, S.inst() })
    S.call("inst method on other", R.pick({ inst.save, inst.reload, inst.destroy, inst.to_table }), other)
  end
end)

action("raw sql", 4, function()
  local db = S.db
  if not db then return end
  local sql = R.pick({ "SELECT 1 AS x", "SELECT ? AS x", "SELECT :a AS a", "SELECT * FROM players", "SELECT 1; SELECT 2",
    "DROP TABLE IF EXISTS nothing_here", "SELECT '", "/* unterminated", "SELECT $1", "SELECT ?1", "", "   ",
    "SELECT x'00' AS b", "VALUES (1), (2)", "PRAGMA foreign_keys", "SELECT zeroblob(100000) AS z", S.hostile() })
  local binds = R.pick({ nil, { 1 }, { a = 1 }, { S.value() }, { sqorm.null }, { nil, 2 }, S.hostile() })
  local o = R.pick({ nil, nil, { multi = true }, { timeout = R.pick({ 1, 0, -1, 1 / 0, 0 / 0, S.hostile() }) }, S.hostile() })
  S.call("db:" .. (R.chance(0.5) and "query" or "exec"), R.chance(0.5) and db.query or db.exec, db, sql, binds, o)
end)

action("db misc", 2, function()
  local db = R.chance(0.8) and S.db or R.pick(S.dbs)
  if not db then return end
  local c = R.int(1, 8)
  if c == 1 then S.call("authenticate", db.authenticate, db)
  elseif c == 2 then S.call("server_version", db.server_version, db)
  elseif c == 3 then S.call("pool_stats", db.pool_stats, db)
  elseif c == 4 then S.call("dialect", db.dialect, db)
  elseif c == 5 then S.call("model", db.model, db, R.chance(0.7) and R.pick({ "player", "item" }) or S.hostile())
  elseif c == 6 then S.call("models", db.models, db, R.chance(0.2) and S.hostile() or nil)
  elseif c == 7 then S.call("tostring(db)", tostring, db)
  else S.call("is_closed", db.is_closed, db) end
end)

-- Runs a few random actions (the body of a transaction or loop).
local run_some

action("transaction", 3, function()
  local db = S.db
  if not db then return end
  local how = R.int(1, 5)
  local body = function(tx)
    keep_tx(tx)
    run_some(R.int(0, 4))
    if how == 1 then error(USER) end
    if how == 2 then return S.hostile() end
    return 1
  end
  S.call("db:transaction", db.transaction, db, R.chance(0.9) and body or S.hostile(),
    R.chance(0.2) and { isolation = R.pick({ "serializable", "nope", S.hostile() }) } or nil)
end)

action("begin/commit", 3, function()
  local db = S.db
  if not db then return end
  local ok, tx = S.call("db:begin", db.begin, db, R.chance(0.1) and S.hostile() or nil)
  if ok and tx then
    keep_tx(tx)
    run_some(R.int(0, 3))
    local c = R.int(1, 4)
    if c == 1 then S.call("tx:commit", tx.commit, tx)
    elseif c == 2 then S.call("tx:rollback", tx.rollback, tx)
    elseif c == 3 then S.call("tx:is_open", tx.is_open, tx)
    end -- c == 4: left open, for __gc or a later action
  end
end)

action("old tx", 1, function()
  local tx = #S.txs > 0 and R.pick(S.txs) or nil
  if not tx then return end
  local f = R.pick({ tx.commit, tx.rollback, tx.is_open, tostring })
  S.call("old tx", f, tx)
end)

action("each", 3, function()
  local m = S.model()
  if not m then return end
  local ok, it, st, init, cur = S.call("each", m.each, m, R.chance(0.9) and S.opts() or nil)
  if not ok or type(it) ~= "function" then return end
  keep(S.cursors, cur, 5)
  local n = R.int(0, 5)
  S.call("each loop", function()
    local ctl = init
    for _ = 1, n do
      local row = it(st, ctl)
      if row == nil then break end
      ctl = row
      if R.chance(0.3) then run_some(1) end
    end
  end)
  if R.chance(0.5) and cur then S.call("cursor:close", cur.close, cur) end
end)

action("old cursor", 0.5, function()
  local cur = #S.cursors > 0 and R.pick(S.cursors) or nil
  if cur then S.call("old cursor", cur.close, cur) end
end)

action("coroutine", 2, function()
  -- sqorm calls inside a coroutine that yields between them (and from callbacks)
  local co = coroutine.create(function()
    run_some(R.int(1, 3))
    coroutine.yield()
    run_some(R.int(0, 2))
  end)
  for _ = 1, 3 do
    local ok, e = coroutine.resume(co)
    if not ok then check_error("coroutine body", false, e) break end
    if coroutine.status(co) == "dead" then break end
  end
  if R.chance(0.5) then coroutine.close(co) end
end)

action("module", 2, function()
  local c = R.int(1, 5)
  if c == 1 then S.call("sqorm.raw", sqorm.raw, S.hostile(), S.hostile())
  elseif c == 2 then S.call("sqorm.error", sqorm.error, S.hostile(), S.hostile())
  elseif c == 3 then S.call("sqorm.is_error", sqorm.is_error, S.hostile())
  elseif c == 4 then
    local f = R.pick({ fn.count, fn.sum, fn.min, fn.max, fn.avg })
    S.call("fn", f, S.hostile(), S.hostile())
  else
    local f = R.pick({ op.eq, op.in_, op.between, op.and_, op.or_, op.not_, op.like })
    S.call("op", f, S.hostile(), S.hostile())
  end
end)

action("model misc", 1, function()
  local m = S.model()
  if not m then return end
  local f = R.pick({ m.find_all, m.count, m.create, m.sync, m.each, m.update })
  -- a class method called on something that is not this model
  S.call("method on other", f, R.pick({ S.hostile(), S.inst(), S.db, R.pick(S.models) }), S.hostile())
end)

action("gc", 1, function()
  if R.chance(0.3) then
    -- forget some objects so __gc runs on open txs / cursors / dbs
    if #S.txs > 0 then table.remove(S.txs, 1) end
    if #S.cursors > 0 then table.remove(S.cursors, 1) end
    if #S.insts > 5 then table.remove(S.insts, 1) end
  end
  collectgarbage(R.pick({ "collect", "step" }))
end)

-- ------------------------------------------------------------------
-- Async: dbs with async = true (or "auto"), sqorm.spawn of random call
-- sequences, poll / run / pending / cancel at random points, per-call
-- and default timeouts, dbs closed with calls in flight, coroutines
-- abandoned (never resumed, closed, resumed by the wrong party) in the
-- middle of a call, errors raised inside spawned functions, on_error
-- handlers that raise or yield.
-- ------------------------------------------------------------------

S.cos, S.adbs, S.tmpfiles = {}, {}, {}

-- How run_some nests, per coroutine (a spawned coroutine starts one
-- deeper than its spawner, so spawns can't recurse without end).
local depths = setmetatable({}, { __mode = "k" })
local function depth_of(th) return depths[th or coroutine.running()] or 0 end

-- The on_error handler of a seed: what escapes a spawned coroutine is
-- checked like any failure (a sqorm error object or the fuzzer's own).
function S.on_error(e) check_error("error escaping a spawned coroutine", false, e) end

local function async_url()
  if R.chance(0.4) then return "sqlite::memory:" end
  local path = os.tmpname()
  S.tmpfiles[#S.tmpfiles + 1] = path
  return "sqlite://" .. path
end

action("async connect", 1, function()
  local o = { async = R.pick({ true, true, true, "auto", false, S.hostile() }),
    pool = { max = R.pick({ 1, 2, 3 }), acquire_timeout = R.pick({ 0.05, 0.2 }) }, connect_timeout = 0.2 }
  if R.chance(0.3) then o.timeout = R.pick({ 0.001, 0.05, 1, 0, -1, 1 / 0, 0 / 0, "1", S.hostile() }) end
  if R.chance(0.2) then o.logging = logger() end
  local ok, db = S.call("connect async", sqorm.connect, async_url(), o)
  if not (ok and db) then return end
  keep(S.dbs, db, 6)
  keep(S.adbs, db, 4)
  local function setup()
    local m = db:define("player", columns(), { table_name = "players" })
    keep(S.models, m, 10)
    m:sync({ force = true })
  end
  -- async = true can't sync from the main thread: in sqorm.run (or spawn)
  if coroutine.isyieldable() and R.chance(0.5) then S.call("async setup", setup)
  elseif not coroutine.isyieldable() and R.chance(0.8) then S.call("sqorm.run(setup)", sqorm.run, setup)
  else S.call("async setup, main thread", setup) end
  if R.chance(0.6) then S.db = db end
end)

-- The body of a spawned coroutine: random calls, then a return, an
-- error (the fuzzer's own, a sqorm error object, a string) or a yield
-- nobody answers.
local function spawn_body(inherit)
  return function(...)
    depths[coroutine.running()] = inherit + 1
    local _ = select("#", ...)
    run_some(R.int(1, 4))
    local c = R.int(1, 10)
    if c == 1 then error(USER)
    elseif c == 2 then error(sqorm.error("usage", "raised by a spawned function"))
    elseif c == 3 then error(USER_MSG .. " as a string")
    elseif c == 4 then try_yield("a yield sqorm knows nothing of") run_some(1)
    end
    return S.hostile()
  end
end

action("spawn", 5, function()
  local f = R.chance(0.95) and spawn_body(depth_of()) or S.hostile()
  local ok, co = S.call("sqorm.spawn", sqorm.spawn, f, S.hostile(), S.hostile())
  if ok and type(co) == "thread" then keep(S.cos, co, 20) end
end)

action("poll", 4, function()
  local c = R.int(1, 6)
  if c <= 3 then S.call("sqorm.poll", sqorm.poll, R.chance(0.1) and S.hostile() or nil)
  elseif c == 4 then S.call("sqorm.pending", sqorm.pending)
  elseif c == 5 then S.call("sqorm.pollfd", sqorm.pollfd)
  else
    -- poll until nothing is pending (bounded)
    S.call("poll loop", function()
      for _ = 1, 200 do
        if sqorm.pending() == 0 then break end
        sqorm.poll()
      end
    end)
  end
end)

action("sqorm.run", 1.5, function()
  local f = R.chance(0.95) and spawn_body(depth_of()) or S.hostile()
  S.call("sqorm.run", sqorm.run, f, S.hostile())
end)

action("cancel", 1.5, function()
  local target = (#S.cos > 0 and R.chance(0.8)) and R.pick(S.cos) or S.hostile()
  S.call("sqorm.cancel", sqorm.cancel, target)
  if R.chance(0.2) then S.call("sqorm.cancel(running)", sqorm.cancel, coroutine.running()) end
end)

action("resume spawned", 1, function()
  -- the script resumes a coroutine sqorm is waiting for (or one that
  -- waits for the script), with junk values, or closes it
  if #S.cos == 0 then return end
  local co = R.pick(S.cos)
  if coroutine.status(co) ~= "suspended" then return end
  if R.chance(0.2) then
    S.call("coroutine.close(spawned)", function() coroutine.close(co) end)
  else
    local ok, e = coroutine.resume(co, S.hostile(), S.hostile())
    if not ok then check_error("resume spawned", false, e) end
  end
end)

action("on_error", 0.5, function()
  local h = R.pick({ S.on_error, S.on_error, function() error(USER) end, function() try_yield() end,
    function(e, co) S.on_error(e) return co end, S.hostile() })
  S.call("sqorm.on_error", sqorm.on_error, h)
end)

action("abandon", 1.5, function()
  -- a coroutine of the script's own that makes calls (async: it yields
  -- to the script in the middle of one), then is never resumed, closed,
  -- or dropped for the collector
  local d = depth_of()
  local co = coroutine.create(function()
    depths[coroutine.running()] = d + 1
    run_some(R.int(1, 3))
  end)
  local ok, e = coroutine.resume(co)
  if not ok then check_error("abandoned coroutine", false, e) end
  local c = R.int(1, 3)
  if c == 1 then S.call("coroutine.close(mid-call)", function() coroutine.close(co) end)
  elseif c == 2 then keep(S.cos, co, 20) end
  co = nil -- luacheck: ignore
  if R.chance(0.3) then collectgarbage() end
end)

action("close async db", 0.7, function()
  local db = #S.adbs > 0 and R.pick(S.adbs) or nil
  if not db or db == S.main then return end
  -- calls in flight on it, then it is closed
  for _ = 1, R.int(0, 3) do
    keep(S.cos, sqorm.spawn(function()
      S.call("query before close", db.query, db, R.pick({ "SELECT 1 AS x", "SELECT * FROM players",
        "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 100000) SELECT count(*) AS n FROM c" }),
        nil, R.chance(0.3) and { timeout = R.pick({ 0.001, 0.01, 1 }) } or nil)
      run_some(R.int(0, 1))
    end), 20)
  end
  S.call("db:close (calls in flight)", db.close, db)
  if S.db == db then S.db = S.main end
  if R.chance(0.5) then S.call("sqorm.poll", sqorm.poll) end
end)

-- ------------------------------------------------------------------
-- Associations and include: a small world of associated models
-- (belongs_to, has_one, has_many, belongs_to_many), random include
-- trees (unknown and hostile names, nested, where / limit / order /
-- required / attributes junk, hostile aliases), op.has, accessors with
-- junk arguments.
-- ------------------------------------------------------------------

S.worlds, S.winsts, S.scoped = {}, {}, {}

-- association name -> { target model key, to-many?, singular }
local ASSOCS = {
  guild = { members = { "member", true, "member" } },
  member = { guild = { "guild", false }, profile = { "profile", false }, badges = { "badge", true, "badge" } },
  profile = { member = { "member", false } },
  badge = { members = { "member", true, "member" } },
}
local WCOLS = { "id", "name", "coins", "guild_id", "member_id", "bio", "label", "nope" }

local function junk_or(v, p)
  if R.chance(p or 0.1) then return S.hostile() end
  return v
end

local function define_world(db)
  local pk = { "id", T.INTEGER, primary_key = true, auto_increment = true }
  local w = { db = db }
  w.guild = db:define("guild", { pk, { "name", T.STRING(32) } }, { paranoid = R.chance(0.3) or nil })
  w.member = db:define("member", { pk, { "name", T.STRING(32) }, { "coins", T.INTEGER, default = 0 } })
  w.profile = db:define("profile", { pk, { "bio", T.TEXT } })
  w.badge = db:define("badge", { pk, { "label", T.STRING(16) } })
  local function assoc(m, how, target, o)
    if R.chance(0.1) then o[R.pick({ "as", "foreign_key", "on_delete", "through", "scope", "lazy", "bogus" })] = S.hostile() end
    if R.chance(0.05) then target = S.hostile() end
    S.call(how, m[how], m, target, o)
  end
  assoc(w.guild, "has_many", w.member, { as = "members", foreign_key = "guild_id",
    scope = R.chance(0.2) and { coins = op.gte(0) } or nil })
  assoc(w.member, "belongs_to", w.guild, { as = "guild", foreign_key = "guild_id",
    lazy = R.chance(0.2) and "raise" or nil })
  assoc(w.member, "has_one", w.profile, { as = "profile", foreign_key = "member_id" })
  assoc(w.profile, "belongs_to", w.member, { as = "member", foreign_key = "member_id" })
  assoc(w.member, "belongs_to_many", w.badge, { as = "badges", through = "member_badges",
    foreign_key = "member_id", other_key = "badge_id" })
  assoc(w.badge, "belongs_to_many", w.member, { as = "members", through = "member_badges",
    foreign_key = "badge_id", other_key = "member_id" })
  db:sync({ force = true })
  local gs = w.guild:bulk_create({ { name = "red" }, { name = "blue" } })
  for i = 1, 4 do
    local m = w.member:create({ name = "m" .. i, coins = i * 10, guild_id = gs[1 + i % 2].id })
    S.winsts[#S.winsts + 1] = { m, "member", w }
  end
  w.badge:bulk_create({ { label = "gold" }, { label = "iron" } })
  return w
end

action("assoc define", 1, function()
  local db = R.chance(0.9) and S.db or R.pick(S.dbs)
  if not db then return end
  local ok, w = S.call("define world", function()
    if coroutine.isyieldable() or R.chance(0.3) then return define_world(db) end
    return sqorm.run(define_world, db) -- an async db syncs in a coroutine
  end)
  if ok and type(w) == "table" and w.guild then
    keep(S.worlds, w, 3)
    keep(S.models, w.member, 10)
  end
end)

-- A random include list for model key mk.
local function include_tree(mk, depth)
  if R.chance(0.05) then return S.hostile() end
  local names = {}
  for k in pairs(ASSOCS[mk] or {}) do names[#names + 1] = k end
  table.sort(names)
  local list = {}
  for _ = 1, R.int(0, 3) do
    local name = R.chance(0.85) and R.pick(names) or R.pick({ "nope", "", "members; DROP TABLE guilds", "__index",
      "get_members", "guild.members", S.hostile() })
    local item
    local c = R.int(1, 4)
    if c == 1 or name == nil then item = name
    else
      item = {}
      if R.chance(0.8) then item[1] = name else item.as = name end
      if R.chance(0.05) then item.as = R.pick({ "x\"y", "a`b", "alias -- c", "\0", S.hostile() }) end
      if R.chance(0.05) then item.model = R.pick({ S.model(), S.hostile() }) end
      if R.chance(0.3) then item.where = junk_or({ [R.pick(WCOLS)] = S.value() }) end
      if R.chance(0.2) then item.attributes = R.pick({ { "id" }, { "nope" }, { "name", "label" }, {}, { exclude = { "id" } }, S.hostile() }) end
      if R.chance(0.2) then item.order = R.pick({ { { "id", "desc" } }, "id", { "nope" }, { { "id", "sideways" } }, S.hostile() }) end
      if R.chance(0.2) then item.limit = R.pick({ 1, 2, 0, -1, 2 ^ 63, 0.5, S.hostile() }) end
      if R.chance(0.1) then item.offset = R.pick({ 0, 1, -1, S.hostile() }) end
      if R.chance(0.2) then item.required = R.pick({ true, false, S.hostile() }) end
      if R.chance(0.05) then item.paranoid = R.pick({ true, false, S.hostile() }) end
      if R.chance(0.05) then item.unscoped = R.pick({ true, S.hostile() }) end
      if R.chance(0.05) then pcall(function() item[S.hostile() or "bogus"] = S.hostile() end) end
      local a = ASSOCS[mk] and ASSOCS[mk][name]
      if a and depth < 3 and R.chance(0.4) then item.include = include_tree(a[1], depth + 1) end
    end
    list[#list + 1] = item
  end
  if R.chance(0.1) then list = list[1] end -- one item, not a list
  return list
end

action("include", 6, function()
  local w = #S.worlds > 0 and R.pick(S.worlds) or nil
  if not w then return end
  local mk = R.pick({ "guild", "member", "member", "profile", "badge" })
  local m = w[mk]
  local o = R.chance(0.3) and S.opts() or {}
  if type(o) ~= "table" then o = {} end
  pcall(function()
    o.where = nil
    o.attributes = R.chance(0.1) and o.attributes or nil
    o.group, o.having = nil, nil
    o.include = include_tree(mk, 0)
    if R.chance(0.2) then
      local names = {}
      for k in pairs(ASSOCS[mk]) do names[#names + 1] = k end
      local n = R.chance(0.8) and R.pick(names) or S.hostile()
      o.where = { R.chance(0.7) and op.has(n, R.chance(0.5) and { id = op.gt(0) } or nil) or S.hostile() }
    end
    if R.chance(0.1) then o.lazy = R.pick({ "raise", "nope", S.hostile() }) end
  end)
  local what = R.pick({ "find_all", "find_all", "find_one", "find_by_pk", "find_and_count_all", "count" })
  local ok, r
  if what == "find_by_pk" then ok, r = S.call("include " .. what, m.find_by_pk, m, R.pick({ 1, 2, S.value() }), o)
  else ok, r = S.call("include " .. what, m[what], m, o) end
  if ok and type(r) == "table" then
    local rows = r.rows or r
    if getmetatable(rows) == nil then
      for i = 1, math.min(#rows, 2) do
        if type(rows[i]) == "table" and getmetatable(rows[i]) ~= nil then
          S.winsts[#S.winsts + 1] = { rows[i], mk, w }
          keep(S.insts, rows[i])
        end
      end
    elseif getmetatable(r) ~= nil then
      S.winsts[#S.winsts + 1] = { r, mk, w }
    end
    while #S.winsts > 20 do table.remove(S.winsts, 1) end
  end
end)

action("accessor", 5, function()
  if #S.winsts == 0 then return end
  local e = R.pick(S.winsts)
  local inst, mk, w = e[1], e[2], e[3]
  local names = {}
  for k in pairs(ASSOCS[mk]) do names[#names + 1] = k end
  table.sort(names)
  local as = R.chance(0.9) and R.pick(names) or R.pick({ "nope", "", S.hostile() })
  local a = ASSOCS[mk][as]
  local verbs = a and a[2] and { "get_", "count_", "has_", "add_", "remove_", "set_", "create_" } or { "get_", "set_", "create_" }
  local verb = R.pick(verbs)
  local mname = verb .. ((verb == "create_" and a and a[3]) or tostring(as))
  local target = a and w[a[1]]
  local function arg()
    local c = R.int(1, 9)
    if c == 1 then return S.hostile()
    elseif c == 2 then return R.pick({ 1, 2, 3, -1, 0 })
    elseif c == 3 and #S.winsts > 0 then return R.pick(S.winsts)[1]
    elseif c == 4 then return { R.pick({ 1, 2 }), R.chance(0.5) and R.pick(S.winsts)[1] or S.hostile() }
    elseif c == 5 then return S.opts()
    elseif c == 6 then return S.values()
    elseif c == 7 and target then
      local ok, t = pcall(target.find_one, target)
      return ok and t or nil
    elseif c == 8 then return { name = "new", label = "x", bio = "b", coins = S.value() }
    end
    return nil
  end
  if R.chance(0.1) then
    S.call("inst." .. tostring(as), function() return inst[as] end) -- not loaded: usage, never SQL
    return
  end
  S.call("accessor " .. mname, function()
    local f = inst[mname]
    if f == nil then return end -- no such accessor: a plain nil field
    if R.chance(0.05) then return f(S.hostile(), arg()) end -- on the wrong value
    return f(inst, arg(), R.chance(0.2) and arg() or nil)
  end)
end)

-- ------------------------------------------------------------------
-- Hooks: the define option `hooks`, Model:add_hook / remove_hook,
-- db:add_hook / remove_hook with valid and junk events, names and
-- functions; hook functions that raise (strings, tables, error objects,
-- nil, values whose __tostring raises or returns no string), yield,
-- call back into the db (finds, writes, transactions, db:close), remove
-- themselves or add more hooks while running, put junk in ctx fields
-- and instances, call ctx:after_commit with junk or raising callbacks;
-- `individual_hooks` with junk.
-- ------------------------------------------------------------------

local HOOK_EVENTS = { "before_validate", "after_validate", "validation_failed",
  "before_create", "after_create", "before_update", "after_update",
  "before_save", "after_save", "before_destroy", "after_destroy",
  "before_restore", "after_restore", "before_upsert", "after_upsert",
  "before_bulk_create", "after_bulk_create", "before_bulk_update", "after_bulk_update",
  "before_bulk_destroy", "after_bulk_destroy", "before_bulk_restore", "after_bulk_restore",
  "before_find", "after_find" }
local CTX_FIELDS = { "where", "values", "records", "options", "increment", "instances", "result", "error", "model",
  "db", "transaction", "affected_rows", "nope" }

local function hook_event()
  if R.chance(0.9) then return R.pick(HOOK_EVENTS) end
  return R.pick({ "before_nothing", "", "Before_create", "before_create ", S.hostile() })
end

-- Raises something of the fuzzer's: a value sqorm must pass up unchanged.
local function raise_junk()
  local c = R.int(1, 8)
  if c == 1 then error(USER)
  elseif c == 2 then error(USER_MSG .. " from a hook")
  elseif c == 3 then local t = { USER_MSG } S_raised[t] = true error(t)
  elseif c == 4 then local e = sqorm.error("usage", "raised by a hook of the fuzzer") S_raised[e] = true error(e)
  elseif c == 5 then nil_raised = nil_raised + 1 error(nil)
  elseif c == 6 then
    local t = setmetatable({}, { __tostring = function() error(USER) end })
    S_raised[t] = true
    error(t)
  elseif c == 7 then
    local t = setmetatable({}, { __tostring = function() return R.pick({ 1, {}, false }) end, __name = R.pick({ 1, "x", {} }) })
    S_raised[t] = true
    error(t)
  else
    error(USER, R.int(0, 3))
  end
end

local hook_fn -- forward

-- The db / model a hook's ctx names, when a hook hasn't put junk there.
local known = known_objs
local function real(v, fallback)
  if v ~= nil and known[v] then return v end
  return fallback
end

-- A hook body: (subject, ctx) for instance events, (ctx) for the others.
local function hook_body(model, event)
  local function me(...) return hook_body(model, event)(...) end
  local c = R.int(1, 16)
  local self_fn
  self_fn = function(a, b)
    stats.hook_runs = stats.hook_runs + 1
    local ctx = (type(b) == "table" and b) or (type(a) == "table" and getmetatable(a) and a.model and a) or nil
    local inst = b ~= nil and a or nil
    if c == 1 then return nil
    elseif c == 2 then raise_junk()
    elseif c == 3 then try_yield("a hook yields")
    elseif c == 4 then run_some(R.int(1, 2)) -- anything, from inside a hook
    elseif c == 5 then
      -- call back into the model: create / find / destroy on it or another
      local m = R.chance(0.6) and ctx and real(ctx.model, S.model()) or S.model()
      if not m then return end
      local w = R.int(1, 4)
      if w == 1 then S.call("hook: create", m.create, m, S.values())
      elseif w == 2 then S.call("hook: find_all", m.find_all, m, { limit = 2 })
      elseif w == 3 then S.call("hook: destroy", m.destroy, m, { where = { id = R.int(1, 5) } })
      else S.call("hook: update", m.update, m, { coins = R.int(0, 9) }, { where = { id = R.int(1, 5) } }) end
    elseif c == 6 then
      local db = ctx and real(ctx.db, S.db) or S.db
      if db then
        S.call("hook: transaction", db.transaction, db, function(tx)
          keep_tx(tx)
          run_some(R.int(0, 2))
          if R.chance(0.3) then raise_junk() end
        end)
      end
    elseif c == 7 then
      -- close a db from inside a hook (the hook's own, now and then)
      local db = ctx and real(ctx.db)
      if not db or (db == S.main and R.chance(0.8)) then db = R.pick(S.dbs) end
      if db then S.call("hook: db:close", db.close, db) end
    elseif c == 8 then
      if R.chance(0.5) then S.call("hook: remove self", model.remove_hook, model, event, self_fn)
      else S.call("hook: remove all named", model.remove_hook, model, event, "fuzz") end
    elseif c == 9 then
      S.call("hook: add hook", model.add_hook, model, hook_event(), me, R.chance(0.3) and "fuzz" or nil)
    elseif c == 10 and ctx then
      for _ = 1, R.int(1, 3) do
        local k = R.pick(CTX_FIELDS)
        local v = R.pick({ S.hostile(), S.where(), S.values(), S.opts(), { S.values(), S.values() }, {} })
        S.call("hook: ctx." .. k .. " = junk", function() ctx[k] = v end)
      end
      if R.chance(0.2) then raise_junk() end
    elseif c == 11 and inst then
      for _ = 1, R.int(1, 3) do
        S.call("hook: inst field = junk", function() inst[R.chance(0.8) and R.pick(COLS) or S.hostile()] = S.value() end)
      end
    elseif c == 12 and ctx then
      local f = R.pick({ function() raise_junk() end, function() run_some(1) end, function() try_yield() end,
        function() return S.hostile() end, function() local db = real(ctx.db) if db then db:close() end end, S.hostile() })
      local how = R.int(1, 3)
      if how == 1 then S.call("ctx:after_commit", ctx.after_commit, ctx, f)
      elseif how == 2 then S.call("ctx:after_commit on junk", ctx.after_commit, S.hostile(), f)
      else ctx:after_commit(f) end -- its error goes up from the hook
    elseif c == 13 then
      return S.hostile(), S.hostile()
    elseif c == 14 and ctx and ctx.options ~= nil then
      S.call("hook: ctx.options junk", function() ctx.options[R.pick({ "where", "limit", "individual_hooks", "fields", S.hostile() or "x" })] = S.hostile() end)
    elseif c == 15 then
      local db = ctx and real(ctx.db, S.db) or S.db
      if db then S.call("hook: db:add_hook", db.add_hook, db, hook_event(), me, R.chance(0.3) and "fuzz" or nil) end
    else
      collectgarbage()
    end
  end
  return self_fn
end

hook_fn = function(model, event)
  if R.chance(0.05) then return S.hostile() end
  return hook_body(model, event)
end

-- The define option hooks = { event = fn or { fn, ... } }, often junk.
local function hooks_option(model_ref, sane)
  if not sane and R.chance(0.1) then return S.hostile() end
  local h = {}
  for _ = 1, R.int(1, 4) do
    local e = sane and R.pick(HOOK_EVENTS) or hook_event()
    local f = sane and hook_body(model_ref, e) or hook_fn(model_ref, e)
    if R.chance(0.2) then f = { f, hook_body(model_ref, e), not sane and R.chance(0.2) and S.hostile() or nil } end
    if e ~= nil and e == e then pcall(function() h[e] = f end) end
  end
  return h
end

local function any_model()
  if #S.worlds > 0 and R.chance(0.3) then
    local w = R.pick(S.worlds)
    return w[R.pick({ "guild", "member", "profile", "badge" })]
  end
  return S.model()
end

action("add_hook", 4, function()
  local m = any_model()
  if not m then return end
  local e = hook_event()
  local name = R.pick({ nil, nil, "fuzz", "fuzz2", "", S.hostile() })
  local f = hook_fn(m, e)
  if R.chance(0.8) then S.call("Model:add_hook", m.add_hook, m, e, f, name)
  else S.call("Model:add_hook on junk", m.add_hook, R.pick({ S.hostile(), S.db, S.inst() }), e, f, name) end
end)

action("remove_hook", 1.5, function()
  local m = any_model()
  if not m then return end
  S.call("Model:remove_hook", m.remove_hook, m, hook_event(), R.pick({ "fuzz", "fuzz2", S.hostile(), function() end }))
end)

action("db hooks", 1.5, function()
  local db = R.chance(0.8) and S.db or R.pick(S.dbs)
  if not db then return end
  local m = any_model() or S.model()
  if R.chance(0.7) then
    S.call("db:add_hook", db.add_hook, db, hook_event(), m and hook_fn(m, "x") or S.hostile(),
      R.pick({ nil, "fuzz", S.hostile() }))
  else
    S.call("db:remove_hook", db.remove_hook, db, hook_event(), R.pick({ "fuzz", S.hostile() }))
  end
end)

action("define hooked", 1.5, function()
  local db = R.chance(0.9) and S.db or R.pick(S.dbs)
  if not db then return end
  local box = {}
  -- hook bodies reach the model through a proxy filled in after define
  local proxy = setmetatable({}, { __index = function(_, k)
    local m = box.m
    if not m then error(USER) end
    local v = m[k]
    if type(v) == "function" then return function(_, ...) return v(m, ...) end end
    return v
  end })
  local sane = R.chance(0.7)
  local o = { table_name = "players", hooks = hooks_option(proxy, sane) }
  if R.chance(0.3) then o.version = R.pick({ true, "lock_version", not sane and S.hostile() or nil }) end
  local ok, m = S.call("define hooked", db.define, db, "player", sane and sane_columns() or columns(), o)
  if ok and m then
    box.m = m
    keep(S.models, m, 10)
    if R.chance(0.5) then S.call("sync hooked", m.sync, m) end
  end
end)

action("hooked writes", 4, function()
  local m = any_model()
  if not m then return end
  local ih = R.pick({ true, true, false, S.hostile() })
  local o = { where = R.chance(0.8) and { id = op.gte(R.int(0, 5)) } or S.where(), individual_hooks = ih }
  if R.chance(0.2) then o.all = true end
  local c = R.int(1, 6)
  if c == 1 then S.call("update individual_hooks", m.update, m, S.values(), o)
  elseif c == 2 then S.call("destroy individual_hooks", m.destroy, m, o)
  elseif c == 3 then S.call("restore individual_hooks", m.restore, m, o)
  elseif c == 4 then S.call("increment individual_hooks", m.increment, m, { coins = R.pick({ 1, -1, S.hostile() }) }, o)
  elseif c == 5 then S.call("decrement individual_hooks", m.decrement, m, "coins", o)
  else
    local list = {}
    for i = 1, R.int(0, 4) do list[i] = S.values() end
    S.call("bulk_create individual_hooks", m.bulk_create, m, list, { individual_hooks = ih })
  end
end)

action("hooks in spawn", 1.5, function()
  -- hooked calls (hooks that yield, raise, query) inside sqorm.spawn
  local d = depth_of()
  local ok, co = S.call("sqorm.spawn (hooks)", sqorm.spawn, function()
    depths[coroutine.running()] = d + 1
    local m = any_model()
    if not m then return end
    if R.chance(0.5) then pcall(m.add_hook, m, hook_event(), hook_fn(m, "spawn")) end
    local c = R.int(1, 4)
    if c == 1 then S.call("spawn: create", m.create, m, S.values())
    elseif c == 2 then S.call("spawn: find_all", m.find_all, m, S.opts())
    elseif c == 3 then S.call("spawn: update", m.update, m, S.values(), { where = { id = R.int(1, 5) }, individual_hooks = R.chance(0.5) })
    else
      local inst = S.inst()
      if inst then S.call("spawn: inst:save", inst.save, inst) end
    end
    run_some(R.int(0, 1))
  end)
  if ok and type(co) == "thread" then keep(S.cos, co, 20) end
  if R.chance(0.5) then S.call("sqorm.poll", sqorm.poll) end
end)

-- ------------------------------------------------------------------
-- Scopes: default_scope / scopes with junk (tables, functions that
-- return junk or raise, deep nesting), Model:scope(...) with junk,
-- unscoped(), every class method on scoped models (they join
-- S.models, so every action above calls them); version = true models
-- with stale saves; bulk_create's conflict options with junk.
-- ------------------------------------------------------------------

local function scope_table(depth, sane)
  depth = depth or 0
  if sane then
    return R.pick({ { where = { coins = op.gte(R.int(-5, 5)) } }, { order = { { "coins", "desc" } }, limit = 3 },
      { where = { name = op.ne("x") }, attributes = { "id", "name", "coins" } }, { paranoid = false }, {} })
  end
  if R.chance(0.1) then return S.hostile() end
  local t = {}
  if R.chance(0.7) then t.where = S.where() end
  if R.chance(0.2) then t.order = R.pick({ { { "coins", "desc" } }, "id", { "nope" }, S.hostile() }) end
  if R.chance(0.2) then t.limit = R.pick({ 1, 3, 0, -1, 0.5, S.hostile() }) end
  if R.chance(0.1) then t.offset = R.pick({ 0, 1, S.hostile() }) end
  if R.chance(0.1) then t.attributes = R.pick({ { "id", "name" }, { "nope" }, { exclude = { "id" } }, S.hostile() }) end
  if R.chance(0.1) then t.paranoid = R.pick({ true, false, S.hostile() }) end
  if R.chance(0.1) then t.raw = R.pick({ true, false, S.hostile() }) end
  if R.chance(0.05) then t.lock = R.pick({ "update", "nope", S.hostile() }) end
  if R.chance(0.05) then t.group = R.pick({ { "coins" }, S.hostile() }) end
  if R.chance(0.05) then t.distinct = R.pick({ true, S.hostile() }) end
  if R.chance(0.05) then t.include = R.pick({ { "nope" }, { { "x", where = {} } }, S.hostile() }) end
  if R.chance(0.05) then t.use_primary = S.hostile() end
  if R.chance(0.05) then t.lazy = R.pick({ "raise", S.hostile() }) end
  if R.chance(0.05) then pcall(function() t[S.hostile() or "bogus"] = S.hostile() end) end
  if R.chance(0.05) and depth < 3 then t.where = { op.and_(scope_table(depth + 1), S.where()) } end
  if R.chance(0.03) then t.where = deep(R.pick({ 10, 300, 3000 }), R.chance(0.3)) end
  return t
end

local function scope_fn_body()
  local c = R.int(1, 7)
  if c == 1 then return function() raise_junk() end
  elseif c == 2 then return function() return S.hostile() end
  elseif c == 3 then return function(...) return { where = { coins = op.gte(select(1, ...) or 0) }, limit = select(2, ...) } end
  elseif c == 4 then return function() try_yield() return {} end
  elseif c == 5 then return function() run_some(1) return scope_table() end
  elseif c == 6 then return function(n) return { limit = n } end
  else return function() return scope_table() end end
end

local function scope_fn()
  local f = scope_fn_body()
  return function(...) stats.scope_runs = stats.scope_runs + 1 return f(...) end
end

local SCOPE_NAMES = { "rich", "top", "f", "boom", "deep" }

action("define scoped", 2, function()
  local db = R.chance(0.9) and S.db or R.pick(S.dbs)
  if not db then return end
  local o = { table_name = "players" }
  local sane = R.chance(0.7)
  if R.chance(0.7) then o.default_scope = scope_table(0, sane) end
  if R.chance(0.9) then
    local sc = {}
    for _ = 1, R.int(1, 5) do
      local name = (sane or R.chance(0.9)) and R.pick(SCOPE_NAMES) or R.pick({ "default", "", S.hostile() })
      local v = R.chance(0.4) and scope_table(0, sane) or scope_fn()
      if name ~= nil and name == name then pcall(function() sc[name] = v end) end
    end
    o.scopes = (sane or R.chance(0.9)) and sc or S.hostile()
  end
  if R.chance(0.2) then o.hooks = hooks_option(setmetatable({}, { __index = function() error(USER) end }), sane) end
  if R.chance(0.1) then o.paranoid = true end
  local ok, m = S.call("define scoped", db.define, db, "player", sane and sane_columns() or columns(), o)
  if ok and m then
    keep(S.models, m, 10)
    keep(S.scoped, m, 5)
    if R.chance(0.3) then S.call("sync scoped", m.sync, m) end
  end
end)

local function scope_arg()
  local c = R.int(1, 6)
  if c <= 2 then return R.pick(SCOPE_NAMES)
  elseif c == 3 then return { R.pick(SCOPE_NAMES), S.value(), R.chance(0.5) and S.hostile() or nil }
  elseif c == 4 then return "default"
  elseif c == 5 then return R.pick({ "nope", "", { "top" }, { S.hostile() }, {} })
  else return S.hostile() end
end

action("scope", 5, function()
  local m = (#S.scoped > 0 and R.chance(0.7)) and R.pick(S.scoped) or S.model()
  if not m then return end
  local c = R.int(1, 10)
  if c == 1 then
    local ok, u = S.call("Model:unscoped", m.unscoped, m)
    if ok and u then keep(S.models, u, 10) end
  elseif c == 2 then
    S.call("scope on junk", m.scope, R.pick({ S.hostile(), S.db, S.inst() }), scope_arg())
  elseif c == 3 then
    S.call("scoped: assign field", function() m[R.pick({ "name", "x", "find_all" })] = S.hostile() end)
  elseif c == 4 then
    S.call("scoped: property", function() return m[R.pick({ "name", "table_name", "columns", "db", "methods", "nope" })] end)
    S.call("tostring(scoped)", tostring, m)
  else
    local a = {}
    for i = 1, R.int(0, 3) do a[i] = scope_arg() end
    local ok, sm = S.call("Model:scope", m.scope, m, table.unpack(a))
    if ok and sm then
      keep(S.models, sm, 10)
      -- a class method of the scoped model, at once
      local what = R.pick({ "find_all", "find_one", "count", "find_by_pk", "find_and_count_all", "sum", "each",
        "find_or_create", "update", "destroy", "restore", "increment", "decrement", "create", "bulk_create", "upsert",
        "build", "sync", "add_hook", "scope", "unscoped" })
      local f = sm[what]
      if type(f) == "function" then
        local x = R.pick({ S.opts(), S.values(), { where = S.where(), all = R.chance(0.3) or nil }, nil, S.hostile() })
        S.call("scoped:" .. what, f, sm, x, R.chance(0.3) and S.opts() or nil)
      end
    end
  end
end)

action("optimistic lock", 2, function()
  local db = R.chance(0.9) and S.db or R.pick(S.dbs)
  if not db then return end
  local vcol = R.pick({ true, true, "lock_version", "coins", "name", S.hostile() })
  local ok, m = S.call("define version", db.define, db, "vthing", {
    { "id", T.INTEGER, primary_key = true, auto_increment = true },
    { "name", T.STRING(32) }, { "coins", T.INTEGER, default = 0 },
  }, { version = vcol, paranoid = R.chance(0.3) or nil, hooks = R.chance(0.3) and hooks_option(setmetatable({}, { __index = function() error(USER) end })) or nil })
  if not (ok and m) then return end
  keep(S.models, m, 10)
  S.call("sync version", m.sync, m, R.pick({ nil, { force = true }, { alter = true } }))
  local ok2, r = S.call("create version", m.create, m, { name = "v", coins = 1, version = R.chance(0.1) and S.hostile() or nil })
  if not (ok2 and r) then return end
  local oka, a = S.call("version: load a", m.find_by_pk, m, r.id)
  local okb, b = S.call("version: load b", m.find_by_pk, m, r.id)
  if not (oka and okb and a and b) then return end
  if not (is_inst(a) and is_inst(b)) then
    -- an after_find hook's ctx.result is not what find_by_pk returns
    finding("find_by_pk", "returned no instance: " .. type(a) .. ", " .. type(b))
    return
  end
  keep(S.insts, a)
  keep(S.insts, b)
  local function stale_save(inst)
    local c = R.int(1, 6)
    if c == 1 then S.call("version: save", function() inst.coins = R.int(0, 9) return inst:save() end)
    elseif c == 2 then S.call("version: update", inst.update, inst, R.chance(0.8) and { coins = 3 } or S.values())
    elseif c == 3 then S.call("version: destroy", inst.destroy, inst)
    elseif c == 4 then S.call("version: increment", inst.increment, inst, "coins", 1)
    elseif c == 5 then S.call("version: set version", function() inst.version = S.hostile() end)
    else S.call("version: reload", inst.reload, inst) end
  end
  if R.chance(0.5) and not coroutine.isyieldable() then
    -- concurrent: two coroutines saving the same row (async dbs yield in the middle)
    for _, inst in ipairs({ a, b }) do
      local d = depth_of()
      local okc, co = S.call("sqorm.spawn (stale)", sqorm.spawn, function()
        depths[coroutine.running()] = d + 1
        stale_save(inst)
        if R.chance(0.5) then run_some(1) end
        stale_save(inst)
      end)
      if okc and type(co) == "thread" then keep(S.cos, co, 20) end
    end
    S.call("sqorm.poll", sqorm.poll)
  else
    stale_save(a)
    stale_save(b)
    stale_save(R.pick({ a, b }))
  end
  if R.chance(0.3) then S.call("version: class update", m.update, m, { coins = 5 }, { where = { id = r.id } }) end
end)

action("bulk_create options", 3, function()
  local m = S.model()
  if not m then return end
  local list = {}
  for i = 1, R.int(0, 5) do
    list[i] = R.chance(0.7) and { id = R.int(1, 6), name = R.pick({ "ann", "bob", "x" }), coins = R.int(0, 9) } or S.values()
  end
  local o = {}
  if R.chance(0.5) then o.ignore_duplicates = R.pick({ true, false, S.hostile() }) end
  if R.chance(0.5) then o.update_on_duplicate = R.pick({ { "coins" }, { "name", "coins" }, { "id" }, { "nope" }, {}, { "version" }, S.hostile() }) end
  if R.chance(0.6) then o.conflict = R.pick({ { "id" }, { "name" }, { "coins" }, "id", {}, { "nope" }, S.hostile() }) end
  if R.chance(0.4) then o.returning = R.pick({ false, true, S.hostile() }) end
  if R.chance(0.2) then o.batch_size = R.pick({ 1, 2, 0, S.hostile() }) end
  if R.chance(0.2) then o.individual_hooks = R.pick({ true, S.hostile() }) end
  if R.chance(0.05) then o = S.hostile() end
  local ok, r = S.call("bulk_create options", m.bulk_create, m, list, o)
  if ok and type(r) == "table" then
    for i = 1, math.min(#r, 2) do if getmetatable(r[i]) ~= nil then keep(S.insts, r[i]) end end
  end
end)

-- New actions (hooks raising and yielding, ...) go here, registered with
-- action(...).

-- ------------------------------------------------------------------
-- The run
-- ------------------------------------------------------------------

run_some = function(n)
  local th = coroutine.running()
  local depth = depths[th] or 0
  if depth > 3 then return end
  depths[th] = depth + 1
  for _ = 1, n do
    local r = R.int(0, math.floor(total_weight * 10) - 1) / 10
    local a
    for _, x in ipairs(actions) do
      r = r - x.weight
      if r < 0 then a = x break end
    end
    a = a or actions[#actions]
    local outer = current.action
    current.action = a.name
    stats.actions[a.name] = (stats.actions[a.name] or 0) + 1
    -- an action's own Lua mistakes are findings too (they'd hide sqorm's)
    local ok, e = pcall(a.fn, S)
    if not ok then check_error("action " .. a.name, false, e) end
    current.action = outer
  end
  depths[th] = depth
end

local started, started_wall = os.clock(), os.time()
local function out_of_time() return os.time() - started_wall >= args.seconds end

for seed = args.seed, args.seed + args.seeds - 1 do
  if out_of_time() then break end
  R.seed(seed)
  current.seed = seed
  local calls0, find0 = stats.calls, stats.findings
  S.main = sqorm.connect("sqlite::memory:")
  S.db = S.main
  S.dbs, S.models, S.insts, S.txs, S.cursors = { S.main }, {}, {}, {}, {}
  known_objs[S.main] = true
  S.cos, S.adbs, S.worlds, S.winsts, S.scoped = {}, {}, {}, {}, {}
  sqorm.on_error(S.on_error)
  local ok, m = S.call("define main", S.main.define, S.main, "player", columns(), { table_name = "players" })
  if ok then
    S.models[1] = m
    known_objs[m] = true
    S.call("sync main", m.sync, m, { force = true })
  end
  for step = 1, args.steps do
    current.step = step
    stats.steps = stats.steps + 1
    run_some(1)
    if step % 50 == 0 and out_of_time() then break end
  end
  -- async: every call completes exactly once, so what is pending drains
  -- (sqorm.run waits on the completion queue); some seeds close their
  -- async dbs with calls in flight first
  sqorm.on_error(S.on_error)
  if R.chance(0.2) then
    for _, db in ipairs(S.adbs) do S.call("db:close (seed end, calls in flight)", db.close, db) end
  end
  local t0 = os.time()
  while sqorm.pending() > 0 and os.time() - t0 < 30 do
    S.call("drain: sqorm.run", sqorm.run, function() end)
    sqorm.on_error(S.on_error)
  end
  if sqorm.pending() > 0 then
    finding("sqorm.pending", ("seed %d: %d calls still pending after 30 s"):format(seed, sqorm.pending()))
  end
  S.cos, S.winsts, S.worlds = {}, {}, {}
  -- everything released: end open transactions and cursors, then the
  -- main pool must have no connection in use
  for _, tx in ipairs(S.txs) do pcall(tx.rollback, tx) end
  for i = #S.all_txs, 1, -1 do pcall(S.all_txs[i].rollback, S.all_txs[i]) end
  S.all_txs = {}
  for _, cur in ipairs(S.cursors) do pcall(cur.close, cur) end
  S.txs, S.cursors, S.insts = {}, {}, {}
  -- a chain of finalised objects (a savepoint's Tx keeps its parent, a
  -- cursor its Tx, ...) is freed one link per cycle: collect until the
  -- pools are back (or 50 cycles)
  local function in_use()
    local n = 0
    for _, db in ipairs({ S.main, table.unpack(S.adbs) }) do
      local oks, sts = pcall(db.pool_stats, db)
      if oks and type(sts) == "table" then n = n + sts.in_use end
    end
    return n
  end
  for _ = 1, 50 do
    collectgarbage()
    if in_use() == 0 then break end
  end
  -- an async db's connection can come back a moment later: a statement
  -- still running on a worker when its transaction was collected hands
  -- the connection back when it ends (sq_tx_abandon). Wait for that (10 s
  -- at most, far beyond any statement here) before calling it a leak.
  if in_use() ~= 0 then
    local t1 = os.time()
    while in_use() ~= 0 and os.time() - t1 < 10 do collectgarbage() end
    if in_use() == 0 then stats.late_releases = stats.late_releases + 1 end
  end
  local okp, st = pcall(S.main.pool_stats, S.main)
  if okp and type(st) == "table" and st.in_use ~= 0 then
    -- a query on the held pool fails at once naming the holders (the
    -- self-deadlock check): the finding says who keeps the connection
    local _, held = pcall(S.main.query, S.main, "SELECT 1")
    finding("pool_stats", ("seed %d ends with %s connections in use (%s)"):format(seed, tostring(st.in_use),
      type(held) == "table" and tostring(held.message) or tostring(held)))
  end
  for _, db in ipairs(S.adbs) do
    local oka, sta = pcall(db.pool_stats, db)
    if oka and type(sta) == "table" and sta.in_use ~= 0 then
      local _, held = pcall(sqorm.run, function() return db:query("SELECT 1", nil, { timeout = 1 }) end)
      finding("pool_stats", ("seed %d: an async db ends with %s connections in use (%s)"):format(seed,
        tostring(sta.in_use), type(held) == "table" and tostring(held.message) or tostring(held)))
    end
  end
  for _, db in ipairs(S.dbs) do pcall(db.close, db) end
  for _, db in ipairs(S.adbs) do pcall(db.close, db) end
  S.dbs, S.adbs, S.models, S.scoped, S.db, S.main = {}, {}, {}, {}, nil, nil
  collectgarbage()
  for _, path in ipairs(S.tmpfiles) do
    os.remove(path)
    os.remove(path .. "-wal")
    os.remove(path .. "-shm")
    os.remove(path .. "-journal")
  end
  S.tmpfiles = {}
  print(("seed %d: %d calls, %d findings"):format(seed, stats.calls - calls0, stats.findings - find0))
end
collectgarbage()

local kinds = {}
for k, n in pairs(stats.kinds) do kinds[#kinds + 1] = ("%s %d"):format(k, n) end
table.sort(kinds)
print(("lua_api fuzz: %d steps, %d calls (%d ok, %d errors: %s; %d user errors passed through), %d findings, %.1f s CPU, %d s")
  :format(stats.steps, stats.calls, stats.ok, stats.errors, table.concat(kinds, ", "), stats.passed_through, stats.findings,
    os.clock() - started, os.time() - started_wall))
print(("  hook functions run: %d, scope functions run: %d; seeds whose async connections came back after the"
  .. " collections (a statement still running then): %d"):format(stats.hook_runs, stats.scope_runs, stats.late_releases))
if args.actions ~= 0 then -- --actions 1: how often each action ran
  local names = {}
  for k in pairs(stats.actions) do names[#names + 1] = k end
  table.sort(names)
  for _, k in ipairs(names) do print(("  %-22s %d"):format(k, stats.actions[k])) end
end
os.exit(stats.findings == 0 and 0 or 1, true)
