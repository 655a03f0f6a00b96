-- Regressions for what the Lua API fuzzer (fuzz/lua_api.lua) found: every
-- failure of a sqorm call is an error object with a kind, never a bare
-- Lua argument error. Binding-level (no SQL differs per dialect), so on
-- SQLite.
local sqorm = require "sqorm"
local H = require "spec.helper"
local T = sqorm.types

describe("lua_api fuzzer regressions", function()
  local db, Player
  before_each(function()
    db = sqorm.connect("sqlite::memory:")
    Player = db:define("player", { { "id", T.INTEGER, primary_key = true }, { "name", T.STRING(20) } })
    Player:sync()
  end)
  after_each(function() db:close() end)

  it("sqorm.error with arguments that are not strings is kind usage", function()
    for _, args in ipairs({ { {}, "m" }, { "usage", {} }, { nil, "m" }, { "usage", nil }, { print, "m" },
      { "usage", coroutine.create(print) }, { sqorm.error("usage", "x"), "m" } }) do
      H.raises_kind("usage", "sqorm.error(kind, message)", sqorm.error, args[1], args[2])
    end
    -- still works with strings
    local e = sqorm.error("validation", "nope")
    assert.are.equal("validation", e.kind)
    assert.are.equal("nope", e.message)
  end)

  it("db:model with a name that is not a string is kind usage", function()
    for _, v in ipairs({ {}, print, true, Player }) do
      H.raises_kind("usage", "db:model(name)", db.model, db, v)
    end
    H.raises_kind("usage", "db:model(name)", db.model, db)
    assert.are.equal(Player, db:model("player"))
    assert.is_nil(db:model("nobody"))
  end)

  it("tostring of an operator holding a string quotes it (it raised 'invalid option %q')", function()
    assert.are.equal('sqorm.op.eq("ann")', tostring(sqorm.op.eq("ann")))
    assert.are.equal('sqorm.op.between("a\\"b", 2)', tostring(sqorm.op.between('a"b', 2)))
    assert.are.equal('sqorm.op.like("x\\010y\\000")', tostring(sqorm.op.like("x\ny\0")))
    assert.are.equal("sqorm.op.in_({ ... })", tostring(sqorm.op.in_{ 1 }):gsub("table: 0x%x+", "{ ... }"))
  end)

  it("a method called on the wrong value is kind usage naming the expected self", function()
    local tx = db:begin()
    local it, _, _, cur = Player:each()
    assert.is_function(it)
    local others = { 42, "x", {}, db, Player, tx, cur, Player:build{ id = 1 } }
    local cases = {
      { tx.commit, "sqorm.Tx" }, { tx.rollback, "sqorm.Tx" }, { tx.is_open, "sqorm.Tx" },
      { getmetatable(tx).__close, "sqorm.Tx" }, { getmetatable(tx).__tostring, "sqorm.Tx" },
      { cur.close, "sqorm.Cursor" }, { getmetatable(cur).__tostring, "sqorm.Cursor" },
      { db.close, "sqorm.Db" }, { db.is_closed, "sqorm.Db" }, { getmetatable(db).__tostring, "sqorm.Db" },
      { getmetatable(Player).__tostring, "sqorm.Model" },
    }
    for _, c in ipairs(cases) do
      for _, v in ipairs(others) do
        if getmetatable(v) ~= (c[2] == "sqorm.Tx" and getmetatable(tx) or c[2] == "sqorm.Cursor" and getmetatable(cur)
            or c[2] == "sqorm.Db" and getmetatable(db) or getmetatable(Player)) then
          H.raises_kind("usage", "expected a " .. c[2] .. " as self", c[1], v)
        end
      end
    end
    H.raises_kind("usage", "expected a sqorm.Model", getmetatable(Player).__index, 42, "find_all")
    H.raises_kind("usage", "expected a sqorm.Model as self", getmetatable(Player).__newindex, 42, "f", print)
    -- nothing was closed or ended by the refused calls
    assert.is_true(tx:is_open())
    assert.is_false(db:is_closed())
    cur:close()
    tx:rollback()
  end)
end)

-- Found when the fuzzer began to drive async, include and accessors.
describe("lua_api fuzzer regressions: async and associations", function()
  local db, Guild, Member
  before_each(function()
    db = sqorm.connect("sqlite::memory:")
    Guild = db:define("guild", { { "id", T.INTEGER, primary_key = true }, { "name", T.STRING(20) } })
    Member = db:define("member", { { "id", T.INTEGER, primary_key = true }, { "name", T.STRING(20) } })
    Guild:has_many(Member, { as = "members", foreign_key = "guild_id" })
    Member:belongs_to(Guild, { as = "guild", foreign_key = "guild_id" })
    db:sync{ force = true }
  end)
  after_each(function() db:close() end)

  it("sqorm.cancel of something that is no coroutine is kind usage (it raised a bare argument error)", function()
    for _, v in ipairs({ 42, "x", {}, sqorm.fn.now(), db, print }) do
      H.raises_kind("usage", "sqorm.cancel", sqorm.cancel, v)
    end
    H.raises_kind("usage", "sqorm.cancel", sqorm.cancel)
    assert.is_false(sqorm.cancel(coroutine.create(print)))
  end)

  it("an accessor called on something that is no instance of its model is kind usage", function()
    local g = Guild:create{ id = 1, name = "red" }
    local m = Member:create{ id = 2, name = "ann", guild_id = 1 }
    for _, name in ipairs({ "get_members", "count_members", "has_members", "add_members", "remove_members",
      "set_members", "create_member" }) do
      for _, self in ipairs({ 42, "x", {}, sqorm.op.eq(1), m, Guild, db }) do
        H.raises_kind("usage", name, g[name], self)
      end
    end
    for _, name in ipairs({ "get_guild", "set_guild", "create_guild" }) do
      H.raises_kind("usage", name, m[name], g)
    end
    assert.are.equal(1, g:count_members())
  end)

  it("accessor options and values that are no tables are kind usage (pairs raised on them)", function()
    local g = Guild:create{ id = 1, name = "red" }
    local m = Member:create{ id = 2, name = "ann", guild_id = 1 }
    for _, v in ipairs({ 42, "x", true, coroutine.create(print), print }) do
      H.raises_kind("usage", "get_members", g.get_members, g, v)
      H.raises_kind("usage", "count_members", g.count_members, g, v)
      H.raises_kind("usage", "get_guild", m.get_guild, m, v)
      H.raises_kind("usage", "create_member", g.create_member, g, v)
      H.raises_kind("usage", "create_guild", m.create_guild, m, v)
    end
    H.raises_kind("usage", "NaN", g.has_members, g, 0 / 0)
    assert.are.equal(1, #g:get_members())
  end)

  it("an accessor item that only looks like an instance (its __index answers every key) is no instance, "
    .. "nor an endless list", function()
    local g = Guild:create{ id = 1, name = "red" }
    local m = Member:create{ id = 2, name = "ann", guild_id = 1 }
    local liar = setmetatable({}, { __index = function(_, k) return k end })
    for _, call in ipairs({
      function() return m:set_guild(liar) end,
      function() return g:has_members(liar) end,
      function() return g:add_members({ liar }) end,
      function() return g:set_members(liar) end,
    }) do
      local ok, e = pcall(call)
      assert(ok or sqorm.is_error(e), "a bare Lua error: " .. tostring(e))
    end
    -- an instance of another model where an instance of the target is expected
    H.raises_kind("usage", "instance of member", g.add_members, g, { g })
    -- set_members(liar) was an empty list: it left the guild without members
    assert.are.equal(0, g:count_members())
  end)

  it("an association name with a NUL byte is kind usage (C cut it at the NUL)", function()
    H.raises_kind("usage", "belongs_to", Member.belongs_to, Member, Guild, { as = "a\0b", foreign_key = "guild_id" })
    H.raises_kind("usage", "has_many", Guild.has_many, Guild, Member, { as = "x\0", foreign_key = "guild_id" })
    H.raises_kind("usage", "belongs_to", Member.belongs_to, Member, Guild, { as = "g2", foreign_key = "guild_id\0x" })
  end)
end)

describe("lua_api fuzzer regressions: a cursor shared by coroutines (async)", function()
  it("closing or iterating a cursor whose fetch is in flight in another coroutine is kind usage "
    .. "(it reused the operation in flight: UBSan, a null cursor in closed_k)", function()
    local path = os.tmpname()
    local db = sqorm.connect("sqlite://" .. path, { async = true, pool = { max = 2 } })
    local P
    sqorm.run(function()
      P = db:define("p", { { "id", T.INTEGER, primary_key = true } })
      P:sync{ force = true }
      local rows = {}
      for i = 1, 300 do rows[i] = { id = i } end
      P:bulk_create(rows)
    end)
    local it, st, init, cur
    local n, a_ok = 0, nil
    sqorm.spawn(function()
      it, st, init, cur = P:each()
      a_ok = pcall(function() for _ in it, st, init do n = n + 1 end end)
    end)
    while cur == nil do sqorm.poll() end
    -- the first coroutine waits for a fetch of cur; a second one closes and iterates it
    local e1, e2
    sqorm.spawn(function()
      e1 = select(2, pcall(cur.close, cur))
      e2 = select(2, pcall(it, st, init))
    end)
    while sqorm.pending() > 0 do sqorm.poll() end
    assert.is_true(sqorm.is_error(e1) and e1.kind == "usage", tostring(e1))
    assert.is_true(sqorm.is_error(e2) and e2.kind == "usage", tostring(e2))
    assert.is_true(a_ok)
    assert.are.equal(300, n)
    assert.are.equal(0, db:pool_stats().in_use)
    db:close()
    os.remove(path)
  end)
end)

describe("lua_api fuzzer regressions: hooks and scopes", function()
  local db, Player
  before_each(function()
    db = sqorm.connect("sqlite::memory:")
    Player = db:define("player", { { "id", T.INTEGER, primary_key = true }, { "name", T.STRING(20) } })
    Player:sync()
    Player:create({ id = 1, name = "ann" })
  end)
  after_each(function() db:close() end)

  it("find_by_pk with only after_find hooks returns the row found, not what a hook left in ctx.result "
    .. "(it returned ctx.result: a hook's junk became the result)", function()
    local seen
    Player:add_hook("after_find", function(ctx) seen = ctx.result ctx.result = print end)
    local p = Player:find_by_pk(1)
    assert.are.equal("ann", p.name)
    assert.are.equal(p, seen)
    -- the same as the other finds
    assert.are.equal("ann", Player:find_one({ where = { id = 1 } }).name)
    assert.are.equal("ann", Player:find_all()[1].name)
  end)

  -- values an after_commit callback raises that tostring can't describe
  local function odd_values()
    local raising = setmetatable({}, { __tostring = function() error("tostring raised") end })
    local no_string = setmetatable({}, { __tostring = function() return {} end, __name = 42 })
    return { raising, no_string }
  end

  it("an after_commit callback raising a value whose __tostring raises or returns no string is kind after_commit "
    .. "(it was a plain string error, or the __tostring error, and committed = true was lost)", function()
    local cause
    Player:add_hook("after_create", function(_, ctx) ctx:after_commit(function() error(cause) end) end)
    for i, v in ipairs(odd_values()) do
      cause = v
      -- at once (no transaction)
      local ok, e = pcall(Player.create, Player, { id = 10 + i, name = "x" })
      assert.is_false(ok)
      assert.is_true(sqorm.is_error(e))
      assert.are.equal("after_commit", e.kind)
      assert.are.equal(v, e.cause)
      assert.is_true(e.committed)
      assert.are.equal("string", type(e.message))
      -- after the COMMIT of a transaction
      ok, e = pcall(db.transaction, db, function() Player:create({ id = 20 + i, name = "y" }) end)
      assert.is_false(ok)
      assert.is_true(sqorm.is_error(e))
      assert.are.equal("after_commit", e.kind)
      assert.are.equal(v, e.cause)
      assert.is_true(e.committed)
      assert.are.equal("string", type(e.message))
    end
    assert.are.equal(5, Player:count())
  end)

  it("an after_commit callback raising nil after a COMMIT is kind after_commit with cause nil "
    .. "(the nil error was taken for no error: the call returned as if all had run)", function()
    local ran
    db:transaction(function()
      Player:create({ id = 2, name = "b" })
    end)
    Player:add_hook("after_update", function(_, ctx)
      ctx:after_commit(function() error(nil) end)
      ctx:after_commit(function() ran = true end)
    end)
    local ok, e = pcall(db.transaction, db, function()
      local p = Player:find_by_pk(2)
      p:update({ name = "c" })
    end)
    assert.is_false(ok)
    assert.is_true(sqorm.is_error(e))
    assert.are.equal("after_commit", e.kind)
    assert.is_nil(e.cause)
    assert.is_true(e.committed)
    assert.is_true(ran)
    assert.are.equal("c", Player:find_by_pk(2).name)
  end)

  it("ctx:after_commit works after a hook replaced ctx.db (it called ctx.db:_after_commit: "
    .. "'attempt to call a nil value'), and a table made with the context's metatable is kind usage", function()
    local ran, fake
    Player:add_hook("before_create", function(_, ctx)
      ctx.db = { junk = true }
      ctx:after_commit(function() ran = true end)
      fake = setmetatable({ db = db }, getmetatable(ctx))
    end)
    db:transaction(function() Player:create({ id = 3, name = "c" }) end)
    assert.is_true(ran)
    H.raises_kind("usage", "expected a hook context", fake.after_commit, fake, function() end)
  end)

  it("create and update with individual_hooks on a scoped model run the save hooks "
    .. "(update raised 'attempt to index a nil value': the saved C methods were looked up by the scoped model; create was kind usage)", function()
    local S = db:define("splayer", { { "id", T.INTEGER, primary_key = true }, { "name", T.STRING(20) } },
      { table_name = "players", default_scope = { where = { id = sqorm.op.gte(0) } }, scopes = { one = { where = { id = 1 } } } })
    local seen = {}
    S:add_hook("before_save", function(p) seen[#seen + 1] = p.name end)
    local p = S:scope("one"):create({ id = 7, name = "g" })
    assert.are.equal(7, p.id)
    assert.are.equal(1, S:unscoped():update({ name = "h" }, { where = { id = 7 }, individual_hooks = true }))
    assert.are.equal(1, S:scope("one"):update({ name = "i" }, { all = true, individual_hooks = true }))
    assert.are.same({ "g", "h", "i" }, seen)
    assert.are.equal("i", S:find_by_pk(1).name)
    assert.are.equal("h", S:find_by_pk(7).name)
  end)

  it("an instance's destroy called on something else is kind usage before any hook runs "
    .. "(before_destroy ran with the db as its instance)", function()
    local got = {}
    Player:add_hook("before_destroy", function(p) got[#got + 1] = p end)
    local p = Player:find_by_pk(1)
    for _, v in ipairs({ db, Player, {}, "x" }) do
      H.raises_kind("usage", "", p.destroy, v)
    end
    assert.are.same({}, got)
    p:destroy()
    assert.are.same({ p }, got)
  end)
end)
