-- Associations: definitions (foreign-key columns added to the model that
-- holds them, conflicts and clashes refused), foreign keys in the schema
-- (sync in dependency order, actions, a dangling key is `constraint`,
-- cycles, sync{ alter = true } adding a missing key once).
local sqorm = require "sqorm"
local H = require "spec.helper"
local M = require "spec.model_helper"
local A = require "spec.assoc_helper"

local T = sqorm.types

local function two(db, prefix)
  local a = db:define(prefix .. "a", { { "id", T.INTEGER, primary_key = true, auto_increment = true },
                                        { "name", T.STRING(20) } }, { table_name = H.tname(prefix .. "a"), timestamps = false })
  local b = db:define(prefix .. "b", { { "id", T.INTEGER, primary_key = true, auto_increment = true },
                                        { "name", T.STRING(20) } }, { table_name = H.tname(prefix .. "b"), timestamps = false })
  return a, b
end

H.each_dialect(describe, function(d)
  local db, log, m

  before_each(function()
    db, log = M.connect(d)
    m = A.models(db, { posts_on_delete = "cascade" })
  end)

  after_each(function() A.cleanup(db) end)

  it("adds the foreign-key column to the model that holds it, typed like the key", function()
    local cols = m.Post.columns
    assert.are.equal("author_id", cols[#cols])
    assert.are.equal("user_id", m.Profile.columns[#m.Profile.columns])
    local p = m.Post:build { title = "x", author_id = "7" }
    assert.are.equal(7, p.author_id) -- converted like the INTEGER it references
    local info = m.Post:associations().tags
    assert.are.equal("belongs_to_many", info.kind)
    assert.are.same({ "post_id", "tag_id" }, { info.through.columns[1], info.through.columns[2] })
  end)

  it("refuses clashing and conflicting definitions (usage)", function()
    H.raises_kind("usage", "clashes with a column", function() m.User:has_many(m.Post, { as = "name" }) end)
    H.raises_kind("usage", "reserved", function() m.User:has_many(m.Post, { as = "save", foreign_key = "x_id" }) end)
    H.raises_kind("usage", "already has an association", function()
      m.User:has_many(m.Post, { as = "posts", foreign_key = "author_id" })
    end)
    H.raises_kind("usage", nil, function()
      m.Post:belongs_to(m.User, { as = "writer", foreign_key = "author_id", on_delete = "restrict" })
    end)
    H.raises_kind("usage", "unknown option", function() m.User:has_many(m.Post, { as = "x", forign_key = "y" }) end)
    H.raises_kind("usage", "on_delete", function() m.User:has_many(m.Post, { as = "x", on_delete = "explode" }) end)
    H.raises_kind("usage", "through", function() m.Post:belongs_to_many(m.User, { as = "fans" }) end)
    H.raises_kind("usage", "target Model", function() m.Post:belongs_to("user") end)
    local other = sqorm.connect("sqlite::memory:")
    local O = other:define("o", { { "id", T.INTEGER, primary_key = true } }, { table_name = "o" })
    H.raises_kind("usage", "different dbs", function() m.Post:belongs_to(O, { as = "o" }) end)
    other:close()
  end)

  it("refuses accessor names that clash (with another association, its accessors, a column), naming both", function()
    local before = #m.Post.columns
    -- has_one "post": create_post is also posts' create_<singular>
    local e = H.raises_kind("usage", "create_post", function()
      m.User:has_one(m.Post, { as = "post", foreign_key = "owner_id" })
    end)
    assert.truthy(tostring(e.message):find("'posts'", 1, true))
    assert.truthy(tostring(e.message):find("'post'", 1, true))
    -- has_many "profiles" (singular profile): create_profile is the has_one's
    e = H.raises_kind("usage", "create_profile", function()
      m.User:has_many(m.Profile, { as = "profiles", foreign_key = "owner_id" })
    end)
    assert.truthy(tostring(e.message):find("'profile'", 1, true))
    -- a name that is another association's accessor
    e = H.raises_kind("usage", "get_posts", function()
      m.User:has_many(m.Post, { as = "get_posts", foreign_key = "x_id" })
    end)
    assert.truthy(tostring(e.message):find("'posts'", 1, true))
    -- an explicit singular that makes the same create_ as another association
    H.raises_kind("usage", "create_profile", function()
      m.User:has_many(m.Post, { as = "notes", singular = "profile", foreign_key = "x_id" })
    end)
    -- nothing changed by the refusals
    assert.are.equal(before, #m.Post.columns)
    assert.is_nil(m.User:associations().post)
    assert.is_nil(m.User:associations().profiles)
    -- an accessor named like a column
    local a, b = two(db, "acc")
    local c = db:define("acc_c", { { "id", T.INTEGER, primary_key = true, auto_increment = true },
                                   { "count_items", T.INTEGER } }, { table_name = H.tname("acc_c"), timestamps = false })
    e = H.raises_kind("usage", "count_items", function() c:has_many(b, { as = "items", foreign_key = "c_id" }) end)
    assert.truthy(tostring(e.message):find("column", 1, true))
    -- an association named like the accessor of one defined later
    a:has_many(b, { as = "get_bs", foreign_key = "g_id" })
    e = H.raises_kind("usage", "get_bs", function() a:has_many(b, { as = "bs", foreign_key = "a_id" }) end)
    assert.truthy(tostring(e.message):find("'bs'", 1, true))
    -- two different names with distinct accessors are fine
    a:has_many(b, { as = "items", foreign_key = "a_id" })
    assert.are.equal("has_many", a:associations().items.kind)
  end)

  it("sync creates tables in dependency order with their foreign keys; a dangling key is `constraint`", function()
    db:sync { force = true }
    local sql = table.concat(M.statements(log), "\n")
    assert.truthy(sql:find("FOREIGN KEY", 1, true))
    H.raises_kind("constraint", nil, function() m.Post:create { title = "orphan", author_id = 999999 } end)
    local u = m.User:create { name = "ann" }
    m.Post:create { title = "ok", author_id = u.id }
    m.Profile:create { bio = "hi", user_id = u.id }
    -- actions: posts cascade (given), the profile's nullable key sets null (default)
    u:destroy()
    assert.are.equal(0, m.Post:count())
    assert.are.equal(1, m.Profile:count())
    assert.is_nil(m.Profile:find_one().user_id)
  end)

  it("join rows go with either side (cascade), and a join key must exist", function()
    db:sync { force = true }
    local p = m.Post:create { title = "p" }
    local t = m.Tag:create { name = "t" }
    p:add_tags(t)
    assert.are.equal(1, p:count_tags())
    H.raises_kind("constraint", nil, function() p:add_tags(999999) end)
    t:destroy()
    assert.are.equal(0, p:count_tags())
  end)

  it("a cycle is refused unless one edge has constraints = false", function()
    local db2 = M.connect(d)
    local X, Y = two(db2, "cyc")
    X:belongs_to(Y, { as = "y" })
    Y:belongs_to(X, { as = "x" })
    H.raises_kind("usage", "cycle", function() db2:sync { force = true } end)
    db2:close()
    local db3 = M.connect(d)
    local P, Q = two(db3, "cyd")
    P:belongs_to(Q, { as = "q" })
    Q:belongs_to(P, { as = "p", constraints = false })
    db3:sync { force = true }
    local q = Q:create { name = "q" }
    P:create { name = "p", q_id = q.id }
    Q:create { name = "dangling ok", p_id = 999999 }
    H.raises_kind("constraint", nil, function() P:create { name = "x", q_id = 999999 } end)
    db3:drop_all()
    db3:close()
  end)

  it("tables defined before the tables they reference still sync", function()
    local db2, _ = M.connect(d)
    local Child = db2:define("child", { { "id", T.INTEGER, primary_key = true, auto_increment = true } },
                             { table_name = H.tname("child"), timestamps = false })
    local Parent = db2:define("parent", { { "id", T.INTEGER, primary_key = true, auto_increment = true } },
                              { table_name = H.tname("parent"), timestamps = false })
    Child:belongs_to(Parent, { as = "parent", foreign_key = "parent_id", allow_null = false })
    db2:sync { force = true }
    local p = Parent:create {}
    Child:create { parent_id = p.id }
    H.raises_kind("constraint", nil, function() Child:create { parent_id = 999999 } end)
    p:destroy() -- a NOT NULL key cascades by default
    assert.are.equal(0, Child:count())
    db2:drop_all()
    db2:close()
  end)

  it("sync{ alter = true } adds a missing foreign key, and only once", function()
    local url, path = d.url, nil
    if d.name == "sqlite" then
      path = os.tmpname()
      url = "sqlite://" .. path
    end
    local ta, tb = H.tname("alt_a"), H.tname("alt_b")
    local function defs(dbx)
      local A_ = dbx:define("alta", { { "id", T.INTEGER, primary_key = true, auto_increment = true } },
                            { table_name = ta, timestamps = false })
      local B_ = dbx:define("altb", { { "id", T.INTEGER, primary_key = true, auto_increment = true },
                                      { "alta_id", T.INTEGER } }, { table_name = tb, timestamps = false })
      return A_, B_
    end
    local db1 = sqorm.connect(url)
    local _, B1 = defs(db1)
    db1:sync { force = true } -- no foreign key yet
    B1:create { alta_id = nil }
    local db2, log2 = M.connect { url = url }
    local A2, B2 = defs(db2)
    B2:belongs_to(A2, { as = "alta", foreign_key = "alta_id" })
    db2:sync { alter = true }
    H.raises_kind("constraint", nil, function() B2:create { alta_id = 999999 } end)
    assert.are.equal(1, B2:count()) -- the row survived (SQLite rebuilt the table)
    local from = #log2 + 1
    db2:sync { alter = true }
    for _, sql in ipairs(M.statements(log2, from)) do
      assert.is_falsy(sql:find("FOREIGN KEY", 1, true), sql)
    end
    db2:drop_all()
    db2:close()
    db1:close()
    if path then os.remove(path) end
  end)

  it("sync{ alter = true } changing a referenced table keeps the rows that reference it", function()
    local url, path = d.url, nil
    if d.name == "sqlite" then
      path = os.tmpname()
      url = "sqlite://" .. path
    end
    local tu, tp = H.tname("ref_u"), H.tname("ref_p")
    local function defs(dbx, wide)
      local U = dbx:define("refu", { { "id", T.INTEGER, primary_key = true, auto_increment = true },
                                     { "name", wide and T.STRING(200) or T.STRING(10) } },
                           { table_name = tu, timestamps = false })
      local P = dbx:define("refp", { { "id", T.INTEGER, primary_key = true, auto_increment = true } },
                           { table_name = tp, timestamps = false })
      U:has_many(P, { as = "ps", foreign_key = "refu_id", on_delete = "cascade" })
      return U, P
    end
    local db1 = sqorm.connect(url)
    local U1, P1 = defs(db1)
    db1:sync { force = true }
    P1:create { refu_id = U1:create { name = "a" }.id }
    local db2 = sqorm.connect(url)
    local _, P2 = defs(db2, true) -- a change SQLite makes by rebuilding the table
    db2:sync { alter = true }
    assert.are.equal(1, P2:count()) -- no ON DELETE CASCADE fired by the rebuild
    db2:drop_all()
    db2:close()
    db1:close()
    if path then os.remove(path) end
  end)
end)

