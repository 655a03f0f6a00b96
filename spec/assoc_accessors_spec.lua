-- Association accessors (get / count / has / create / add / remove / set),
-- reading an association that was not loaded (usage, no SQL), and the
-- N+1 guard lazy = "raise", a mark on the instances one query loaded
-- (never on others: sqlalchemy 5208).
local sqorm = require "sqorm"
local H = require "spec.helper"
local M = require "spec.model_helper"
local A = require "spec.assoc_helper"
local op = sqorm.op

H.each_dialect(describe, function(d)
  local db, log, m

  setup(function()
    db, log = M.connect(d)
    m = A.models(db)
    db:sync { force = true }
    A.fill(m)
  end)

  teardown(function() A.cleanup(db) end)

  local function user(name) return m.User:find_one { where = { name = name } } end

  it("reading an association that was not loaded is usage and sends nothing", function()
    local ann = user("ann")
    local _, sent = M.fails(log, "usage", "not loaded", function() return ann.posts end)
    assert.are.same({}, sent)
    M.fails(log, "usage", "not loaded", function() return ann.profile end)
  end)

  it("to-many getters: get, count, has (with options)", function()
    local ann = user("ann")
    assert.are.same({ "a1", "a3" }, A.names(ann:get_posts { where = { published = true }, order = { "id" } }, "title"))
    assert.are.equal(3, ann:count_posts())
    assert.are.equal(2, ann:count_posts { where = { published = true } })
    local posts = ann:get_posts { order = { "id" } }
    assert.is_true(ann:has_posts(posts[1]))
    assert.is_true(ann:has_posts { posts[1], posts[2] })
    local b1 = m.Post:find_one { where = { title = "b1" } }
    assert.is_false(ann:has_posts(b1))
    assert.are.same({ "blue", "red" }, A.names(posts[1]:get_tags { order = { "name" } }))
    assert.are.equal(0, user("dan"):count_posts())
  end)

  it("to-one getters and setters", function()
    local b2 = m.Post:find_one { where = { title = "b2" } }
    assert.are.equal("bob", b2:get_author().name)
    assert.are.equal("bob's", user("bob"):get_profile().bio)
    assert.is_nil(user("cid"):get_profile())
    b2:set_author(user("cid"))
    assert.are.equal("cid", m.Post:find_one { where = { title = "b2" }, include = { "author" } }.author.name)
    b2:set_author(user("bob"))
    local pr = user("cid"):create_profile { bio = "cid's" }
    assert.are.equal("cid's", user("cid"):get_profile().bio)
    user("cid"):set_profile(nil)
    assert.is_nil(user("cid"):get_profile())
    assert.is_nil(m.Profile:find_by_pk(pr.id).user_id)
  end)

  it("to-many writers; adding twice makes no duplicate", function()
    local dan = user("dan")
    local p = dan:create_post { title = "d1" }
    assert.are.equal(dan.id, p.author_id)
    local t = p:create_tag { name = "gold" }
    p:add_tags(t)
    p:add_tags { t, t }
    assert.are.equal(1, p:count_tags())
    local info = m.Post:associations().tags
    assert.are.equal(1, info.through:count { where = { post_id = p.id } })
    local silver = m.Tag:create { name = "silver" }
    p:set_tags { silver }
    assert.are.same({ "silver" }, A.names(p:get_tags()))
    p:remove_tags(silver)
    assert.are.equal(0, p:count_tags())
    local loose = m.Post:create { title = "loose" }
    dan:add_posts(loose)
    assert.are.equal(dan.id, loose.author_id)
    assert.are.equal(2, dan:count_posts())
    dan:remove_posts(loose)
    assert.is_nil(m.Post:find_by_pk(loose.id).author_id)
    dan:set_posts {}
    assert.are.equal(0, dan:count_posts())
  end)

  it("lazy = \"raise\" marks only the instances its query loaded", function()
    local guarded = m.User:find_all { lazy = "raise", order = { "id" } }
    local n = #log
    H.raises_kind("usage", "N+1", function() guarded[1]:get_posts() end)
    assert.are.equal(n, #log)
    -- the same rows loaded by another query are not guarded
    local free = m.User:find_all { order = { "id" } }
    assert.are.equal(3, #free[1]:get_posts())
    -- included associations read fine under the guard
    local loaded = m.User:find_all { lazy = "raise", include = { "posts" }, order = { "id" } }
    assert.are.equal(3, #loaded[1].posts)
  end)

  it("an association defined with lazy = \"raise\" guards what finds load", function()
    local db2, log2 = M.connect(d)
    local m2 = A.models(db2)
    m2.User:has_many(m2.Post, { as = "drafts", foreign_key = "author_id", scope = { published = false }, lazy = "raise" })
    db2:sync { force = true }
    local u = m2.User:create { name = "x" }
    m2.Post:create { title = "d", author_id = u.id, published = false }
    m2.Post:create { title = "p", author_id = u.id, published = true }
    assert.are.equal(1, #u:get_drafts()) -- made by create: not loaded under the guard
    local found = m2.User:find_one { where = { id = u.id } }
    H.raises_kind("usage", "N+1", function() found:get_drafts() end)
    assert.are.equal(2, #found:get_posts()) -- other associations are not guarded
    local with = m2.User:find_one { where = { id = u.id }, include = { "drafts" } }
    assert.are.same({ "d" }, A.names(with.drafts, "title")) -- the scope applies to includes
    assert.is_truthy(#log2 > 0)
    A.cleanup(db2)
  end)

  it("a model defined with lazy = \"raise\" guards what its finds load", function()
    local db2 = M.connect(d)
    local m2 = A.models(db2)
    local Guarded = db2:define("guarded", { { "id", sqorm.types.INTEGER, primary_key = true, auto_increment = true } },
                               { table_name = H.tname("guarded"), timestamps = false, lazy = "raise" })
    Guarded:has_many(m2.Post, { as = "posts", foreign_key = "guarded_id" })
    db2:sync { force = true }
    local g = Guarded:create {}
    assert.are.same({}, g:get_posts())
    H.raises_kind("usage", "N+1", function() Guarded:find_by_pk(g.id):get_posts() end)
    H.raises_kind("usage", "N+1", function() Guarded:find_all()[1]:get_posts() end)
    H.raises_kind("usage", "lazy", function() db2:define("x", { { "id", sqorm.types.INTEGER } }, { lazy = "yes" }) end)
    A.cleanup(db2)
  end)

  it("a db connected with lazy = \"raise\" guards every association; model and association lazy override", function()
    local db2, log2 = M.connect(d, { lazy = "raise" })
    local m2 = A.models(db2)
    -- an association's own lazy = true overrides the db's default
    m2.User:has_many(m2.Post, { as = "drafts", foreign_key = "author_id", scope = { published = false }, lazy = true })
    -- so does a model's lazy = true for the associations defined on it
    local Free = db2:define("free", { { "id", sqorm.types.INTEGER, primary_key = true, auto_increment = true } },
                            { table_name = H.tname("free"), timestamps = false, lazy = true })
    Free:has_many(m2.Post, { as = "posts", foreign_key = "free_id" })
    db2:sync { force = true }
    local u = m2.User:create { name = "x" }
    m2.Post:create { title = "d", author_id = u.id, published = false }
    assert.are.equal(1, #u:get_posts()) -- made by create: not guarded
    local found = m2.User:find_one { where = { id = u.id } }
    local n = #log2
    H.raises_kind("usage", "N+1", function() found:get_posts() end)
    H.raises_kind("usage", "N+1", function() found:get_profile() end)
    H.raises_kind("usage", "N+1", function() found:count_posts() end)
    assert.are.equal(n, #log2) -- nothing sent
    assert.are.equal(1, #found:get_drafts())
    local p = m2.Post:find_one { where = { title = "d" } }
    H.raises_kind("usage", "N+1", function() p:get_author() end)
    H.raises_kind("usage", "N+1", function() p:get_tags() end)
    local f = Free:create {}
    assert.are.same({}, Free:find_by_pk(f.id):get_posts())
    -- a query's lazy = "raise" still guards everything it loads
    local q = m2.User:find_one { where = { id = u.id }, lazy = "raise" }
    H.raises_kind("usage", "N+1", function() q:get_drafts() end)
    -- includes read as usual
    assert.are.equal(1, #m2.User:find_one { where = { id = u.id }, include = { "posts" } }.posts)
    H.raises_kind("usage", "lazy", function() M.connect(d, { lazy = "yes" }) end)
    A.cleanup(db2)
  end)

  it("include results survive a recorded run replayed (the async path)", function()
    local db2 = M.connect(d, { _replay = true })
    local m2 = A.models(db2)
    db2:sync { force = true }
    A.fill(m2)
    local users = m2.User:find_all { include = { "profile", { "posts", include = { "tags", "author" } } }, order = { "id" } }
    assert.are.equal(3, #users[1].posts)
    assert.are.equal("ann's", users[1].profile.bio)
    assert.are.equal("ann", users[1].posts[1].author.name)
    local page = m2.User:find_and_count_all { include = { "posts" }, order = { "id" }, limit = 1 }
    assert.are.equal(4, page.count)
    assert.are.equal(3, #page.rows[1].posts)
    A.cleanup(db2)
  end)

  it("op.has in a count", function()
    assert.are.equal(2, m.User:count { where = { op.has("posts", { published = true }) } })
  end)
end)
