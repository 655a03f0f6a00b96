-- Hooks (docs/api.md, "Hooks"): the order of the events per operation,
-- with the statements between them (the logging function writes "SQL"
-- into the same list); before-hooks that change values, fail, or query;
-- db-level hooks; registration errors. On every dialect.
local sqorm = require "sqorm"
local H = require "spec.helper"
local MH = require "spec.model_helper"

local T, op = sqorm.types, sqorm.op

local INSTANCE_EVENTS = {
  "before_validate", "after_validate", "validation_failed", "before_create", "after_create",
  "before_update", "after_update", "before_save", "after_save", "before_destroy", "after_destroy",
  "before_restore", "after_restore",
}
local OTHER_EVENTS = {
  "before_upsert", "after_upsert", "before_bulk_create", "after_bulk_create", "before_bulk_update",
  "after_bulk_update", "before_bulk_destroy", "after_bulk_destroy", "before_bulk_restore",
  "after_bulk_restore", "before_find", "after_find",
}

H.each_dialect(describe, function(d)
  local db, seq, P, A

  -- seq: the events and statements in order ("SQL <verb>" per statement)
  local function record(model, events)
    for _, e in ipairs(events) do
      model:add_hook(e, function(x, ctx)
        if ctx == nil then ctx = x end
        assert.are.equal(model, ctx.model)
        seq[#seq + 1] = e
      end, "rec")
    end
  end

  local function clear() for i = #seq, 1, -1 do seq[i] = nil end end

  -- records every event of model, and forgets what ran before
  local function record_all(model)
    clear()
    record(model, INSTANCE_EVENTS)
    record(model, OTHER_EVENTS)
  end

  before_each(function()
    seq = {}
    db = sqorm.connect(d.url, { logging = function(msg)
      local verb = msg:match("^Executing %(default%): (%u+)") or "?"
      seq[#seq + 1] = "SQL " .. (verb == "START" and "BEGIN" or verb) -- MySQL: START TRANSACTION
    end })
    P = MH.players(db, { paranoid = true })
    A = db:define("audit", { { "id", T.INTEGER, primary_key = true, auto_increment = true },
                             { "what", T.STRING(64) } }, { table_name = H.tname("audits"), timestamps = false })
    P:sync{ force = true }
    A:sync{ force = true }
    clear()
  end)

  after_each(function()
    MH.cleanup(db, P, A)
  end)

  describe("order of events", function()
    it("create: validate, before_create before before_save, INSERT, after_create before after_save", function()
      record_all(P)
      local p = P:create{ name = "a", coins = 5 }
      assert.are.same({ "before_validate", "after_validate", "before_create", "before_save", "SQL INSERT",
                        "after_create", "after_save" }, seq)
      assert.is_not_nil(p.id)
    end)

    it("save of a loaded instance and p:update: before_update / after_update", function()
      local p = P:create{ name = "a" }
      record_all(P)
      p.coins = 7
      p:save()
      assert.are.same({ "before_validate", "after_validate", "before_update", "before_save", "SQL UPDATE",
                        "after_update", "after_save" }, seq)
      clear()
      p:update{ coins = 8 }
      assert.are.same({ "before_validate", "after_validate", "before_update", "before_save", "SQL UPDATE",
                        "after_update", "after_save" }, seq)
      assert.are.equal(8, P:find_by_pk(p.id).coins)
    end)

    it("build then save inserts with the create events", function()
      record_all(P)
      local p = P:build{ name = "b" }
      assert.are.same({}, seq)
      p:save()
      assert.are.same({ "before_validate", "after_validate", "before_create", "before_save", "SQL INSERT",
                        "after_create", "after_save" }, seq)
    end)

    it("instance destroy (soft on a paranoid model) and force", function()
      local p = P:create{ name = "a" }
      local q = P:create{ name = "b" }
      record_all(P)
      assert.is_true(p:destroy())
      assert.are.same({ "before_destroy", "SQL UPDATE", "after_destroy" }, seq)
      clear()
      q:destroy{ force = true }
      assert.are.same({ "before_destroy", "SQL DELETE", "after_destroy" }, seq)
    end)

    it("upsert runs only before_upsert / after_upsert", function()
      P:create{ name = "a", coins = 1 }
      record_all(P)
      local seen
      P:add_hook("before_upsert", function(ctx) ctx.values.goods = 9 end)
      P:add_hook("after_upsert", function(ctx) seen = ctx.result end)
      local r = P:upsert({ name = "u", coins = 3 }, { conflict = { "name" } })
      assert.are.same({ "before_upsert", "SQL INSERT" }, { seq[1], seq[2] })
      local events = {}
      for _, e in ipairs(seq) do if not e:match("^SQL ") then events[#events + 1] = e end end
      assert.are.same({ "before_upsert", "after_upsert" }, events)
      assert.are.equal(r, seen)
      local row = P:find_one{ where = { name = "u" } }
      assert.are.equal(9, row.goods)
    end)

    it("bulk_create: bulk hooks only, one INSERT", function()
      record_all(P)
      local list = P:bulk_create{ { name = "a" }, { name = "b" } }
      assert.are.same({ "before_bulk_create", "SQL INSERT", "after_bulk_create" }, seq)
      assert.are.equal(2, #list)
    end)

    it("bulk_create with individual_hooks: each record through the create hooks, then one INSERT", function()
      record_all(P)
      P:add_hook("before_create", function(p) p.goods = 4 end)
      local list = P:bulk_create({ { name = "a" }, { name = "b" } }, { individual_hooks = true })
      local per = { "before_validate", "after_validate", "before_create", "before_save" }
      local want = { "before_bulk_create" }
      for _ = 1, 2 do for _, e in ipairs(per) do want[#want + 1] = e end end
      want[#want + 1] = "SQL INSERT"
      for _ = 1, 2 do want[#want + 1] = "after_create"; want[#want + 1] = "after_save" end
      want[#want + 1] = "after_bulk_create"
      assert.are.same(want, seq)
      assert.are.equal(2, #list)
      assert.are.equal(2, P:count{ where = { goods = 4 } })
    end)

    it("class update: bulk hooks only (ctx.where, ctx.values, ctx.affected_rows)", function()
      P:bulk_create{ { name = "a" }, { name = "b" }, { name = "c" } }
      record_all(P)
      local after
      P:add_hook("before_bulk_update", function(ctx)
        assert.are.same({ coins = 5 }, ctx.values)
        ctx.values.goods = 2
        ctx.where = { name = { "a", "b" } }
      end)
      P:add_hook("after_bulk_update", function(ctx) after = ctx.affected_rows end)
      local n = P:update({ coins = 5 }, { where = { name = "a" } })
      assert.are.same({ "before_bulk_update", "SQL UPDATE", "after_bulk_update" }, seq)
      assert.are.equal(2, n)
      assert.are.equal(2, after)
      assert.are.equal(2, P:count{ where = { coins = 5, goods = 2 } })
    end)

    it("class update with individual_hooks: one transaction, the rows loaded, instance hooks per row", function()
      P:bulk_create{ { name = "a" }, { name = "b" }, { name = "c" } }
      record_all(P)
      P:add_hook("before_update", function(p) p.goods = #p.name end)
      local n = P:update({ coins = 6 }, { where = { name = { "a", "b" } }, individual_hooks = true })
      assert.are.equal(2, n)
      local per = { "before_validate", "after_validate", "before_update", "before_save", "SQL UPDATE",
                    "after_update", "after_save" }
      local want = { "before_bulk_update", "SQL BEGIN", "SQL SELECT" }
      for _ = 1, 2 do for _, e in ipairs(per) do want[#want + 1] = e end end
      want[#want + 1] = "after_bulk_update"
      want[#want + 1] = "SQL COMMIT"
      assert.are.same(want, seq)
      assert.are.equal(2, P:count{ where = { coins = 6, goods = 1 } })
    end)

    it("class destroy: bulk hooks; individual_hooks: before/after_destroy per row", function()
      P:bulk_create{ { name = "a" }, { name = "b" }, { name = "c" } }
      record_all(P)
      assert.are.equal(1, P:destroy{ where = { name = "a" } })
      assert.are.same({ "before_bulk_destroy", "SQL UPDATE", "after_bulk_destroy" }, seq)
      clear()
      local names = {}
      P:add_hook("before_destroy", function(p) names[#names + 1] = p.name end)
      assert.are.equal(2, P:destroy{ where = { name = { "a", "b", "c" } }, individual_hooks = true })
      assert.are.same({ "before_bulk_destroy", "SQL BEGIN", "SQL SELECT", "before_destroy", "SQL UPDATE",
                        "after_destroy", "before_destroy", "SQL UPDATE", "after_destroy", "after_bulk_destroy",
                        "SQL COMMIT" }, seq)
      table.sort(names)
      assert.are.same({ "b", "c" }, names)
      assert.are.equal(0, P:count())
    end)

    it("class restore (paranoid): bulk hooks; individual_hooks: before/after_restore per deleted row", function()
      P:bulk_create{ { name = "a" }, { name = "b" }, { name = "c" } }
      P:destroy{ where = { name = { "a", "b" } } }
      record_all(P)
      assert.are.equal(1, P:restore{ where = { name = "a" } })
      assert.are.same({ "before_bulk_restore", "SQL UPDATE", "after_bulk_restore" }, seq)
      clear()
      local restored = {}
      P:add_hook("after_restore", function(p) restored[#restored + 1] = { p.name, p.deleted_at } end)
      -- a and c are live, b is deleted: only b is restored
      assert.are.equal(1, P:restore{ where = { name = { "a", "b", "c" } }, individual_hooks = true })
      assert.are.same({ "before_bulk_restore", "SQL BEGIN", "SQL SELECT", "before_restore", "SQL UPDATE",
                        "after_restore", "after_bulk_restore", "SQL COMMIT" }, seq)
      assert.are.same({ { "b", nil } }, restored)
      assert.are.equal(3, P:count())
    end)

    it("class increment / decrement: bulk update hooks (ctx.increment); individual_hooks per row", function()
      P:bulk_create{ { name = "a", coins = 10 }, { name = "b", coins = 10 } }
      record_all(P)
      local inc
      P:add_hook("before_bulk_update", function(ctx) inc = ctx.increment end)
      assert.are.equal(2, P:increment("coins", { by = 3, where = { coins = 10 } }))
      assert.are.same({ coins = 3 }, inc)
      assert.are.same({ "before_bulk_update", "SQL UPDATE", "after_bulk_update" }, seq)
      clear()
      assert.are.equal(2, P:decrement({ coins = 2 }, { where = { coins = 13 }, individual_hooks = true }))
      assert.are.same({ coins = -2 }, inc)
      assert.are.same({ "before_bulk_update", "SQL BEGIN", "SQL SELECT", "before_update", "SQL UPDATE",
                        "after_update", "before_update", "SQL UPDATE", "after_update", "after_bulk_update",
                        "SQL COMMIT" }, seq)
      assert.are.equal(2, P:count{ where = { coins = 11 } })
    end)

    it("finds: before_find may change the options, after_find sees the result", function()
      local made = P:bulk_create{ { name = "a", coins = 1 }, { name = "b", coins = 2 } }
      clear()
      local found
      P:add_hook("before_find", function(ctx)
        seq[#seq + 1] = "before_find"
        local w = ctx.options.where
        ctx.options.where = w and op.and_(w, { coins = op.gt(1) }) or { coins = op.gt(1) }
      end)
      P:add_hook("after_find", function(ctx) seq[#seq + 1] = "after_find"; found = ctx.result end)
      local all = P:find_all()
      assert.are.same({ "before_find", "SQL SELECT", "after_find" }, seq)
      assert.are.equal(1, #all)
      assert.are.equal(all, found)
      assert.are.equal("b", all[1].name)
      assert.is_nil(P:find_one{ where = { name = "a" } })
      local b = P:find_one{ where = { name = "b" } }
      assert.is_nil(P:find_by_pk(made[1].id))       -- a: the hook's where is AND-ed to the key
      assert.are.equal(b.id, P:find_by_pk(b.id).id)
      assert.are.equal(b.id, found.id)
      local fc = P:find_and_count_all{}
      assert.are.same({ 1, 1 }, { #fc.rows, fc.count })
      assert.are.equal(fc, found)
    end)

    it("before_bulk_create may change ctx.records; after_bulk_create gets the instances", function()
      local after
      P:add_hook("before_bulk_create", function(ctx)
        for _, r in ipairs(ctx.records) do r.goods = 3 end
        ctx.records[#ctx.records + 1] = { name = "added" }
      end)
      P:add_hook("after_bulk_create", function(ctx) after = ctx.instances end)
      local given = { { name = "a" } }
      local list = P:bulk_create(given)
      assert.are.same({ name = "a" }, given[1]) -- the caller's records are left alone
      assert.are.equal(list, after)
      assert.are.equal(2, #list)
      assert.are.equal(3, P:find_one{ where = { name = "a" } }.goods)
      assert.is_not_nil(P:find_one{ where = { name = "added" } })
    end)

    it("a before_bulk_create that replaces ctx.records with a non-table raises usage, nothing sent", function()
      P:add_hook("before_bulk_create", function(ctx) ctx.records = function() end end)
      local ok, err = pcall(P.bulk_create, P, { { name = "a" } })
      assert.is_false(ok)
      assert.are.equal("usage", err.kind)
      assert.matches("ctx.records must be the table of records, got function", err.message, 1, true)
      assert.are.equal(0, P:count())
    end)

    it("no hooks for find_or_create, each, counts, aggregates, reload, build, p:increment", function()
      local p = P:create{ name = "a" }
      record_all(P)
      P:find_or_create{ where = { name = "z" } }
      for _ in P:each() do end
      P:count()
      P:sum("coins")
      p:reload()
      P:build{ name = "y" }
      p:increment("coins")
      for _, e in ipairs(seq) do assert.matches("^SQL ", e) end
    end)

    it("a model that never had a hook runs the C methods directly", function()
      local Q = db:define("quest", { { "id", T.INTEGER, primary_key = true } }, { table_name = H.tname("q") })
      for _, name in ipairs { "create", "update", "destroy", "bulk_create", "find_all", "find_by_pk", "upsert" } do
        assert.is_true(rawequal(sqorm._model_methods[name], Q[name]), name)
        assert.are.equal("C", debug.getinfo(Q[name], "S").what, name)
      end
      for _, name in ipairs { "save", "update", "destroy" } do
        assert.are.equal("C", debug.getinfo(Q.methods[name], "S").what, name)
      end
      P:add_hook("after_find", function() end)
      assert.are.equal("Lua", debug.getinfo(P.create, "S").what) -- wrapped once it has a hook
    end)

    it("model hooks run before the db's, in the order added", function()
      db:add_hook("before_create", function() seq[#seq + 1] = "db" end)
      P:add_hook("before_create", function() seq[#seq + 1] = "m1" end)
      P:add_hook("before_create", function() seq[#seq + 1] = "m2" end)
      P:create{ name = "a" }
      assert.are.same({ "m1", "m2", "db", "SQL INSERT" }, seq)
    end)
  end)

  describe("before-hooks", function()
    it("change values: they are validated and saved", function()
      P:add_hook("before_save", function(p) p.goods = 42 end)
      P:add_hook("before_create", function(p) p.name = p.name:upper() end)
      local p = P:create{ name = "abc" }
      local row = P:find_by_pk(p.id)
      assert.are.same({ "ABC", 42 }, { row.name, row.goods })
      -- a value a hook sets is validated like any: nothing sent
      P:add_hook("before_update", function(q) q.coins = -1 end, "neg")
      clear()
      row.goods = 1
      local err = H.raises_kind("validation", "coins", function() row:save() end)
      assert.are.equal("must be >= 0", err.fields.coins)
      assert.are.same({}, seq)
      assert.are.equal(42, P:find_by_pk(p.id).goods)
    end)

    it("an error aborts with nothing sent and propagates unchanged (every write)", function()
      local p = P:create{ name = "a" }
      local sentinel = setmetatable({}, { __tostring = function() return "sentinel" end })
      local calls = {
        { "before_create", function() return P:create{ name = "x" } end },
        { "before_save", function() p.coins = 3; return p:save() end },
        { "before_update", function() return p:update{ coins = 4 } end },
        { "before_destroy", function() return p:destroy() end },
        { "before_validate", function() return P:create{ name = "y" } end },
        { "before_bulk_create", function() return P:bulk_create{ { name = "z" } } end },
        { "before_bulk_update", function() return P:update({ coins = 1 }, { all = true }) end },
        { "before_bulk_destroy", function() return P:destroy{ where = { id = p.id } } end },
        { "before_bulk_restore", function() return P:restore{ all = true } end },
        { "before_upsert", function() return P:upsert{ name = "w" } end },
        { "before_find", function() return P:find_all() end },
      }
      for _, c in ipairs(calls) do
        P:add_hook(c[1], function() error(sentinel) end, "boom")
        clear()
        local ok, err = pcall(c[2])
        assert.is_false(ok, c[1])
        assert.is_true(rawequal(sentinel, err), c[1])
        assert.are.same({}, seq, c[1])
        P:remove_hook(c[1], "boom")
      end
      -- an individual_hooks per-row error rolls back: no write was sent
      P:add_hook("before_update", function() error(sentinel) end, "boom")
      clear()
      local ok, err = pcall(P.update, P, { coins = 9 }, { all = true, individual_hooks = true })
      assert.is_false(ok)
      assert.is_true(rawequal(sentinel, err))
      assert.are.same({ "SQL BEGIN", "SQL SELECT", "SQL ROLLBACK" }, seq)
    end)

    it("validation_failed runs on a validation error, then the error is raised", function()
      local got
      P:add_hook("validation_failed", function(p, ctx) got = { p.name, ctx.error.fields.coins } end)
      P:add_hook("after_validate", function() error("must not run") end)
      local err = H.raises_kind("validation", "coins", P.create, P, { name = "a", coins = -5 })
      assert.are.same({ "a", "must be >= 0" }, got)
      assert.are.same({ coins = "must be >= 0" }, err.fields)
      assert.are.same({}, seq)
    end)

    it("hooks join the caller's transaction: their rows vanish on rollback", function()
      local txs = {}
      P:add_hook("after_create", function(p, ctx)
        txs[#txs + 1] = ctx.transaction or false
        A:create{ what = "created " .. p.name }
      end)
      local ok = pcall(db.transaction, db, function(tx)
        P:create{ name = "a" }
        assert.are.equal(tx, txs[1])
        assert.are.equal(1, A:count())
        error("abort")
      end)
      assert.is_false(ok)
      assert.are.equal(0, A:count())
      assert.are.equal(0, P:count())
      -- and outside a transaction ctx.transaction is nil
      P:create{ name = "b" }
      assert.are.equal(1, A:count())
      assert.is_false(txs[2])
    end)
  end)

  describe("scoped models", function()
    it("Model:scope(...) and unscoped() run the model's hooks, and their writes keep the scope", function()
      local S = db:define("scoped_player", {
        { "id", T.INTEGER, primary_key = true, auto_increment = true },
        { "name", T.STRING(16) },
        { "coins", T.INTEGER, allow_null = false, default = 0 },
        { "banned", T.BOOLEAN, allow_null = false, default = false },
      }, { table_name = H.tname("scoped_players"), timestamps = false,
           default_scope = { where = { banned = false } },
           scopes = { rich = { where = { coins = op.gt(100) } } } })
      S:sync{ force = true }
      S:bulk_create{ { name = "a", coins = 500 }, { name = "b", coins = 5 }, { name = "c", coins = 900, banned = true } }
      local got = {}
      S:add_hook("before_bulk_update", function(ctx) got[#got + 1] = "bbu:" .. ctx.model.name end)
      S:add_hook("after_bulk_update", function(ctx) got[#got + 1] = "abu:" .. ctx.affected_rows end)
      S:add_hook("before_bulk_destroy", function(ctx) got[#got + 1] = "bbd:" .. ctx.model.name end)
      S:add_hook("after_find", function() got[#got + 1] = "af" end)
      -- rich AND not banned: a only
      assert.are.equal(1, S:scope("rich"):update({ coins = 1 }, { where = { coins = op.gt(0) } }))
      assert.are.same({ "bbu:scoped_player", "abu:1" }, got)
      -- unscoped: the banned c (900) is seen; a now has 1 coin
      assert.are.same({ "c" }, { S:unscoped():find_all{ where = { coins = op.gt(100) } }[1].name })
      assert.are.same({ "bbu:scoped_player", "abu:1", "af" }, got)
      -- unscoped destroy reaches the banned row, with its bulk hook
      assert.are.equal(1, S:unscoped():destroy{ where = { name = "c" } })
      assert.are.equal("bbd:scoped_player", got[4])
      -- individual_hooks on a scoped model loads only the rows of the scope
      local rows = {}
      S:add_hook("before_update", function(p) rows[#rows + 1] = p.name end)
      S:scope("rich"):update({ coins = 2 }, { where = { coins = op.gte(0) }, individual_hooks = true })
      assert.are.same({}, rows) -- nobody is rich any more
      S:update({ coins = 3 }, { where = { coins = op.gte(0) }, individual_hooks = true })
      table.sort(rows)
      assert.are.same({ "a", "b" }, rows)
      -- a hook added through a scoped model is its model's
      local seen = 0
      S:scope("rich"):add_hook("before_bulk_destroy", function() seen = seen + 1 end, "via_scope")
      S:destroy{ where = { name = "zz" } }
      assert.are.equal(1, seen)
      assert.is_true(S:unscoped():remove_hook("before_bulk_destroy", "via_scope"))
      S:destroy{ where = { name = "zz" } }
      assert.are.equal(1, seen)
      S:drop()
    end)
  end)

  describe("db-level hooks", function()
    it("apply to models defined before and after, and go away with remove_hook", function()
      local Q
      db:add_hook("before_save", function(_, ctx) seq[#seq + 1] = "db:" .. ctx.model.name end, "tag")
      Q = db:define("quest", { { "id", T.INTEGER, primary_key = true, auto_increment = true }, { "t", T.STRING(8) } },
                    { table_name = H.tname("quests"), timestamps = false })
      Q:sync{ force = true }
      clear()
      P:create{ name = "a" }
      Q:create{ t = "x" }
      assert.are.same({ "db:player", "SQL INSERT", "db:quest", "SQL INSERT" }, seq)
      assert.is_true(db:remove_hook("before_save", "tag"))
      assert.is_false(db:remove_hook("before_save", "tag"))
      clear()
      P:create{ name = "b" }
      assert.are.same({ "SQL INSERT" }, seq)
      Q:drop()
    end)
  end)

  describe("registration", function()
    it("define option hooks: a function or a list of functions per event", function()
      local Q = db:define("quest", { { "id", T.INTEGER, primary_key = true, auto_increment = true },
                                     { "t", T.STRING(8) } },
        { table_name = H.tname("quests"), timestamps = false, hooks = {
          before_create = { function(q) q.t = q.t .. "1" end, function(q) q.t = q.t .. "2" end },
          after_create = function(q) seq[#seq + 1] = "after " .. q.t end,
        } })
      Q:sync{ force = true }
      clear()
      Q:create{ t = "x" }
      assert.are.same({ "SQL INSERT", "after x12" }, seq)
      Q:drop()
    end)

    it("remove_hook by name or by function", function()
      local f = function() seq[#seq + 1] = "f" end
      P:add_hook("before_create", f)
      P:add_hook("before_create", function() seq[#seq + 1] = "named" end, "n")
      assert.is_true(P:remove_hook("before_create", "n"))
      assert.is_false(P:remove_hook("before_create", "n"))
      P:create{ name = "a" }
      assert.are.same({ "f", "SQL INSERT" }, seq)
      assert.is_true(P:remove_hook("before_create", f))
      clear()
      P:create{ name = "b" }
      assert.are.same({ "SQL INSERT" }, seq)
    end)

    it("a model without hooks takes individual_hooks on class writes (nothing to run)", function()
      P:bulk_create{ { name = "a" }, { name = "b" } }
      clear()
      local w = { where = { name = "a" }, individual_hooks = true }
      assert.are.equal(1, P:update({ coins = 2 }, w))
      assert.are.equal(1, P:increment("coins", w))
      assert.are.equal(1, P:destroy(w))
      assert.are.equal(1, P:restore(w))
      assert.are.equal(1, #P:bulk_create({ { name = "c" } }, { individual_hooks = true }))
      assert.are.same({ "SQL UPDATE", "SQL UPDATE", "SQL UPDATE", "SQL UPDATE", "SQL INSERT" }, seq)
      H.raises_kind("usage", "individual_hooks must be a boolean", P.bulk_create, P, { { name = "d" } },
        { individual_hooks = 0 })
      H.raises_kind("usage", "individual_hooks must be a boolean", P.update, P, { coins = 1 },
        { all = true, individual_hooks = "yes" })
    end)

    it("bad input is kind usage, with nothing registered", function()
      local f = function() end
      H.raises_kind("usage", "unknown hook event 'before_frobnicate'", P.add_hook, P, "before_frobnicate", f)
      H.raises_kind("usage", "unknown hook event 'beforeCreate'", db.add_hook, db, "beforeCreate", f)
      H.raises_kind("usage", "unknown hook event", P.remove_hook, P, "after_nothing", "x")
      H.raises_kind("usage", "expected a function, got string", P.add_hook, P, "before_create", "f")
      H.raises_kind("usage", "expected a function, got nil", db.add_hook, db, "before_create")
      H.raises_kind("usage", "the name must be a string", P.add_hook, P, "before_create", f, 5)
      H.raises_kind("usage", "event names are strings", P.add_hook, P, 1, f)
      H.raises_kind("usage", "name or function", P.remove_hook, P, "before_create", 3)
      P:add_hook("before_create", f, "x")
      H.raises_kind("usage", "named 'x' is there already", P.add_hook, P, "before_create", f, "x")
      H.raises_kind("usage", "expected a model", P.add_hook, {}, "before_create", f)
      H.raises_kind("usage", nil, db.add_hook, {}, "before_create", f)
      local cols = { { "id", T.INTEGER, primary_key = true } }
      H.raises_kind("usage", "unknown hook event 'oops'", db.define, db, "q", cols, { hooks = { oops = f } })
      H.raises_kind("usage", "hooks.before_create must be a function", db.define, db, "q", cols,
        { hooks = { before_create = 5 } })
      H.raises_kind("usage", "hooks.before_create must be a function", db.define, db, "q", cols,
        { hooks = { before_create = { f, "x" } } })
      H.raises_kind("usage", "hooks must be a table", db.define, db, "q", cols, { hooks = f })
      H.raises_kind("usage", "ctx:after_commit expects a function", function()
        P:add_hook("before_save", function(_, ctx) ctx:after_commit(42) end, "ac")
        P:create{ name = "q" }
      end)
      P:remove_hook("before_save", "ac")
      H.raises_kind("usage", "unknown option 'wehre'", P.update, P, { coins = 1 },
        { wehre = { id = 1 }, where = { id = 1 }, individual_hooks = true })
      H.raises_kind("usage", "individual_hooks must be a boolean", P.destroy, P, { all = true, individual_hooks = 1 })
      assert.is_nil(db:model("q"))
    end)
  end)
end)
