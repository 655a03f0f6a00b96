-- Scopes (issue 12): default_scope and named scopes of db:define,
-- Model:scope(...) / Model:unscoped(); merge order default -> named (left
-- to right) -> call options; where AND-ed (never overwritten, sequelize
-- 14110), include merged by association name, other options: later wins.
local sqorm = require "sqorm"
local H = require "spec.helper"
local M = require "spec.model_helper"
local T, op = sqorm.types, sqorm.op

local function names(list)
  local out = {}
  for i, r in ipairs(list) do out[i] = r.name or r.title end
  return out
end

local function sorted(t)
  table.sort(t)
  return t
end

-- the number of statements fn sends, and its results
local function counted(log, fn)
  local from = #log + 1
  local r = table.pack(fn())
  return #log - from + 1, table.unpack(r, 1, r.n)
end

-- the text of the last statement logged
local function last(log)
  local s = M.statements(log)
  return s[#s]
end

-- 1 when the SQL text has a condition on column c (c = ?, c > ?, ...)
local function cond(sql, c)
  return sql:find(c .. "[`\"]? *[=<>]") ~= nil or sql:find(c .. "[`\"]? BETWEEN") ~= nil
end

-- how many times plain text s occurs in text
local function occurs(text, s)
  local n, i = 0, 1
  while true do
    local a, b = text:find(s, i, true)
    if not a then return n end
    n, i = n + 1, b + 1
  end
end

H.each_dialect(describe, function(d)
  local db, log, Player, Post, Item, Plain

  setup(function()
    db, log = M.connect(d)
    Post = db:define("post", {
      { "id", T.INTEGER, primary_key = true, auto_increment = true },
      { "title", T.STRING(32) },
      { "hidden", T.BOOLEAN, allow_null = false, default = false },
    }, { table_name = H.tname("sc_posts"), timestamps = false, default_scope = { where = { hidden = false } } })
    Player = db:define("player", {
      { "id", T.INTEGER, primary_key = true, auto_increment = true },
      { "name", T.STRING(32) },
      { "coins", T.INTEGER, allow_null = false, default = 0 },
      { "banned", T.BOOLEAN, allow_null = false, default = false },
    }, {
      table_name = H.tname("sc_players"),
      timestamps = false,
      default_scope = { where = { banned = false } },
      scopes = {
        rich = { where = { coins = op.gt(1000) } },
        by_name = { order = { "name" } },
        top = function(n) return { order = { { "coins", "desc" } }, limit = n } end,
        between = function(lo, hi) return { where = { coins = op.between(lo, hi) } } end,
        a_posts = { include = { { "posts", where = { title = op.like("a%") } } } },
        boom = function() error("scope exploded") end,
        nothing = function() return 42 end,
      },
    })
    Player:has_many(Post, { as = "posts", foreign_key = "player_id" })
    Item = db:define("item", {
      { "id", T.INTEGER, primary_key = true, auto_increment = true },
      { "name", T.STRING(32) },
      { "shop", T.INTEGER, allow_null = false },
    }, { table_name = H.tname("sc_items"), paranoid = true, default_scope = { where = { shop = 1 } } })
    Plain = db:define("plain", {
      { "id", T.INTEGER, primary_key = true, auto_increment = true },
      { "name", T.STRING(32) },
    }, { table_name = H.tname("sc_plain"), timestamps = false })
    db:sync { force = true }
  end)

  teardown(function() M.cleanup(db, Post, Player, Item, Plain) end)

  before_each(function()
    Post:unscoped():destroy { all = true }
    Player:unscoped():destroy { all = true }
    Item:unscoped():destroy { all = true, force = true }
    local ps = Player:bulk_create {
      { name = "ann", coins = 50 }, { name = "bob", coins = 1500 }, { name = "cid", coins = 3000 },
      { name = "dan", coins = 5000, banned = true }, { name = "eve", coins = 10, banned = true },
    }
    Post:bulk_create {
      { title = "a1", player_id = ps[1].id }, { title = "a2", player_id = ps[1].id, hidden = true },
      { title = "b1", player_id = ps[1].id }, { title = "a3", player_id = ps[2].id },
    }
    Item:bulk_create { { name = "i1", shop = 1 }, { name = "i2", shop = 1 }, { name = "i3", shop = 2 } }
    M.clear(log)
  end)

  describe("the default scope", function()
    it("applies to find_all, find_one, count, the aggregates and find_and_count_all (one statement each)", function()
      local n, rows = counted(log, function() return Player:find_all { order = { "id" } } end)
      assert.are.equal(1, n)
      assert.are.same({ "ann", "bob", "cid" }, names(rows))
      assert.truthy(cond(last(log), "banned"))
      n, rows = counted(log, function() return Player:find_one { where = { name = "dan" } } end)
      assert.are.equal(1, n)
      assert.is_nil(rows)
      assert.are.equal(3, Player:count())
      assert.truthy(cond(last(log), "banned"))
      assert.are.equal(4550, tonumber(Player:sum("coins")))
      assert.are.equal(3000, tonumber(Player:max("coins")))
      assert.are.equal(50, tonumber(Player:min("coins")))
      assert.truthy(cond(last(log), "banned"))
      local page
      n, page = counted(log, function() return Player:find_and_count_all { order = { "id" }, limit = 1 } end)
      assert.are.equal(2, n)
      assert.are.equal(3, page.count)
      assert.are.same({ "ann" }, names(page.rows))
      for _, s in ipairs(M.statements(log, #log - 1)) do assert.truthy(cond(s, "banned")) end
    end)

    it("applies to each", function()
      local got = {}
      for p in Player:each { order = { "id" } } do got[#got + 1] = p.name end
      assert.are.same({ "ann", "bob", "cid" }, got)
      assert.truthy(cond(last(log), "banned"))
    end)

    it("applies to find_by_pk (as Sequelize's findByPk); reload of an instance finds its row", function()
      local dan = Player:unscoped():find_one { where = { name = "dan" } }
      M.clear(log)
      local n, p = counted(log, function() return Player:find_by_pk(dan.id) end)
      assert.are.equal(1, n)
      assert.is_nil(p)
      assert.truthy(cond(last(log), "banned"))
      assert.are.equal("ann", Player:find_by_pk(Player:unscoped():find_one { where = { name = "ann" } }.id).name)
      assert.are.equal("dan", Player:unscoped():find_by_pk(dan.id).name)
      -- the key is still required to be the key; where is no option of find_by_pk
      local _, sent = M.fails(log, "usage", "unknown option 'where'", function()
        return Player:find_by_pk(dan.id, { where = { name = "dan" } })
      end)
      assert.are.same({}, sent)
      -- an instance addresses its row by key: reload ignores scopes
      dan:reload()
      assert.are.equal("dan", dan.name)
    end)

    it("applies to class update, destroy and increment: rows outside it are untouched", function()
      assert.are.equal(2, Player:update({ coins = 7 }, { where = { coins = op.gt(1000) } }))
      assert.truthy(cond(last(log), "banned"))
      assert.are.equal(2, Player:increment("coins", { where = { coins = 7 }, by = 3 }))
      local all = Player:unscoped():find_all { order = { "id" } }
      assert.are.same({ 50, 10, 10, 5000, 10 }, { all[1].coins, all[2].coins, all[3].coins, all[4].coins, all[5].coins })
      assert.are.equal(3, Player:destroy { all = true })
      assert.are.same({ "dan", "eve" }, names(Player:unscoped():find_all { order = { "id" } }))
    end)

    it("never stands in for the caller's where: a where-less update or destroy is still refused", function()
      local _, sent = M.fails(log, "usage", "without a where", function() return Player:destroy() end)
      assert.are.same({}, sent)
      _, sent = M.fails(log, "usage", "without a where", function() return Player:update({ coins = 1 }) end)
      assert.are.same({}, sent)
      assert.are.equal(5, Player:unscoped():count())
    end)

    it("applies to restore and soft destroy of a paranoid model", function()
      assert.are.equal(2, Item:destroy { all = true })
      assert.are.equal(0, Item:count())
      assert.are.equal(1, Item:unscoped():count())
      assert.are.equal(2, Item:restore { all = true })
      assert.are.same({ "i1", "i2" }, names(Item:find_all { order = { "id" } }))
      assert.are.equal(1, Item:unscoped():destroy { where = { shop = 2 } })
      assert.are.equal(0, Item:restore { where = { name = "i3" } })
      assert.are.equal(1, Item:unscoped():restore { where = { name = "i3" } })
    end)

    it("ANDs its where with the call's, also on the same column (sequelize 14110)", function()
      local Cap = db:define("cap", {
        { "id", T.INTEGER, primary_key = true, auto_increment = true },
        { "coins", T.INTEGER },
      }, { table_name = Player.table_name, timestamps = false, default_scope = { where = { coins = op.gt(20) } } })
      local n, rows = counted(log, function() return Cap:find_all { where = { coins = op.lt(2000) }, order = { "id" } } end)
      assert.are.equal(1, n)
      local coins = {}
      for i, r in ipairs(rows) do coins[i] = r.coins end
      assert.are.same({ 50, 1500 }, coins)
      assert.are.equal(2, occurs(last(log), "coins") - 1) -- the two conditions (and the selected column)
      assert.are.equal(2, Cap:count { where = { coins = op.lt(2000) } })
    end)

    it("applies to the model inside an include; unscoped = true opts out", function()
      local n, rows = counted(log, function()
        return Player:find_all { include = "posts", where = { name = "ann" } }
      end)
      assert.are.equal(2, n)
      assert.are.same({ "a1", "b1" }, sorted(names(rows[1].posts)))
      assert.truthy(cond(last(log), "hidden"))
      rows = Player:find_all { include = { { "posts", unscoped = true } }, where = { name = "ann" } }
      assert.are.same({ "a1", "a2", "b1" }, sorted(names(rows[1].posts)))
      assert.falsy(cond(last(log), "hidden"))
      -- ANDed with the include's own where
      rows = Player:find_all { include = { { "posts", where = { title = op.like("a%") } } }, where = { name = "ann" } }
      assert.are.same({ "a1" }, names(rows[1].posts))
      -- the accessors are finds of the target: its default scope applies
      assert.are.same({ "a1", "b1" }, sorted(names(rows[1]:get_posts())))
      assert.are.equal(2, rows[1]:count_posts())
    end)

    it("is left out by unscoped = true in a read's options", function()
      assert.are.equal(5, #Player:find_all { unscoped = true })
      assert.are.equal(5, Player:count { unscoped = true })
      assert.falsy(cond(last(log), "banned"))
    end)

    it("applies to find_or_create: its where is ANDed in and its equalities fill the new row", function()
      local p, created = Player:find_or_create { where = { name = "dan" }, defaults = { coins = 1 } }
      assert.is_true(created)
      assert.are.equal(false, p.banned)
      assert.are.equal(2, Player:unscoped():count { where = { name = "dan" } })
      local again, c2 = Player:find_or_create { where = { name = "dan" } }
      assert.is_false(c2)
      assert.are.equal(p.id, again.id)
    end)

    it("leaves the writers of an association alone: they change keys through the unscoped target", function()
      local ann = Player:find_one { where = { name = "ann" } }
      ann:set_posts {}
      assert.are.equal(0, Post:unscoped():count { where = { player_id = ann.id } })
    end)

    it("is not applied by create, build and bulk_create", function()
      local p = Player:create { name = "fay", banned = true }
      assert.is_true(p.banned)
      assert.is_nil(Player:find_one { where = { name = "fay" } })
    end)
  end)

  describe("Model:unscoped()", function()
    it("removes every scope", function()
      local n, rows = counted(log, function() return Player:unscoped():find_all { order = { "id" } } end)
      assert.are.equal(1, n)
      assert.are.equal(5, #rows)
      assert.falsy(cond(last(log), "banned"))
      assert.are.equal(5, Player:unscoped():count())
      assert.are.equal(5, Player:scope("rich"):unscoped():count())
      assert.matches("unscoped", tostring(Player:unscoped()))
    end)

    it("keeps the model's other methods and properties", function()
      local U = Player:unscoped()
      assert.are.equal(Player.table_name, U.table_name)
      assert.are.same(Player.columns, U.columns)
      local p = U:create { name = "gil", coins = 2 }
      assert.are.equal("gil", U:find_by_pk(p.id).name)
      H.raises_kind("usage", "scoped model", function() U.foo = function() end end)
    end)
  end)

  describe("named scopes", function()
    it("a table scope adds to the default scope", function()
      local n, rows = counted(log, function() return Player:scope("rich"):find_all { order = { "id" } } end)
      assert.are.equal(1, n)
      assert.are.same({ "bob", "cid" }, names(rows))
      local sql = last(log)
      assert.truthy(cond(sql, "banned") and cond(sql, "coins"))
    end)

    it("a function scope takes arguments; scopes merge left to right, call options last", function()
      local rows = Player:scope("rich", { "top", 1 }):find_all()
      assert.are.same({ "cid" }, names(rows))
      assert.are.same({ "bob", "cid" }, names(Player:scope({ "between", 1000, 4000 }):find_all { order = { "id" } }))
      -- later options win: the call's limit and order over top's
      assert.are.same({ "ann", "bob" }, names(Player:scope({ "top", 3 }):find_all { order = { "id" }, limit = 2 }))
      -- of two scopes' orders the later one wins
      assert.are.same({ "ann", "bob", "cid" }, names(Player:scope({ "top", 5 }, "by_name"):find_all()))
      assert.are.same({ "cid", "bob", "ann" }, names(Player:scope("by_name", { "top", 5 }):find_all()))
      -- a scoped model's scope() adds to its scopes
      assert.are.same({ "cid" }, names(Player:scope("rich"):scope({ "top", 1 }):find_all()))
      -- where of two scopes and the call: all apply
      assert.are.same({ "bob" }, names(Player:scope("rich", { "between", 0, 2000 }):find_all { where = { name = op.ne("zed") } }))
      assert.are.equal(1, Player:scope("rich", { "between", 0, 2000 }):count())
    end)

    it("count and the writes take only what applies to them from a scope", function()
      -- top's order and limit are no options of count or update
      assert.are.equal(3, Player:scope({ "top", 1 }):count())
      assert.are.equal(3, Player:scope({ "top", 1 }):update({ coins = 1 }, { all = true }))
    end)

    it("on an unscoped model leave the default scope out; \"default\" adds it back", function()
      assert.are.same({ "bob", "cid", "dan" }, names(Player:unscoped():scope("rich"):find_all { order = { "id" } }))
      assert.are.same({ "bob", "cid" }, names(Player:unscoped():scope("default", "rich"):find_all { order = { "id" } }))
      assert.are.same({ "bob", "cid" }, names(Player:scope("default", "rich"):find_all { order = { "id" } }))
      assert.are.equal("sqorm.Model player (table " .. Player.table_name .. ") scoped: default, rich, top",
        tostring(Player:scope("rich", { "top", 3 })))
    end)

    it("includes merge by association name", function()
      local n, rows = counted(log, function()
        return Player:scope("a_posts"):find_all {
          include = { { "posts", where = { title = op.ne("a2") }, order = { "title" } } },
          where = { name = "ann" },
        }
      end)
      assert.are.equal(2, n)
      -- a_posts' like 'a%', the call's <> 'a2' and Post's default scope all apply
      assert.are.same({ "a1" }, names(rows[1].posts))
      rows = Player:scope("a_posts"):find_all { include = "posts", where = { name = "ann" } }
      assert.are.same({ "a1" }, names(rows[1].posts))
      rows = Player:scope("a_posts"):find_all { include = { Post }, where = { name = "bob" } }
      assert.are.same({ "a3" }, names(rows[1].posts))
      rows = Player:scope("a_posts"):find_all { include = { { "posts", unscoped = true } }, where = { name = "ann" } }
      assert.are.same({ "a1", "a2" }, sorted(names(rows[1].posts)))
    end)

    it("work through every class method of the scoped model", function()
      local R = Player:scope("rich")
      assert.are.same({ "bob", "cid" }, names(R:find_all { order = { "id" } }))
      assert.are.equal("bob", R:find_one { order = { "id" } }.name)
      local bob = Player:find_one { where = { name = "bob" } }
      local ann = Player:find_one { where = { name = "ann" } }
      assert.are.equal("bob", R:find_by_pk(bob.id).name)
      assert.is_nil(R:find_by_pk(ann.id))
      assert.are.equal(2, R:count())
      assert.are.equal(4500, tonumber(R:sum("coins")))
      assert.are.equal(1500, tonumber(R:min("coins")))
      assert.are.equal(2, R:find_and_count_all().count)
      local got = {}
      for p in R:each { order = { "id" } } do got[#got + 1] = p.name end
      assert.are.same({ "bob", "cid" }, got)
      assert.are.equal(2, R:increment("coins", { all = true }))
      assert.are.equal(2, R:decrement({ coins = 2 }, { all = true }))
      assert.are.equal(2, R:update({ coins = 2000 }, { all = true }))
      assert.are.equal(50, Player:find_by_pk(ann.id).coins)
      assert.are.equal(2, R:destroy { where = { name = op.ne("x") } })
      assert.are.same({ "ann", "dan", "eve" }, names(Player:unscoped():find_all { order = { "id" } }))
    end)

    it("each takes a scope's options, its include too; the pages don't merge the scopes again", function()
      local got = {}
      for p in Player:scope("a_posts", "rich"):each { order = { "id" } } do
        got[#got + 1] = p.name .. ":" .. table.concat(names(p.posts), ",")
      end
      assert.are.same({ "bob:a3", "cid:" }, got)
      -- each page is one find with its include: the parents' statement
      -- carries the default scope's condition once
      local st = M.statements(log)
      local parents = st[#st - 1]
      local _, conds = parents:gsub("banned[`\"]? *=", "")
      assert.are.equal(1, conds)
      -- unscoped: the pages of an each with include read outside the default scope
      got = {}
      for p in Player:unscoped():each { order = { "id" }, include = { "posts" } } do got[#got + 1] = p.name end
      assert.are.same({ "ann", "bob", "cid", "dan", "eve" }, got)
    end)

    it("find_or_create needs in defaults a column a scope constrains by an operator", function()
      local _, sent = M.fails(log, "usage", "coins", function()
        return Player:scope("rich"):find_or_create { where = { name = "zed" } }
      end)
      assert.are.same({}, sent)
      local p, created = Player:scope("rich"):find_or_create { where = { name = "zed" }, defaults = { coins = 2000 } }
      assert.is_true(created)
      assert.are.equal(2000, p.coins)
    end)

    it("user class methods get the scoped model as self", function()
      Player.names_of = function(self) return names(self:find_all { order = { "id" } }) end
      assert.are.same({ "bob", "cid" }, Player:scope("rich"):names_of())
      assert.are.same({ "ann", "bob", "cid" }, Player:names_of())
      Player.names_of = nil
    end)

    it("a model without scopes takes scope(\"default\") and unscoped()", function()
      Plain:create { name = "x" }
      assert.are.equal(1, Plain:scope("default"):count())
      assert.are.equal(1, Plain:unscoped():count())
    end)
  end)

  describe("bad input is kind usage with nothing sent", function()
    it("an unknown scope name", function()
      local _, sent = M.fails(log, "usage", "has no scope 'nope'", function() return Player:scope("nope"):find_all() end)
      assert.are.same({}, sent)
      _, sent = M.fails(log, "usage", "has no scope 'rich'", function() return Plain:scope("rich") end)
      assert.are.same({}, sent)
    end)

    it("a scope function that raises propagates its error; one returning no table is usage", function()
      local ok, err = pcall(Player.scope, Player, "boom")
      assert.is_false(ok)
      assert.truthy(tostring(err):find("scope exploded", 1, true))
      local _, sent = M.fails(log, "usage", "scope 'nothing' must return a table", function() return Player:scope("nothing") end)
      assert.are.same({}, sent)
    end)

    it("bad scope arguments", function()
      M.fails(log, "usage", "must be a scope name", function() return Player:scope(5) end)
      M.fails(log, "usage", "must be a scope name", function() return Player:scope({ 5 }) end)
      M.fails(log, "usage", "takes no arguments", function() return Player:scope({ "rich", 1 }) end)
      M.fails(log, "usage", "expected a sqorm.Model", function() return Player.scope(5, "rich") end)
      assert.are.same({}, M.statements(log))
    end)

    it("bad scope definitions", function()
      local cols = { { "id", T.INTEGER, primary_key = true } }
      M.fails(log, "usage", "default_scope must be a table", function()
        return db:define("bad", cols, { default_scope = 5 })
      end)
      M.fails(log, "usage", "unknown option 'bogus'", function()
        return db:define("bad", cols, { scopes = { x = { bogus = 1 } } })
      end)
      M.fails(log, "usage", "where must be a table", function()
        return db:define("bad", cols, { default_scope = { where = 5 } })
      end)
      M.fails(log, "usage", "'default' names the default scope", function()
        return db:define("bad", cols, { scopes = { default = {} } })
      end)
      M.fails(log, "usage", "scopes must be a table", function() return db:define("bad", cols, { scopes = 1 }) end)
      M.fails(log, "usage", "scope 'x' must be a table", function()
        return db:define("bad", cols, { scopes = { x = 1 } })
      end)
      assert.are.same({}, M.statements(log))
    end)

    it("a scope naming an unknown column fails when used, before anything is sent", function()
      local Bad = db:define("badcol", { { "id", T.INTEGER, primary_key = true } },
        { table_name = Plain.table_name, timestamps = false, scopes = { odd = { where = { nope = 1 } } } })
      local _, sent = M.fails(log, "usage", "nope", function() return Bad:scope("odd"):find_all() end)
      assert.are.same({}, sent)
      _, sent = M.fails(log, "usage", "nope", function() return Bad:scope("odd"):destroy { all = true } end)
      assert.are.same({}, sent)
      -- an empty where of the call stays refused under a scope
      _, sent = M.fails(log, "usage", "empty", function() return Player:find_all { where = {} } end)
      assert.are.same({}, sent)
    end)
  end)
end)
