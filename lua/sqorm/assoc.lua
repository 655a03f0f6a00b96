-- sqorm.assoc: the accessors of associations, installed into a model's
-- instance methods when an association is defined (lassoc.c). Thin sugar
-- over the model methods: every read and write here is one of them (an
-- operation each), no SQL is built here and no rows are walked here.
--
--   to-many (has_many, belongs_to_many): get_<as>, count_<as>, has_<as>,
--     create_<singular>, add_<as>, remove_<as>, set_<as>
--   to-one (belongs_to, has_one): get_<as>, set_<as>, create_<as>
-- Getters, count_ and has_ are finds of the target, so its default scope
-- applies; the writers change keys through target:unscoped() (a row
-- outside the target's scope still belongs to the association).
local core = require "sqorm.core"

local op, null = core.op, core.null

local M = {}

local function usage(msg)
  error(core.error("usage", msg), 3)
end

local function copy(t, what)
  if t ~= nil and type(t) ~= "table" then usage(("%s expects a table, got %s"):format(what, type(t))) end
  local c = {}
  if t then for k, v in pairs(t) do c[k] = v end end
  return c
end

-- where ANDed from the parts given (nil parts skipped)
local function all_of(...)
  local parts = {}
  for i = 1, select("#", ...) do
    local w = select(i, ...)
    if w ~= nil then parts[#parts + 1] = w end
  end
  if #parts == 1 then return parts[1] end
  return op.and_(table.unpack(parts))
end

-- the slot of column name in model (for writing a key into a loaded
-- instance without marking it changed: the row has it already)
local function slot_of(model, name)
  for i, c in ipairs(model.columns) do
    if c == name then return i end
  end
end

-- the key value of item (an instance of model, or a plain key value)
local function key_of(model, item, col)
  local of = core._model_of(item)
  if of == model then return item:get(col), item end
  if of ~= nil then
    usage(("expected an instance of %s or its key, got an instance of %s"):format(model.name, of.name))
  end
  if item == nil then usage("expected an instance of " .. model.name .. " or its key") end
  if item ~= item then usage("expected an instance of " .. model.name .. " or its key, got NaN") end
  return item, nil
end

local function items_of(x)
  if type(x) == "table" and core._model_of(x) == nil then return x end
  return { x }
end

local function check_lazy(self, info, what)
  local mark = core._lazy_mark(self)
  if mark == 1 or (mark == 2 and info.lazy == "raise") then
    usage(("%s:%s: %s was loaded with lazy = \"raise\" (the N+1 guard): include '%s' in the query that loads it")
      :format(info.source.name, what, info.source.name, info.as))
  end
end

function M.install(methods, info)
  local as, target, source = info.as, info.target, info.source
  -- every accessor checks its self (p.get_posts(42) is usage, not a Lua error)
  local raw_methods = methods
  methods = setmetatable({}, { __newindex = function(_, name, f)
    raw_methods[name] = function(self, ...)
      if core._model_of(self) ~= source then
        usage(("%s expects an instance of %s as self (use p:%s(...), not p.%s(...))")
          :format(name, source.name, name, name))
      end
      return f(self, ...)
    end
  end })
  local fk, scope = info.foreign_key, info.scope
  local tpk = target.primary_key[1]
  local kind = info.kind

  -- the value on self that the target rows point at (or hold)
  local function own_key(self)
    if kind == "belongs_to" then return self:get(fk) end
    return self:get(info.source_key)
  end

  -- where on the target for the rows of self
  local function rows_where(self)
    local v = own_key(self)
    if v == nil then return nil end
    if kind == "belongs_to" then return { [info.target_key] = v } end
    if kind == "belongs_to_many" then
      return { [info.target_key] = op.in_(info.through:subquery { attributes = { info.other_key },
                                                                  where = { [fk] = v } }) }
    end
    return { [fk] = v }
  end

  local function read_opts(self, opts, what)
    local o = copy(opts, what)
    local base = rows_where(self)
    if base == nil then return nil end
    o.where = all_of(base, scope, opts and opts.where)
    return o
  end

  local function ids_of(items)
    local ids, insts = {}, {}
    local list = items_of(items)
    for i = 1, rawlen(list) do -- raw: a table whose __index answers every key is no endless list
      local it = rawget(list, i)
      if it == nil then break end
      local k, inst = key_of(target, it, kind == "belongs_to_many" and info.target_key or tpk)
      ids[#ids + 1] = k
      if inst then insts[#insts + 1] = inst end
    end
    return ids, insts
  end

  methods["get_" .. as] = function(self, opts)
    check_lazy(self, info, "get_" .. as)
    local o = read_opts(self, opts, "get_" .. as)
    if info.to_many then
      if o == nil then return {} end
      return target:find_all(o)
    end
    if o == nil then return nil end
    return target:find_one(o)
  end

  if info.to_many then
    local slot = kind == "has_many" and slot_of(target, fk)

    methods["count_" .. as] = function(self, opts)
      check_lazy(self, info, "count_" .. as)
      local o = read_opts(self, opts, "count_" .. as)
      if o == nil then return 0 end
      return target:count(o)
    end

    methods["has_" .. as] = function(self, items)
      check_lazy(self, info, "has_" .. as)
      local ids = ids_of(items)
      if #ids == 0 then return true end
      local seen, n = {}, 0
      for _, k in ipairs(ids) do
        if not seen[k] then seen[k], n = true, n + 1 end
      end
      local o = read_opts(self, { where = { [kind == "belongs_to_many" and info.target_key or tpk] = ids } },
        "has_" .. as)
      if o == nil then return false end
      return target:count(o) == n
    end

    local function add(self, items)
      local v = own_key(self)
      if v == nil then usage(("add_%s: %s has no %s yet (save it first)"):format(as, source.name, info.source_key)) end
      local ids, insts = ids_of(items)
      if #ids == 0 then return self end
      if kind == "has_many" then
        target:unscoped():update({ [fk] = v }, { where = { [tpk] = ids } })
        for _, t in ipairs(insts) do rawset(t, slot, v) end
        return self
      end
      -- belongs_to_many: one join row per pair, never twice
      local through, ok = info.through, info.other_key
      local have = {}
      for _, r in ipairs(through:find_all { where = { [fk] = v, [ok] = ids }, attributes = { ok }, raw = true }) do
        have[r[ok]] = true
      end
      local rows = {}
      for _, k in ipairs(ids) do
        if not have[k] then
          have[k] = true
          rows[#rows + 1] = { [fk] = v, [ok] = k }
        end
      end
      if #rows > 0 then through:bulk_create(rows) end
      return self
    end

    local function remove(self, items, all_but)
      local v = own_key(self)
      if v == nil then return self end
      local ids, insts = ids_of(items)
      if not all_but and #ids == 0 then return self end
      local sel = ids
      if all_but then
        sel = nil
        if #ids > 0 then sel = op.not_in(ids) end
      end
      if kind == "has_many" then
        target:unscoped():update({ [fk] = null }, { where = { [fk] = v, [tpk] = sel } })
        if not all_but then for _, t in ipairs(insts) do rawset(t, slot, nil) end end
      else
        info.through:destroy { where = { [fk] = v, [info.other_key] = sel } }
      end
      return self
    end

    methods["add_" .. as] = add
    methods["remove_" .. as] = function(self, items) return remove(self, items, false) end
    methods["set_" .. as] = function(self, items)
      remove(self, items or {}, true)
      return add(self, items or {})
    end
    methods["create_" .. info.singular] = function(self, values, opts)
      local v = own_key(self)
      if v == nil then
        usage(("create_%s: %s has no %s yet (save it first)"):format(info.singular, source.name, info.source_key))
      end
      local vals = copy(values, "create_" .. info.singular)
      if kind == "has_many" then
        vals[fk] = v
        return target:create(vals, opts)
      end
      local t = target:create(vals, opts)
      add(self, t)
      return t
    end
  else
    methods["set_" .. as] = function(self, item)
      if kind == "belongs_to" then
        local k = item ~= nil and key_of(target, item, info.target_key) or nil
        self:update({ [fk] = k == nil and null or k })
        return self
      end
      local v = own_key(self)
      if v == nil then usage(("set_%s: %s has no %s yet (save it first)"):format(as, source.name, info.source_key)) end
      target:unscoped():update({ [fk] = null }, { where = { [fk] = v } })
      if item ~= nil then
        local k, inst = key_of(target, item, tpk)
        target:unscoped():update({ [fk] = v }, { where = { [tpk] = k } })
        if inst then rawset(inst, slot_of(target, fk), v) end
      end
      return self
    end
    methods["create_" .. as] = function(self, values, opts)
      local vals = copy(values, "create_" .. as)
      if kind == "belongs_to" then
        local t = target:create(vals, opts)
        self:update({ [fk] = t:get(info.target_key) })
        return t
      end
      local v = own_key(self)
      if v == nil then
        usage(("create_%s: %s has no %s yet (save it first)"):format(as, source.name, info.source_key))
      end
      vals[fk] = v
      return target:create(vals, opts)
    end
  end
end

-- Model:each{ include = ... } (lcursor.c hands it here): keyset pages in
-- primary-key order, each page one find_all - its statement with the
-- to-one JOINs, then one batched IN statement per to-many level, all in
-- the core as one operation (one suspension in async mode). A streaming
-- driver cursor can't be used: no other statement may run on its
-- connection while it is open, and the children need statements of their
-- own. Returns iterator, nil, nil, closer (a `break` closes it).
local closer_mt = {}
closer_mt.__index = {
  close = function(self) self.done = true end,
}
closer_mt.__close = function(self) self.done = true end
closer_mt.__tostring = function(self)
  return ("sqorm.Cursor (%s, keyset pages): %s"):format(self.done and "closed" or "open", self.id)
end

-- the order of the pages: nil (primary key ascending) or the primary key
-- (one column: ascending or descending)
local function page_order(model, order)
  local pk = model.primary_key
  if order == nil then return false end
  local o = order
  if type(o) == "string" then o = { o } end
  if type(o) == "table" and #o == 1 and #pk == 1 then
    local item = o[1]
    local col, dir = item, "asc"
    if type(item) == "table" then col, dir = item[1], item[2] or "asc" end
    if col == pk[1] and type(dir) == "string" then
      dir = dir:lower()
      if dir == "asc" then return false end
      if dir == "desc" then return true end
    end
  end
  usage(("each with include reads %s in pages by primary key: order must be nil or its primary key (%s)")
    :format(model.name, table.concat(pk, ", ")))
end

-- where for the rows after the key values last (composite keys: the
-- lexicographic order, spelled with and / or)
local function after(pk, last, desc)
  local cmp = desc and op.lt or op.gt
  if #pk == 1 then return { [pk[1]] = cmp(last[1]) } end
  local alts = {}
  for i = 1, #pk do
    local w = {}
    for j = 1, i - 1 do w[pk[j]] = last[j] end
    w[pk[i]] = cmp(last[i])
    alts[#alts + 1] = w
  end
  return op.or_(table.unpack(alts))
end

function M.each(model, opts, batch)
  local pk = model.primary_key
  if not pk or #pk == 0 then usage(("each with include: model %s has no primary key"):format(model.name)) end
  local desc = page_order(model, opts.order)
  local base = copy(opts)
  local limit, offset = opts.limit, opts.offset
  if limit ~= nil and (math.type(limit) ~= "integer" or limit < 0) then usage("each: limit must be an integer >= 0") end
  if offset ~= nil and (math.type(offset) ~= "integer" or offset < 0) then
    usage("each: offset must be an integer >= 0")
  end
  base.limit, base.offset, base.order = nil, nil, nil
  local order = {}
  for i, c in ipairs(pk) do order[i] = { c, desc and "desc" or "asc" } end
  -- the keys are read back from every page: select them
  if type(base.attributes) == "table" and base.attributes.exclude == nil and #base.attributes > 0 then
    local attrs, have = {}, {}
    for i, a in ipairs(base.attributes) do
      attrs[i] = a
      if type(a) == "string" then have[a] = true end
    end
    for _, c in ipairs(pk) do
      if not have[c] then attrs[#attrs + 1] = c end
    end
    base.attributes = attrs
  end
  local where = base.where
  local closer = setmetatable({ done = false }, closer_mt)
  closer.id = tostring({}):match("0x%x+") or "?"
  local buf, i, n, last, left, first, ended = {}, 0, 0, nil, limit, true, false
  local function iter()
    if closer.done then return nil end
    if i < n then
      i = i + 1
      return buf[i]
    end
    if ended or (left ~= nil and left <= 0) then
      closer.done = true
      return nil
    end
    local o = copy(base)
    -- opts are already merged with the model's scopes (lsq_scope_apply in
    -- lcursor.c): the pages must not merge them again
    o.unscoped = true
    o.order = order
    o.limit = left ~= nil and math.min(batch, left) or batch
    if first then o.offset = offset end
    if last then o.where = all_of(where, after(pk, last, desc)) end
    first = false
    buf = model:find_all(o)
    n, i = #buf, 0
    if n == 0 then
      closer.done = true
      return nil
    end
    if left ~= nil then left = left - n end
    local row = buf[n]
    last = {}
    local inst = getmetatable(row) ~= nil and type(row.get) == "function"
    for j, c in ipairs(pk) do
      if inst then last[j] = row:get(c) else last[j] = row[c] end
      if last[j] == nil then
        closer.done = true
        usage(("each with include pages by primary key: its rows must hold %s (attributes)"):format(c))
      end
    end
    if n < o.limit then ended = true end
    i = 1
    return buf[1]
  end
  return iter, nil, nil, closer
end

return M
