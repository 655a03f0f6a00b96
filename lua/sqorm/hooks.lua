-- sqorm.hooks: model and db hooks (docs/api.md, "Hooks").
--
-- The hook sequence is driven here, in Lua, around the model methods,
-- which stay C: a model gets these wrappers only once it (or its db) has
-- a hook, so a model with none runs exactly the C methods it ran before.
-- Hooks are called as plain Lua calls in the caller's coroutine: their
-- queries join the caller's transaction (sqorm binds a transaction to its
-- coroutine) and yield in async mode like any call; their errors go up
-- unchanged. No SQL is built here: every read and write is a model
-- method (an operation each); the C primitives used are in lhook.c and
-- ltx.c (ctx:after_commit).
local core = require "sqorm.core"

local C = core._model_methods -- the built-in class methods (C)
local DBM = core._db_methods  -- sqorm.Db's methods
-- a scoped model (Model:scope / unscoped) runs its model's hooks: the
-- wrappers get it as self (so the C methods keep its scope), and the
-- hook tables are keyed by the model behind it
local base = core._base_model

local M = {}

local EVENTS = {}
for _, e in ipairs {
  "before_validate", "after_validate", "validation_failed",
  "before_create", "after_create", "before_update", "after_update",
  "before_save", "after_save", "before_destroy", "after_destroy",
  "before_restore", "after_restore", "before_upsert", "after_upsert",
  "before_bulk_create", "after_bulk_create", "before_bulk_update", "after_bulk_update",
  "before_bulk_destroy", "after_bulk_destroy", "before_bulk_restore", "after_bulk_restore",
  "before_find", "after_find",
} do EVENTS[e] = true end
M.events = EVENTS

local function usage(msg, level)
  error(core.error("usage", msg), (level or 1) + 1)
end

local function copy(t)
  local c = {}
  if t then for k, v in pairs(t) do c[k] = v end end
  return c
end

-- event -> list of { fn = f, name = n }, per model and per db (weak keys;
-- lists are replaced, never changed, so a run in progress keeps its own)
local model_hooks = setmetatable({}, { __mode = "k" })
local db_hooks = setmetatable({}, { __mode = "k" })
local db_of = setmetatable({}, { __mode = "k" })     -- model -> its db
local wrapped = setmetatable({}, { __mode = "k" })   -- model -> its C instance methods

local function list_of(model, event)
  model = base(model)
  local mh = model_hooks[model]
  local l1 = mh and mh[event]
  local dh = db_hooks[db_of[model]]
  local l2 = dh and dh[event]
  return l1, l2
end

local function has(model, e1, e2, e3)
  local l1, l2 = list_of(model, e1)
  if l1 or l2 then return true end
  if e2 then
    l1, l2 = list_of(model, e2)
    if l1 or l2 then return true end
  end
  if e3 then
    l1, l2 = list_of(model, e3)
    if l1 or l2 then return true end
  end
  return false
end

-- Runs the model's hooks of event, then its db's: fn(subject, ctx) for
-- instance events, fn(ctx) for the others (subject nil).
local function run(model, event, ctx, subject)
  local l1, l2 = list_of(model, event)
  if l1 then
    for i = 1, #l1 do
      if subject ~= nil then l1[i].fn(subject, ctx) else l1[i].fn(ctx) end
    end
  end
  if l2 then
    for i = 1, #l2 do
      if subject ~= nil then l2[i].fn(subject, ctx) else l2[i].fn(ctx) end
    end
  end
end

-- ---------------------------------------------------------------- ctx

local Ctx = {}
Ctx.__index = Ctx
Ctx.__name = "sqorm.HookContext"

-- The raised value, described without calling into it (its __tostring
-- may raise or return no string), as ltx.c does.
local function describe(err)
  if type(err) == "string" or err == nil then return tostring(err) end
  local m = type(err) == "table" and rawget(err, "message")
  if type(m) == "string" then return m end
  return "(a " .. type(err) .. ")"
end

-- ctx -> its db, out of the hook's reach
local ctx_db = setmetatable({}, { __mode = "k" })

local function after_commit_error(err)
  return setmetatable({
    kind = "after_commit",
    message = "the transaction was committed, but an after_commit callback raised: " .. describe(err),
    cause = err,
    committed = true,
  }, core.Error)
end

-- ctx:after_commit(f): f() after the outermost COMMIT of the caller's
-- transaction (dropped on rollback), at once outside a transaction.
function Ctx:after_commit(f)
  if getmetatable(self) ~= Ctx or not ctx_db[self] then
    usage("expected a hook context as self (use ctx:after_commit(f))", 2)
  end
  if type(f) ~= "function" then usage("ctx:after_commit expects a function, got " .. type(f), 2) end
  -- the db the context was made for (a hook may have put anything in ctx.db)
  if ctx_db[self]:_after_commit(f) then return end
  local ok, err = pcall(f)
  if not ok then error(after_commit_error(err), 0) end
end

local function new_ctx(model, t)
  model = base(model)
  local db = db_of[model]
  t.model = model
  t.db = db
  t.transaction = db:_transaction()
  ctx_db[t] = db
  return setmetatable(t, Ctx)
end

-- ---------------------------------------------------------------- helpers

local function check_opts(opts, method, allowed)
  if opts == nil then return end
  if type(opts) ~= "table" then usage(method .. ": options must be a table, got " .. type(opts), 3) end
  for k in pairs(opts) do
    if not allowed[k] then usage(("%s: unknown option '%s'"):format(method, tostring(k)), 3) end
  end
  local ih = opts.individual_hooks
  if ih ~= nil and type(ih) ~= "boolean" then usage(method .. ": individual_hooks must be a boolean", 3) end
end

local function set(...)
  local s = {}
  for _, k in ipairs { ... } do s[k] = true end
  return s
end

local function is_validation(err)
  return type(err) == "table" and getmetatable(err) == core.Error and err.kind == "validation"
end

-- Runs write(...) and, when it raises a validation error, the
-- validation_failed hooks (once per write) before raising it unchanged.
local function guarded(model, inst, ctx, write, ...)
  if ctx.validation_ran or not has(model, "validation_failed") then return write(...) end
  local r = table.pack(pcall(write, ...))
  if r[1] then return table.unpack(r, 2, r.n) end
  local err = r[2]
  if is_validation(err) then
    ctx.error = err
    run(model, "validation_failed", ctx, inst)
  end
  error(err, 0)
end

-- before_validate, the validation (when after_validate or
-- validation_failed hooks need it), after_validate / validation_failed.
local function validate_step(model, inst, ctx, vopts)
  run(model, "before_validate", ctx, inst)
  if not has(model, "after_validate", "validation_failed") then return end
  local ok, err = pcall(core._validate, inst, vopts)
  if not ok then
    if is_validation(err) then
      ctx.error = err
      ctx.validation_ran = true
      run(model, "validation_failed", ctx, inst)
    end
    error(err, 0)
  end
  run(model, "after_validate", ctx, inst)
end

-- The hooked save of an instance: validation, before_create|update,
-- before_save, the C save, after_create|update, after_save.
local function save_flow(model, inst, opts, ctx)
  local csave = wrapped[base(model)].save -- model may be a scoped one
  local new = core._is_new(inst)
  validate_step(model, inst, ctx, opts and opts.fields ~= nil and { fields = opts.fields } or nil)
  run(model, new and "before_create" or "before_update", ctx, inst)
  run(model, "before_save", ctx, inst)
  guarded(model, inst, ctx, csave, inst, opts)
  run(model, new and "after_create" or "after_update", ctx, inst)
  run(model, "after_save", ctx, inst)
  return inst
end

local SAVE_EVENTS = { "before_validate", "after_validate", "validation_failed", "before_create", "after_create",
                      "before_update", "after_update", "before_save", "after_save" }
local function has_save(model)
  for i = 1, #SAVE_EVENTS do
    local l1, l2 = list_of(model, SAVE_EVENTS[i])
    if l1 or l2 then return true end
  end
  return false
end

-- the key of a loaded instance as a where
local function key_where(model, inst)
  local w = {}
  for _, c in ipairs(model.primary_key) do w[c] = inst:get(c) end
  return w
end

local function slot_of(model, name)
  for i, c in ipairs(model.columns) do
    if c == name then return i end
  end
end

-- ---------------------------------------------------------------- instance methods

local function install_instance(model, methods)
  local cm = wrapped[model]

  methods.save = function(self, opts)
    if not has_save(model) then return cm.save(self, opts) end
    check_opts(opts, "save", set("fields"))
    return save_flow(model, self, opts, new_ctx(model, { options = opts }))
  end

  methods.update = function(self, values, opts)
    if not has_save(model) then return cm.update(self, values, opts) end
    core._assign(self, values, opts)
    return save_flow(model, self, opts, new_ctx(model, { options = opts, values = values }))
  end

  methods.destroy = function(self, opts)
    if not has(model, "before_destroy", "after_destroy") then return cm.destroy(self, opts) end
    core._is_new(self) -- usage unless self is an instance: no hook runs on anything else
    check_opts(opts, "destroy", set("force"))
    local ctx = new_ctx(model, { options = opts })
    run(model, "before_destroy", ctx, self)
    local r = cm.destroy(self, opts)
    run(model, "after_destroy", ctx, self)
    return r
  end
end

-- ---------------------------------------------------------------- class methods

local function where_given(opts)
  return type(opts) == "table" and (opts.where ~= nil or opts.all)
end

local function install_class(model)
  local db = db_of[model]
  local cm = wrapped[model]

  -- Model:create: build (nothing sent), then the hooked save
  model.create = function(self, values, opts)
    self = base(self) -- create ignores scopes; C.build takes no scoped model
    if not has_save(self) or type(values) ~= "table" then return C.create(self, values, opts) end
    check_opts(opts, "create", set("fields"))
    local inst = C.build(self, values, opts)
    return save_flow(self, inst, nil, new_ctx(self, { options = opts, values = values }))
  end

  -- class update: bulk hooks; individual_hooks: per row p:update in one
  -- transaction
  -- The frame of class update / increment / destroy / restore after their
  -- bulk before-hook: without individual_hooks, write(o) and the bulk
  -- after-hook; with it, one transaction that loads the rows (find_opts),
  -- runs per_row(inst) on each (false: the row is skipped) and then the
  -- bulk after-hook with the rows written.
  local function bulk_write(self, ctx, o, ind, after, write, find_opts, per_row)
    if not ind then
      ctx.affected_rows = write(o)
      run(self, after, ctx)
      return ctx.affected_rows
    end
    return db:transaction(function()
      local list, n = {}, 0
      for _, inst in ipairs(C.find_all(self, find_opts)) do
        if per_row(inst) ~= false then
          n = n + 1
          list[n] = inst
        end
      end
      ctx.affected_rows = n
      ctx.instances = list
      run(self, after, ctx)
      return n
    end)
  end

  model.update = function(self, values, opts)
    local ind = type(opts) == "table" and opts.individual_hooks
    if (not ind and not has(self, "before_bulk_update", "after_bulk_update")) or type(values) ~= "table"
        or not where_given(opts) then
      return C.update(self, values, opts)
    end
    check_opts(opts, "update", set("where", "all", "paranoid", "individual_hooks"))
    local o = copy(opts)
    o.individual_hooks = nil
    local ctx = new_ctx(self, { where = o.where, values = copy(values), options = o })
    run(self, "before_bulk_update", ctx)
    o.where = ctx.where
    return bulk_write(self, ctx, o, ind, "after_bulk_update", function(wo) return C.update(self, ctx.values, wo) end,
      { where = o.where, paranoid = o.paranoid }, function(inst)
        core._assign(inst, ctx.values)
        save_flow(self, inst, nil, new_ctx(self, { options = o, values = ctx.values }))
      end)
  end

  local function destroy_or_restore(self, opts, restore)
    local method = restore and "restore" or "destroy"
    local bulk_b, bulk_a = "before_bulk_" .. method, "after_bulk_" .. method
    local ind = type(opts) == "table" and opts.individual_hooks
    local info = core._model_info(base(self))
    if (not ind and not has(self, bulk_b, bulk_a)) or not where_given(opts) or (restore and not info.deleted_at) then
      return C[method](self, opts)
    end
    check_opts(opts, method, restore and set("where", "all", "individual_hooks")
                                     or set("where", "all", "force", "individual_hooks"))
    local o = copy(opts)
    o.individual_hooks = nil
    local ctx = new_ctx(self, { where = o.where, options = o })
    run(self, bulk_b, ctx)
    o.where = ctx.where
    -- the rows the write touches: live ones for a soft destroy, every
    -- matching one for a hard destroy, soft-deleted ones for a restore
    local fo = { where = o.where }
    if info.deleted_at and (restore or o.force) then fo.paranoid = false end
    local dslot = info.deleted_at and slot_of(self, info.deleted_at)
    local ev_b, ev_a = "before_" .. method, "after_" .. method
    return bulk_write(self, ctx, o, ind, bulk_a, function(wo) return C[method](self, wo) end, fo, function(inst)
      if restore and inst:get(info.deleted_at) == nil then return false end
      local ictx = new_ctx(self, { options = o })
      run(self, ev_b, ictx, inst)
      if restore then
        C.restore(self, { where = key_where(self, inst) })
        rawset(inst, dslot, nil) -- the row's value now; not a pending change
      else
        cm.destroy(inst, { force = o.force })
      end
      run(self, ev_a, ictx, inst)
    end)
  end
  model.destroy = function(self, opts) return destroy_or_restore(self, opts, false) end
  model.restore = function(self, opts) return destroy_or_restore(self, opts, true) end

  -- class increment / decrement: the bulk update hooks (ctx.increment:
  -- { column = amount }, negative for decrement); individual_hooks: per
  -- row before_update, p:increment, after_update
  local function incr(self, fields, opts, sign, method)
    local ind = type(opts) == "table" and opts.individual_hooks
    if (not ind and not has(self, "before_bulk_update", "after_bulk_update")) or not where_given(opts) then
      return C[method](self, fields, opts)
    end
    check_opts(opts, method, set("where", "all", "by", "paranoid", "individual_hooks"))
    local amounts = {}
    local by = opts.by
    if by == nil then by = 1 end
    if type(fields) == "string" then
      amounts[fields] = by
    elseif type(fields) == "table" then
      for k, v in pairs(fields) do
        if math.type(k) == "integer" then amounts[v] = by else amounts[k] = v end
      end
    else
      return C[method](self, fields, opts) -- raises usage
    end
    if sign < 0 then
      for k, v in pairs(amounts) do
        if type(v) == "number" then amounts[k] = -v end
      end
    end
    local o = { where = opts.where, all = opts.all, paranoid = opts.paranoid }
    local ctx = new_ctx(self, { where = o.where, increment = amounts, options = o })
    run(self, "before_bulk_update", ctx)
    o.where = ctx.where
    local function write(wo) return C.increment(self, ctx.increment, wo) end
    return bulk_write(self, ctx, o, ind, "after_bulk_update", write, { where = o.where, paranoid = o.paranoid },
      function(inst)
        local ictx = new_ctx(self, { options = o, increment = ctx.increment })
        run(self, "before_update", ictx, inst)
        cm.increment(inst, ctx.increment)
        run(self, "after_update", ictx, inst)
      end)
  end
  model.increment = function(self, fields, opts) return incr(self, fields, opts, 1, "increment") end
  model.decrement = function(self, fields, opts) return incr(self, fields, opts, -1, "decrement") end

  -- upsert: before_upsert / after_upsert only
  model.upsert = function(self, values, opts)
    if not has(self, "before_upsert", "after_upsert") or type(values) ~= "table" then
      return C.upsert(self, values, opts)
    end
    check_opts(opts, "upsert", set("conflict", "fields"))
    local ctx = new_ctx(self, { values = copy(values), options = opts })
    run(self, "before_upsert", ctx)
    local r = C.upsert(self, ctx.values, opts)
    ctx.result = r
    if type(r) == "table" then ctx.instance = r end
    run(self, "after_upsert", ctx)
    return r
  end

  -- bulk_create: before/after_bulk_create; individual_hooks: each record
  -- built and taken through the instance hooks of create before the
  -- INSERTs, and after_create / after_save on what they returned
  model.bulk_create = function(self, list, opts)
    local ind = type(opts) == "table" and opts.individual_hooks
    if (not ind and not has(self, "before_bulk_create", "after_bulk_create")) or type(list) ~= "table" then
      return C.bulk_create(self, list, opts)
    end
    local count = 0
    for _ in pairs(list) do count = count + 1 end
    if count ~= #list then return C.bulk_create(self, list, opts) end -- holes: raises usage
    check_opts(opts, "bulk_create", set("batch_size", "individual_hooks", "ignore_duplicates",
                                        "update_on_duplicate", "conflict", "returning"))
    local o = copy(opts)
    o.individual_hooks = nil
    local records = {}
    for i = 1, #list do
      local r = list[i]
      records[i] = type(r) == "table" and copy(r) or r
    end
    local ctx = new_ctx(self, { records = records, options = o })
    run(self, "before_bulk_create", ctx)
    records = ctx.records
    if type(records) ~= "table" then
      usage("before_bulk_create: ctx.records must be the table of records, got " .. type(records), 2)
    end
    -- the columns hooks set or changed: they join update_on_duplicate
    local hooked = {}
    local function diff(before, after)
      if type(after) ~= "table" then return end
      for k, v in pairs(after) do
        if type(before) ~= "table" or before[k] ~= v then hooked[k] = true end
      end
    end
    for i = 1, #records do diff(list[i], records[i]) end
    if ind then
      local out = {}
      for i = 1, #records do
        if type(records[i]) ~= "table" then return C.bulk_create(self, records, o) end -- raises usage
        local inst = C.build(self, records[i])
        local built = inst:to_table()
        local ictx = new_ctx(self, { options = o })
        validate_step(self, inst, ictx)
        run(self, "before_create", ictx, inst)
        run(self, "before_save", ictx, inst)
        out[i] = inst:to_table()
        diff(built, out[i])
      end
      records = out
    end
    local upd = o.update_on_duplicate
    if type(upd) == "table" and next(hooked) then
      local seen = {}
      for _, c in ipairs(self.primary_key) do seen[c] = true end
      local conf = o.conflict
      if type(conf) == "string" then seen[conf] = true
      elseif type(conf) == "table" then for _, c in ipairs(conf) do seen[c] = true end end
      local list2 = {}
      for i, c in ipairs(upd) do
        list2[i] = c
        seen[c] = true
      end
      for _, c in ipairs(self.columns) do -- in column order
        if hooked[c] and not seen[c] then list2[#list2 + 1] = c end
      end
      o.update_on_duplicate = list2
    end
    local r = C.bulk_create(self, records, o)
    if ind and type(r) == "table" then
      for _, inst in ipairs(r) do
        local ictx = new_ctx(self, { options = o })
        run(self, "after_create", ictx, inst)
        run(self, "after_save", ictx, inst)
      end
    end
    ctx.result = r
    if type(r) == "table" then ctx.instances = r end
    run(self, "after_bulk_create", ctx)
    return r
  end

  -- finds: before_find (ctx.options, which it may change), after_find
  -- (ctx.result)
  local function find(name)
    return function(self, opts, ...)
      if not has(self, "before_find", "after_find") or (opts ~= nil and type(opts) ~= "table") then
        return C[name](self, opts, ...)
      end
      local ctx = new_ctx(self, { options = copy(opts) })
      run(self, "before_find", ctx)
      local r1, r2 = C[name](self, ctx.options, ...)
      ctx.result = r1
      run(self, "after_find", ctx)
      return r1, r2
    end
  end
  model.find_all = find("find_all")
  model.find_one = find("find_one")
  model.find_and_count_all = find("find_and_count_all")
  -- find_by_pk(v, opts): a find_one by the key, so before_find sees (and
  -- may extend) ctx.options.where
  model.find_by_pk = function(self, v, opts)
    if not has(self, "before_find", "after_find") or v == nil or (opts ~= nil and type(opts) ~= "table") then
      return C.find_by_pk(self, v, opts)
    end
    if not has(self, "before_find") then -- after_find only: the C find by key (its cached SQL)
      local ctx = new_ctx(self, { options = opts, key = v })
      local r = C.find_by_pk(self, v, opts)
      ctx.result = r
      run(self, "after_find", ctx)
      return r -- as every find: what the hook puts in ctx.result is not returned
    end
    check_opts(opts, "find_by_pk", set("attributes", "lock", "raw", "paranoid", "include", "use_primary"))
    local o = copy(opts)
    if type(v) == "table" and getmetatable(v) == nil then
      o.where = copy(v)
    else
      local pk = self.primary_key
      if #pk ~= 1 then return C.find_by_pk(self, v, opts) end -- raises usage
      o.where = { [pk[1]] = v }
    end
    local ctx = new_ctx(self, { options = o, key = v })
    run(self, "before_find", ctx)
    local r = C.find_one(self, ctx.options)
    ctx.result = r
    run(self, "after_find", ctx)
    return r
  end
end

-- Gives model the hooked methods (once).
local function install(model)
  if wrapped[model] then return end
  local methods = model.methods
  wrapped[model] = { save = methods.save, update = methods.update, destroy = methods.destroy,
                     increment = methods.increment }
  install_instance(model, methods)
  install_class(model)
end

-- ---------------------------------------------------------------- registration

local function check_event(event, level)
  if type(event) ~= "string" then usage("hook event names are strings, got " .. type(event), level + 1) end
  if not EVENTS[event] then
    usage(("unknown hook event '%s' (see docs/api.md, Hooks, for the events)"):format(event), level + 1)
  end
end

local function add(reg, owner, event, fn, name, level)
  check_event(event, level + 1)
  if type(fn) ~= "function" then
    usage(("hook '%s': expected a function, got %s"):format(event, type(fn)), level + 1)
  end
  if name ~= nil and type(name) ~= "string" then
    usage(("hook '%s': the name must be a string, got %s"):format(event, type(name)), level + 1)
  end
  local hooks = reg[owner]
  if not hooks then
    hooks = {}
    reg[owner] = hooks
  end
  local old = hooks[event] or {}
  if name ~= nil then
    for _, h in ipairs(old) do
      if h.name == name then
        usage(("hook '%s': a hook named '%s' is there already (remove_hook it first)"):format(event, name), level + 1)
      end
    end
  end
  local new = copy(old)
  new[#new + 1] = { fn = fn, name = name }
  hooks[event] = new
end

local function remove(reg, owner, event, which, level)
  check_event(event, level + 1)
  if type(which) ~= "string" and type(which) ~= "function" then
    usage(("remove_hook('%s', ...): expected the hook's name or function, got %s"):format(event, type(which)),
      level + 1)
  end
  local hooks = reg[owner]
  local old = hooks and hooks[event]
  if not old then return false end
  local new, removed = {}, false
  for _, h in ipairs(old) do
    if not removed and (h.name == which or h.fn == which) then removed = true else new[#new + 1] = h end
  end
  hooks[event] = #new > 0 and new or nil
  return removed
end

local function check_model(model)
  core._model_info(model) -- raises usage when it is none
end

local function attach(model)
  db_of[model] = model.db
end

--- Model:add_hook(event, fn [, name])
function C.add_hook(self, event, fn, name)
  local model = base(self) -- on a scoped model: its model's hooks
  check_model(model)
  add(model_hooks, model, event, fn, name, 2)
  attach(model)
  install(model)
  return self
end

--- Model:remove_hook(event, name_or_fn) -> true when one was removed
function C.remove_hook(self, event, which)
  local model = base(self)
  check_model(model)
  return remove(model_hooks, model, event, which, 2)
end

local function check_db(db)
  DBM.is_closed(db) -- raises usage when it is none
end

--- db:add_hook(event, fn [, name]): for every model of the db, also the
-- ones defined before
function DBM.add_hook(self, event, fn, name)
  check_db(self)
  add(db_hooks, self, event, fn, name, 2)
  for _, model in pairs(self:models()) do
    attach(model)
    install(model)
  end
  return self
end

function DBM.remove_hook(self, event, which)
  check_db(self)
  return remove(db_hooks, self, event, which, 2)
end

-- db:define(name, columns, { hooks = { event = fn or { fn, ... } }, ... })
local c_define = DBM.define
function DBM.define(self, name, cols, opts)
  local hooks
  if type(opts) == "table" and opts.hooks ~= nil then
    hooks = opts.hooks
    if type(hooks) ~= "table" then usage("define: hooks must be a table { event = fn or { fn, ... } }", 2) end
    for event, fns in pairs(hooks) do
      check_event(event, 2)
      if type(fns) == "table" then
        if #fns == 0 then usage(("define: hooks.%s: an empty list"):format(event), 2) end
        for k, f in pairs(fns) do
          if math.type(k) ~= "integer" or type(f) ~= "function" then
            usage(("define: hooks.%s must be a function or a list of functions"):format(event), 2)
          end
        end
      elseif type(fns) ~= "function" then
        usage(("define: hooks.%s must be a function or a list of functions, got %s"):format(event, type(fns)), 2)
      end
    end
    opts = copy(opts)
    opts.hooks = nil
  end
  local model = c_define(self, name, cols, opts)
  if hooks then
    for event, fns in pairs(hooks) do
      if type(fns) == "function" then fns = { fns } end
      for _, f in ipairs(fns) do add(model_hooks, model, event, f, nil, 2) end
    end
  end
  if hooks or db_hooks[self] then
    attach(model)
    install(model)
  end
  return model
end

return M
