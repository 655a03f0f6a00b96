-- sqorm.migrate: the migrator (`sqorm.migrator(db, opts)`, and the `sqorm`
-- command through sqorm.cli). Files, ordering, checksums and batches are
-- decided here; every statement is rendered and run by the C core
-- (src/core/migrate.c through src/lua/lmigrate.c): a migration's schema
-- operations travel as plain tables, never as SQL, and its raw `exec` /
-- `query` statements carry their values as bound parameters.
local core = require "sqorm.core"

local M = {}

local function usage(msg, ...)
  error(core.error("usage", select("#", ...) > 0 and msg:format(...) or msg), 3)
end

local function check_opts(what, opts, allowed)
  if opts == nil then return {} end
  if type(opts) ~= "table" then usage("%s: options must be a table", what) end
  for k in pairs(opts) do
    if type(k) ~= "string" or not allowed[k] then
      local names = {}
      for n in pairs(allowed) do names[#names + 1] = n end
      table.sort(names)
      usage("%s: unknown option '%s' (%s)", what, tostring(k), table.concat(names, ", "))
    end
  end
  return opts
end

local function is_name(s) return type(s) == "string" and s:match("^[%w_][%w_%-%.]*$") ~= nil end

-- ------------------------------------------------------------------
-- the migration file API: m:create_table(...) etc. build operation
-- tables (see src/lua/lmigrate.c) and run each one at once on the
-- session's connection, inside the migration's transaction
-- ------------------------------------------------------------------

local ACTIONS = { cascade = true, set_null = true, restrict = true, no_action = true }
local COL_OPTS = { allow_null = true, primary_key = true, auto_increment = true, unique = true,
  comment = true, default = true, references = true, on_delete = true, on_update = true,
  type = true, name = true, enum_type = true }

local function is_type(v) return getmetatable(v) == "sqorm.Type" end

-- references = { "guilds", "id" } | { table = "guilds", key = "id" } | "guilds"
local function references(what, ref, on_delete, on_update)
  local t, k
  if type(ref) == "string" then t, k = ref, "id"
  elseif type(ref) == "table" then
    t = ref.table or ref[1]
    k = ref.key or ref.column or ref[2] or "id"
  end
  if type(t) ~= "string" or type(k) ~= "string" then
    usage("%s: references must be \"table\", { \"table\", \"column\" } or { table = ..., key = ... }", what)
  end
  for _, a in ipairs { on_delete or false, on_update or false } do
    if a and not ACTIONS[a] then
      usage("%s: on_delete / on_update must be \"cascade\", \"set_null\", \"restrict\" or \"no_action\"", what)
    end
  end
  return { ref_table = t, ref_cols = { k }, on_delete = on_delete, on_update = on_update }
end

-- A column spec into a col table. spec: sqorm.types.X, or a table with the
-- type at [1] (or [2] after the name when named_list) or type =.
local function column(what, name, spec, named_list)
  if is_type(spec) then return { name = name, type = spec } end
  if type(spec) ~= "table" then usage("%s: column '%s': expected a type or a table", what, tostring(name)) end
  local c = {}
  local ty
  if named_list then
    name = spec[1] or spec.name
    ty = spec[2] or spec.type
    if type(name) ~= "string" then usage("%s: a column spec starts with its name: { \"name\", T.X, ... }", what) end
  else
    ty = spec[1] or spec.type
  end
  if not is_type(ty) then usage("%s: column '%s': expected a type from sqorm.types", what, tostring(name)) end
  for k, v in pairs(spec) do
    if type(k) == "number" then
      if k > (named_list and 2 or 1) then usage("%s: column '%s': unexpected item #%d", what, name, k) end
    elseif not COL_OPTS[k] then
      usage("%s: column '%s': unknown option '%s'", what, name, tostring(k))
    elseif k ~= "references" and k ~= "on_delete" and k ~= "on_update" and k ~= "type" and k ~= "name" then
      c[k] = v
    end
  end
  c.name, c.type = name, ty
  if spec.references ~= nil then
    c.references = references(what .. " column '" .. name .. "'", spec.references, spec.on_delete, spec.on_update)
  elseif spec.on_delete or spec.on_update then
    usage("%s: column '%s': on_delete / on_update go with references", what, name)
  end
  return c
end

local function names(what, cols)
  if type(cols) == "string" then return { cols } end
  if type(cols) ~= "table" or #cols == 0 then usage("%s: expected a column name or a list of names", what) end
  for _, c in ipairs(cols) do
    if type(c) ~= "string" then usage("%s: expected a column name or a list of names", what) end
  end
  return cols
end

local function str(what, v, label)
  if type(v) ~= "string" or v == "" then usage("%s: %s must be a name", what, label) end
  return v
end

local Ctx = {}
Ctx.__index = Ctx
M.Migration = Ctx -- the class of a migration's `m` (documented as Migration)

function Ctx:_run(op)
  local stmts = self._s:apply(op)
  for _, sql in ipairs(stmts) do self._sent[#self._sent + 1] = sql end
end

function Ctx:create_table(name, cols, opts)
  local what = "create_table"
  str(what, name, "the table")
  opts = check_opts(what, opts, { indexes = true, if_not_exists = true, foreign_keys = true })
  if type(cols) ~= "table" or #cols == 0 then usage("create_table: expected a list of column specs") end
  local list = {}
  for i, spec in ipairs(cols) do list[i] = column(what, nil, spec, true) end
  local indexes
  if opts.indexes then
    indexes = {}
    for i, ix in ipairs(opts.indexes) do
      if type(ix) == "table" and ix.cols then
        check_opts(what .. " index", ix, { cols = true, name = true, unique = true })
        indexes[i] = { cols = names(what, ix.cols), name = ix.name, unique = ix.unique }
      else
        indexes[i] = { cols = names(what, ix) }
      end
    end
  end
  local fks
  if opts.foreign_keys then
    fks = {}
    for i, fk in ipairs(opts.foreign_keys) do
      check_opts(what .. " foreign key", fk, { cols = true, references = true, name = true,
        on_delete = true, on_update = true })
      local r = references(what, fk.references, fk.on_delete, fk.on_update)
      r.cols, r.name = names(what, fk.cols), fk.name
      if type(fk.references) == "table" and type(fk.references[2]) == "table" then r.ref_cols = fk.references[2] end
      fks[i] = r
    end
  end
  self:_run { kind = "create_table", table = name, cols = list, indexes = indexes, fks = fks,
    if_exists = opts.if_not_exists and true or nil }
end

function Ctx:drop_table(name, opts)
  opts = check_opts("drop_table", opts, { if_exists = true })
  self:_run { kind = "drop_table", table = str("drop_table", name, "the table"), if_exists = opts.if_exists }
end

function Ctx:rename_table(name, new_name)
  self:_run { kind = "rename_table", table = str("rename_table", name, "the table"),
    new_name = str("rename_table", new_name, "the new name") }
end

function Ctx:add_column(tbl, name, spec)
  local what = "add_column"
  str(what, tbl, "the table")
  str(what, name, "the column")
  self:_run { kind = "add_column", table = tbl, col = column(what, name, spec) }
end

function Ctx:remove_column(tbl, name)
  self:_run { kind = "remove_column", table = str("remove_column", tbl, "the table"),
    name = str("remove_column", name, "the column") }
end

function Ctx:rename_column(tbl, name, new_name)
  local what = "rename_column"
  self:_run { kind = what, table = str(what, tbl, "the table"), name = str(what, name, "the column"),
    new_name = str(what, new_name, "the new name") }
end

function Ctx:change_column(tbl, name, spec)
  local what = "change_column"
  str(what, tbl, "the table")
  str(what, name, "the column")
  self:_run { kind = what, table = tbl, name = name, col = column(what, name, spec) }
end

-- m:add_enum_values(tbl, column, spec): spec is the column's whole new
-- definition, its T.ENUM{ ... } listing every value in order (MySQL
-- rewrites the column with it, SQLite rebuilds the table with its CHECK;
-- PostgreSQL adds the missing labels to the type, in place).
function Ctx:add_enum_values(tbl, name, spec)
  local what = "add_enum_values"
  str(what, tbl, "the table")
  str(what, name, "the column")
  local col = column(what, name, spec)
  if not tostring(col.type):match("^ENUM%(") then
    usage("%s: column '%s': expected a T.ENUM{ ... } type listing every value", what, name)
  end
  self:_run { kind = what, table = tbl, name = name, col = col }
end

function Ctx:add_index(tbl, cols, opts)
  local what = "add_index"
  str(what, tbl, "the table")
  opts = check_opts(what, opts, { name = true, unique = true, if_not_exists = true })
  self:_run { kind = what, table = tbl, index = { cols = names(what, cols), name = opts.name, unique = opts.unique },
    if_exists = opts.if_not_exists }
end

-- The name models give an index: "<table>_<col>_<col>".
local function index_name(tbl, cols) return tbl .. "_" .. table.concat(cols, "_") end

function Ctx:remove_index(tbl, name_or_cols, opts)
  local what = "remove_index"
  str(what, tbl, "the table")
  opts = check_opts(what, opts, { if_exists = true })
  local name = type(name_or_cols) == "table" and index_name(tbl, names(what, name_or_cols)) or
    str(what, name_or_cols, "the index")
  self:_run { kind = what, table = tbl, name = name, if_exists = opts.if_exists }
end

function Ctx:add_unique(tbl, cols, opts)
  local what = "add_unique"
  opts = check_opts(what, opts, { name = true })
  self:_run { kind = what, table = str(what, tbl, "the table"), index = { cols = names(what, cols), name = opts.name } }
end

function Ctx:remove_unique(tbl, name_or_cols)
  local what = "remove_unique"
  str(what, tbl, "the table")
  if type(name_or_cols) == "table" then
    self:_run { kind = what, table = tbl, index = { cols = names(what, name_or_cols) } }
  else
    self:_run { kind = what, table = tbl, name = str(what, name_or_cols, "the constraint") }
  end
end

function Ctx:add_primary_key(tbl, cols)
  local what = "add_primary_key"
  self:_run { kind = what, table = str(what, tbl, "the table"), index = { cols = names(what, cols) } }
end

function Ctx:drop_primary_key(tbl, name)
  local what = "drop_primary_key"
  self:_run { kind = what, table = str(what, tbl, "the table"), name = name }
end

function Ctx:add_foreign_key(tbl, cols, opts)
  local what = "add_foreign_key"
  str(what, tbl, "the table")
  opts = check_opts(what, opts, { references = true, name = true, on_delete = true, on_update = true })
  local fk = references(what, opts.references, opts.on_delete, opts.on_update)
  fk.cols, fk.name = names(what, cols), opts.name
  if type(opts.references) == "table" and type(opts.references[2]) == "table" then fk.ref_cols = opts.references[2] end
  self:_run { kind = what, table = tbl, fk = fk }
end

function Ctx:remove_foreign_key(tbl, name_or_cols)
  local what = "remove_foreign_key"
  str(what, tbl, "the table")
  if type(name_or_cols) == "table" then
    self:_run { kind = what, table = tbl, fk = { cols = names(what, name_or_cols), ref_table = "" } }
  else
    self:_run { kind = what, table = tbl, name = str(what, name_or_cols, "the foreign key") }
  end
end

local function binds(what, b)
  if b ~= nil and type(b) ~= "table" then usage("%s: binds must be a list of values", what) end
  return b
end

-- m:exec(sql, binds) -> affected rows; m:query(sql, binds) -> rows. One
-- statement, ? placeholders, values bound (DESIGN.md: `exec`, `query`).
function Ctx:exec(sql, b)
  if type(sql) ~= "string" then usage("exec: expected SQL text") end
  self._sent[#self._sent + 1] = sql
  return self._s:exec(sql, binds("exec", b), false)
end

function Ctx:query(sql, b)
  if type(sql) ~= "string" then usage("query: expected SQL text") end
  self._sent[#self._sent + 1] = sql
  return self._s:exec(sql, binds("query", b), true)
end

-- ------------------------------------------------------------------
-- the migrator
-- ------------------------------------------------------------------

local Migrator = {}
Migrator.__index = Migrator
M.Migrator = Migrator

local function dir_join(dir, f) return dir:sub(-1) == "/" and dir .. f or dir .. "/" .. f end

function M.new(db, opts)
  if getmetatable(db) == nil or type(db) ~= "userdata" then usage("sqorm.migrator: expected a db as argument 1") end
  opts = check_opts("sqorm.migrator", opts, { dir = true, table = true, allow_out_of_order = true,
    lock_timeout = true, log = true })
  local dir = opts.dir or "migrations"
  if type(dir) ~= "string" or dir == "" then usage("sqorm.migrator: dir must be a path") end
  local tbl = opts.table or "sqorm_migrations"
  if type(tbl) ~= "string" or not tbl:match("^[%a_][%w_]*$") then
    usage("sqorm.migrator: table must be a name (letters, digits, _)")
  end
  if opts.lock_timeout ~= nil and (type(opts.lock_timeout) ~= "number" or opts.lock_timeout < 0) then
    usage("sqorm.migrator: lock_timeout must be a number of seconds >= 0")
  end
  if opts.log ~= nil and type(opts.log) ~= "function" then usage("sqorm.migrator: log must be a function") end
  return setmetatable({ db = db, dir = dir, table = tbl, allow_out_of_order = opts.allow_out_of_order == true,
    lock_timeout = opts.lock_timeout or 60, log = opts.log }, Migrator)
end

function Migrator:_say(fmt, ...)
  if self.log then self.log(fmt:format(...)) end
end

-- The migration files: { { name, path }, ... } ordered by name.
function Migrator:_files()
  local list, err = core._migrate_listdir(self.dir)
  if not list then
    -- a directory that doesn't exist yet holds no migrations
    return {}, err
  end
  local out = {}
  for _, f in ipairs(list) do
    local name = f:sub(1, -5)
    if is_name(name) then out[#out + 1] = { name = name, path = dir_join(self.dir, f) } end
  end
  return out
end

local function read(path)
  local f, err = io.open(path, "rb")
  if not f then usage("cannot read %s: %s", path, tostring(err)) end
  local text = f:read("a")
  f:close()
  return text
end

function Migrator._load(_, file)
  local text = read(file.path)
  local chunk, err = load(text, "@" .. file.path, "t")
  if not chunk then usage("migration %s: %s", file.name, err) end
  local ok, mod = pcall(chunk)
  if not ok then
    if core.is_error(mod) then error(mod, 0) end
    usage("migration %s: %s", file.name, tostring(mod))
  end
  if type(mod) ~= "table" or type(mod.up) ~= "function" then
    usage("migration %s: the file must return a table with an up function (and a down function)", file.name)
  end
  if mod.down ~= nil and type(mod.down) ~= "function" then usage("migration %s: down must be a function", file.name) end
  return mod
end

-- Runs fn(session) holding the lock; the session is closed on every path.
function Migrator:_session(fn)
  local s = core._migrator_open(self.db, self.table, self.lock_timeout)
  local ok, res = pcall(fn, s)
  local cok, cerr = pcall(s.close, s)
  if not ok then error(res, 0) end
  if not cok then error(cerr, 0) end
  return res
end

-- name -> row, and the newest applied name / highest batch
local function index_rows(rows)
  local by, newest, batch = {}, nil, 0
  for _, r in ipairs(rows) do
    by[r.name] = r
    if not newest or r.name > newest then newest = r.name end
    if r.batch > batch then batch = r.batch end
  end
  return by, newest, batch
end

local function status_of(files, rows)
  local by = index_rows(rows)
  local seen, out = {}, {}
  for _, f in ipairs(files) do
    seen[f.name] = true
    local r = by[f.name]
    local state = "pending"
    if r then
      state = r.checksum == core._migrate_checksum(read(f.path)) and "applied" or "changed"
    end
    out[#out + 1] = { name = f.name, state = state, batch = r and r.batch or nil,
      applied_at = r and r.applied_at or nil }
  end
  for _, r in ipairs(rows) do
    if not seen[r.name] then
      out[#out + 1] = { name = r.name, state = "missing", batch = r.batch, applied_at = r.applied_at }
    end
  end
  table.sort(out, function(a, b) return a.name < b.name end)
  return out
end

-- migrator:status() -> { { name, state, batch, applied_at }, ... }
function Migrator:status(opts)
  check_opts("status", opts, {})
  return self:_session(function(s) return status_of(self:_files(), s:rows()) end)
end

-- migrator:executed() -> { { name, batch, applied_at }, ... }
function Migrator:executed(opts)
  check_opts("executed", opts, {})
  return self:_session(function(s)
    local out = {}
    for i, r in ipairs(s:rows()) do out[i] = { name = r.name, batch = r.batch, applied_at = r.applied_at } end
    return out
  end)
end

-- migrator:pending() -> { name, ... }
function Migrator:pending(opts)
  check_opts("pending", opts, {})
  return self:_session(function(s)
    local by = index_rows(s:rows())
    local out = {}
    for _, f in ipairs(self:_files()) do
      if not by[f.name] then out[#out + 1] = f.name end
    end
    return out
  end)
end

-- Runs one migration's up or down in its transaction; raises the error
-- naming the migration (rolled back, or partially applied on MySQL).
function Migrator:_run_one(s, name, fn, after)
  local ctx = setmetatable({ _s = s, _sent = {}, db = self.db, name = name }, Ctx)
  ctx.dialect = s:dialect()
  s:begin(name)
  local ok, err = pcall(function()
    fn(ctx, self.db)
    after()
    s:commit()
  end)
  if not ok then error(s:rollback(err), 0) end
  return ctx._sent
end

local clock = core._migrate_now

-- migrator:up{ to = NAME } -> { names applied }
function Migrator:up(opts)
  opts = check_opts("up", opts, { to = true })
  if opts.to ~= nil and not is_name(opts.to) then usage("up: to must be a migration name") end
  return self:_session(function(s)
    local files = self:_files()
    local by, newest, batch = index_rows(s:rows())
    if opts.to then
      local found = false
      for _, f in ipairs(files) do found = found or f.name == opts.to end
      if not found then usage("up: no migration named %s in %s", opts.to, self.dir) end
    end
    local todo = {}
    for _, f in ipairs(files) do
      if not by[f.name] and (not opts.to or f.name <= opts.to) then
        if newest and f.name < newest and not self.allow_out_of_order then
          usage("up: migration %s is older than the newest applied one (%s): refused (allow_out_of_order = true " ..
            "applies it)", f.name, newest)
        end
        todo[#todo + 1] = f
      end
    end
    -- every file loads before anything runs
    for _, f in ipairs(todo) do
      f.mod = self:_load(f)
      f.sum = core._migrate_checksum(read(f.path))
    end
    local done = {}
    batch = batch + 1
    for _, f in ipairs(todo) do
      self:_say("migrating %s", f.name)
      local t0 = clock()
      local ok, err = pcall(self._run_one, self, s, f.name, f.mod.up, function() s:record(f.name, batch, f.sum) end)
      if not ok then
        if type(err) == "table" then err.applied = done end
        self:_say("failed    %s", f.name)
        error(err, 0)
      end
      done[#done + 1] = f.name
      self:_say("migrated  %s (%.2f s)", f.name, clock() - t0)
    end
    return done
  end)
end

-- migrator:down{ step = n | to = NAME | 0 } -> { names reverted }
function Migrator:down(opts)
  opts = check_opts("down", opts, { step = true, to = true })
  if opts.step ~= nil and opts.to ~= nil then usage("down: step and to exclude each other") end
  if opts.step ~= nil and (math.type(opts.step) ~= "integer" or opts.step < 1) then
    usage("down: step must be a positive integer")
  end
  if opts.to ~= nil and opts.to ~= 0 and not is_name(opts.to) then usage("down: to must be a migration name or 0") end
  return self:_session(function(s)
    local rows = s:rows()
    local by, _, batch = index_rows(rows)
    -- newest first: by batch, then by name
    table.sort(rows, function(a, b)
      if a.batch ~= b.batch then return a.batch > b.batch end
      return a.name > b.name
    end)
    local todo = {}
    if opts.to ~= nil then
      if opts.to ~= 0 and not by[opts.to] then usage("down: %s is not applied", opts.to) end
      for _, r in ipairs(rows) do
        if opts.to == 0 or r.name >= opts.to then todo[#todo + 1] = r end
      end
      table.sort(todo, function(a, b) return a.name > b.name end)
    elseif opts.step then
      for i = 1, math.min(opts.step, #rows) do todo[i] = rows[i] end
    else
      for _, r in ipairs(rows) do
        if r.batch == batch then todo[#todo + 1] = r end
      end
    end
    local files = {}
    for _, f in ipairs(self:_files()) do files[f.name] = f end
    -- every one must be revertible before anything is sent
    for _, r in ipairs(todo) do
      local f = files[r.name]
      if not f then usage("down: the file of migration %s is missing from %s", r.name, self.dir) end
      f.mod = self:_load(f)
      if not f.mod.down then usage("down: migration %s has no down function: nothing was reverted", r.name) end
      r.file = f
    end
    local done = {}
    for _, r in ipairs(todo) do
      self:_say("reverting %s", r.name)
      local t0 = clock()
      local ok, err = pcall(self._run_one, self, s, r.name, r.file.mod.down, function() s:unrecord(r.name) end)
      if not ok then
        if type(err) == "table" then err.reverted = done end
        error(err, 0)
      end
      done[#done + 1] = r.name
      self:_say("reverted  %s (%.2f s)", r.name, clock() - t0)
    end
    return done
  end)
end

local TEMPLATE = [[
-- %s
local T = require("sqorm").types

return {
  up = function(m)
    -- m:create_table("guilds", { { "id", T.INTEGER, primary_key = true, auto_increment = true },
    --                            { "name", T.STRING(32), allow_null = false, unique = true } })
  end,
  down = function(m)
    -- m:drop_table("guilds")
  end,
}
]]

local function stamp() return os.date("!%Y%m%d%H%M%S") end

function Migrator:_write(name, text)
  if not (type(name) == "string" and name:match("^[%w_]+$")) then
    usage("create: the name must be letters, digits and _")
  end
  core._migrate_mkdir(self.dir)
  -- a new file sorts after every file there (two made in one second too)
  local st = stamp()
  for _, f in ipairs(self:_files()) do
    local s = f.name:match("^(%d%d%d%d%d%d%d%d%d%d%d%d%d%d)_")
    if s and s >= st then st = ("%014d"):format(math.tointeger(tonumber(s)) + 1) end
  end
  local base = st .. "_" .. name
  local path = dir_join(self.dir, base .. ".lua")
  local f = io.open(path, "r")
  if f then
    f:close()
    usage("create: %s exists", path)
  end
  local out, err = io.open(path, "wb")
  if not out then usage("create: cannot write %s: %s", path, tostring(err)) end
  out:write((text:gsub("%%NAME%%", base)))
  out:close()
  return path, base
end

-- migrator:create(name) -> path of the new file
function Migrator:create(name, opts)
  check_opts("create", opts, {})
  return (self:_write(name, TEMPLATE:format("%NAME%")))
end

-- ------------------------------------------------------------------
-- generate: the difference between models and the live schema as a file
-- ------------------------------------------------------------------

local function lit(v)
  if type(v) == "string" then return ("%q"):format(v):gsub("\\\n", "\\n") end
  if v == core.null then return "sqorm.null" end
  if math.type(v) == "float" and v ~= v then return "0/0" end
  return tostring(v)
end

local function list_lit(t)
  local parts = {}
  for i, v in ipairs(t) do parts[i] = lit(v) end
  return "{ " .. table.concat(parts, ", ") .. " }"
end

local function fk_ref_lit(fk)
  local ref = fk.ref_cols and #fk.ref_cols == 1 and ("{ %s, %s }"):format(lit(fk.ref_table), lit(fk.ref_cols[1]))
    or fk.ref_cols and ("{ %s, %s }"):format(lit(fk.ref_table), list_lit(fk.ref_cols))
    or ("{ %s, \"id\" }"):format(lit(fk.ref_table))
  local s = "references = " .. ref
  if fk.on_delete then s = s .. ", on_delete = " .. lit(fk.on_delete) end
  if fk.on_update then s = s .. ", on_update = " .. lit(fk.on_update) end
  return s
end

local function type_lit(c)
  if c.enum_values then return "T.ENUM" .. list_lit(c.enum_values) end
  return "T." .. tostring(c.type)
end

local function col_opts(c)
  local parts = { type_lit(c) }
  if c.enum_type then parts[#parts + 1] = "enum_type = " .. lit(c.enum_type) end
  if c.allow_null == false then parts[#parts + 1] = "allow_null = false" end
  if c.primary_key then parts[#parts + 1] = "primary_key = true" end
  if c.auto_increment then parts[#parts + 1] = "auto_increment = true" end
  if c.unique ~= nil then parts[#parts + 1] = "unique = " .. lit(c.unique) end
  if c.default ~= nil then parts[#parts + 1] = "default = " .. lit(c.default) end
  if c.comment then parts[#parts + 1] = "comment = " .. lit(c.comment) end
  if c.references then parts[#parts + 1] = fk_ref_lit(c.references) end
  return parts
end

local zero_of

-- The zero value of a column's type (what rows already there get when a
-- NOT NULL column without a default comes back).
local ZERO = { INTEGER = 0, BIGINT = 0, SMALLINT = 0, FLOAT = 0, DOUBLE = 0, DECIMAL = 0, BOOLEAN = false,
  DATE = "1970-01-01", DATETIME = "1970-01-01 00:00:00", UUID = "00000000-0000-0000-0000-000000000000",
  JSON = "null" }
function zero_of(c)
  if c.enum_values then return c.enum_values[1] end
  local name = tostring(c.type):match("^%a+")
  local z = ZERO[name]
  if z == nil then return "" end
  return z
end

local function col_spec(c) return "{ " .. table.concat(col_opts(c), ", ") .. " }" end

local function named_col_spec(c) return "{ " .. lit(c.name) .. ", " .. table.concat(col_opts(c), ", ") .. " }" end

-- One op as Lua source (up) and its inverse (down; a comment when the
-- difference can't say what to restore).
local function op_source(op, later)
  local k, t = op.kind, op.table
  if k == "create_table" then
    local cols = {}
    for i, c in ipairs(op.cols) do cols[i] = "      " .. named_col_spec(c) .. "," end
    local extra = {}
    if op.indexes and #op.indexes > 0 then
      local ix = {}
      for i, x in ipairs(op.indexes) do
        ix[i] = ("{ cols = %s%s%s }"):format(list_lit(x.cols), x.name and ", name = " .. lit(x.name) or "",
          x.unique and ", unique = true" or "")
      end
      extra[#extra + 1] = "indexes = { " .. table.concat(ix, ", ") .. " }"
    end
    local fks = {}
    for _, fk in ipairs(op.fks or {}) do
      local src = ("{ cols = %s, %s%s }"):format(list_lit(fk.cols), fk_ref_lit(fk),
        fk.name and ", name = " .. lit(fk.name) or "")
      if fk.deferred then
        -- the referenced table comes later: its key is added after it
        later[#later + 1] = {
          up = ("m:add_foreign_key(%s, %s, { %s%s })"):format(lit(t), list_lit(fk.cols), fk_ref_lit(fk),
            fk.name and ", name = " .. lit(fk.name) or ""),
          down = ("m:remove_foreign_key(%s, %s)"):format(lit(t), fk.name and lit(fk.name) or list_lit(fk.cols)),
        }
      else
        fks[#fks + 1] = src
      end
    end
    if #fks > 0 then extra[#extra + 1] = "foreign_keys = { " .. table.concat(fks, ", ") .. " }" end
    local up = ("m:create_table(%s, {\n%s\n    }%s)"):format(lit(t), table.concat(cols, "\n"),
      #extra > 0 and ", { " .. table.concat(extra, ", ") .. " }" or "")
    return up, ("m:drop_table(%s)"):format(lit(t))
  elseif k == "drop_table" then
    return ("m:drop_table(%s)"):format(lit(t)), ("-- re-create table %s by hand"):format(t)
  elseif k == "add_column" then
    return ("m:add_column(%s, %s, %s)"):format(lit(t), lit(op.col.name), col_spec(op.col)),
      ("m:remove_column(%s, %s)"):format(lit(t), lit(op.col.name))
  elseif k == "remove_column" then
    local up = ("m:remove_column(%s, %s)"):format(lit(t), lit(op.name))
    local old = op.old_col
    if not old then return up, ("-- restore column %s.%s by hand (its data is gone)"):format(t, op.name) end
    local down = { ("-- column %s.%s comes back empty: its data is gone%s"):format(t, op.name,
      op.note and " (" .. op.note .. ")" or "") }
    if old.allow_null == false and old.default == nil then
      -- rows already there need a value: add it with the type's zero, then drop that default
      local filled = {}
      for kk, v in pairs(old) do filled[kk] = v end
      filled.default = zero_of(old)
      down[#down + 1] = ("m:add_column(%s, %s, %s)"):format(lit(t), lit(op.name), col_spec(filled))
      down[#down + 1] = ("m:change_column(%s, %s, %s)"):format(lit(t), lit(op.name), col_spec(old))
    else
      down[#down + 1] = ("m:add_column(%s, %s, %s)"):format(lit(t), lit(op.name), col_spec(old))
    end
    return up, table.concat(down, "\n    ")
  elseif k == "change_column" then
    local up = ("m:change_column(%s, %s, %s)"):format(lit(t), lit(op.name), col_spec(op.col))
    if not op.old_col then
      return up, ("-- change column %s.%s back by hand (it was %s)"):format(t, op.name, op.old_type_name or "?")
    end
    local down = ("m:change_column(%s, %s, %s)"):format(lit(t), lit(op.name), col_spec(op.old_col))
    if op.note then down = ("-- %s.%s: %s\n    %s"):format(t, op.name, op.note, down) end
    return up, down
  elseif k == "add_enum_values" then
    return ("m:add_enum_values(%s, %s, %s)"):format(lit(t), lit(op.name), col_spec(op.col)),
      ("-- enum values added to %s.%s stay (PostgreSQL can't remove a label; elsewhere change the column back " ..
        "by hand once no row holds them)"):format(t, op.name)
  elseif k == "add_index" then
    local name = op.index.name or index_name(t, op.index.cols)
    return ("m:add_index(%s, %s, { name = %s%s })"):format(lit(t), list_lit(op.index.cols), lit(name),
      op.index.unique and ", unique = true" or ""), ("m:remove_index(%s, %s)"):format(lit(t), lit(name))
  elseif k == "remove_index" then
    return ("m:remove_index(%s, %s)"):format(lit(t), lit(op.name)), ("-- re-create index %s by hand"):format(op.name)
  elseif k == "add_unique" then
    local up = ("m:add_unique(%s, %s%s)"):format(lit(t), list_lit(op.index.cols),
      op.index.name and ", { name = " .. lit(op.index.name) .. " }" or "")
    return up, ("m:remove_unique(%s, %s)"):format(lit(t),
      op.index.name and lit(op.index.name) or list_lit(op.index.cols))
  elseif k == "remove_unique" then
    return ("m:remove_unique(%s, %s)"):format(lit(t), op.name and lit(op.name) or list_lit(op.index.cols)),
      ("-- re-create unique constraint %s on %s by hand"):format(op.name or "?", t)
  elseif k == "add_primary_key" then
    return ("m:add_primary_key(%s, %s)"):format(lit(t), list_lit(op.index.cols)),
      ("m:drop_primary_key(%s)"):format(lit(t))
  elseif k == "drop_primary_key" then
    return ("m:drop_primary_key(%s%s)"):format(lit(t), op.name and ", " .. lit(op.name) or ""),
      ("-- re-create the primary key of %s by hand"):format(t)
  elseif k == "add_foreign_key" then
    local fk = op.fk
    return ("m:add_foreign_key(%s, %s, { %s%s })"):format(lit(t), list_lit(fk.cols), fk_ref_lit(fk),
      fk.name and ", name = " .. lit(fk.name) or ""),
      ("m:remove_foreign_key(%s, %s)"):format(lit(t), fk.name and lit(fk.name) or list_lit(fk.cols))
  elseif k == "remove_foreign_key" then
    local fk = op.fk
    local down = ("-- re-create foreign key %s by hand"):format(op.name or "?")
    if fk and fk.ref_table and fk.ref_table ~= "" then
      down = ("m:add_foreign_key(%s, %s, { %s%s })"):format(lit(t), list_lit(fk.cols), fk_ref_lit(fk),
        fk.name and ", name = " .. lit(fk.name) or "")
    end
    return ("m:remove_foreign_key(%s, %s)"):format(lit(t), op.name and lit(op.name) or list_lit(op.fk.cols)), down
  end
  return ("-- %s on %s: not written by generate (do it by hand)"):format(k, tostring(t)), nil
end

-- The models of opts.models: a list of models, a function(db) that
-- defines them (its result or db:models()), or a module name whose value
-- is either.
function Migrator:_models(models)
  if type(models) == "string" then
    local ok, mod = pcall(require, models)
    if not ok then usage("generate: cannot load the models module %s: %s", models, tostring(mod)) end
    models = mod
  end
  if type(models) == "function" then
    local r = models(self.db)
    if type(r) == "table" and #r > 0 then models = r
    else
      models = {}
      for _, m in pairs(self.db:models()) do models[#models + 1] = m end
    end
  end
  if type(models) ~= "table" then
    usage("generate: models must be a list of models, a function(db) or a module name")
  end
  local list = {}
  for k, m in pairs(models) do
    if type(k) == "number" or type(k) == "string" then list[#list + 1] = m end
  end
  return list
end

-- migrator:generate(name, { models = ... }) -> path (nil when the schema
-- already matches), the operations, the notes
function Migrator:generate(name, opts)
  opts = check_opts("generate", opts, { models = true })
  if opts.models == nil then usage("generate: models are required ({ models = { Model, ... } | fn | module })") end
  if not (type(name) == "string" and name:match("^[%w_]+$")) then
    usage("generate: the name must be letters, digits and _")
  end
  local models = self:_models(opts.models)
  local ops = self:_session(function(s) return s:diff(models) end)
  local ups, downs, notes, later = {}, {}, {}, {}
  -- down undoes the ops newest first, except that columns removed one
  -- after the other come back in their old order
  local run, run_table = 0, nil
  for _, op in ipairs(ops) do
    if op.kind == "note" then
      notes[#notes + 1] = op.note
    else
      local up, down = op_source(op, later)
      ups[#ups + 1] = up
      if op.kind == "remove_column" and run > 0 and op.table == run_table then
        run = run + 1
        table.insert(downs, run, down)
      else
        if op.kind == "remove_column" then run, run_table = 1, op.table else run = 0 end
        if down then table.insert(downs, 1, down) end
      end
    end
  end
  for _, l in ipairs(later) do
    ups[#ups + 1] = l.up
    table.insert(downs, 1, l.down)
  end
  if #ups == 0 then return nil, ops, notes end
  local lines = { "-- %NAME%: generated by sqorm from the difference between the models and the live schema." }
  if #notes > 0 then
    lines[#lines + 1] = "-- What the difference can't see or doesn't change (check these by hand):"
    for _, n in ipairs(notes) do lines[#lines + 1] = "--   " .. n:gsub("\n", " ") end
  end
  lines[#lines + 1] = "local sqorm = require(\"sqorm\")"
  lines[#lines + 1] = "local T = sqorm.types"
  lines[#lines + 1] = ""
  lines[#lines + 1] = "return {"
  lines[#lines + 1] = "  up = function(m)"
  for _, u in ipairs(ups) do lines[#lines + 1] = "    " .. u end
  lines[#lines + 1] = "  end,"
  lines[#lines + 1] = "  down = function(m)"
  for _, d in ipairs(downs) do lines[#lines + 1] = "    " .. d end
  lines[#lines + 1] = "  end,"
  lines[#lines + 1] = "}"
  local path = self:_write(name, table.concat(lines, "\n") .. "\n")
  return path, ops, notes
end

return M
