-- Model:each{ include = ... }: pages of parents in primary-key order, each
-- page one find with its includes (to-one JOINed, one batched IN statement
-- per to-many level), the same rows as find_all; in async mode one
-- suspension per page.
local sqorm = require "sqorm"
local H = require "spec.helper"
local M = require "spec.model_helper"
local A = require "spec.assoc_helper"

-- what a user loaded through includes looks like, for comparisons
local function shape(u)
  local posts = {}
  for i, p in ipairs(u.posts) do
    local tags = A.names(p.tags)
    table.sort(tags)
    posts[i] = p.title .. ":" .. table.concat(tags, ",")
  end
  table.sort(posts)
  return { u.name, u.profile and u.profile.bio or false, table.concat(posts, " ") }
end

local INC = { "profile", { "posts", include = { "tags" } } }

H.each_dialect(describe, function(d)
  local db, log, m

  setup(function()
    db, log = M.connect(d)
    m = A.models(db)
    db:sync { force = true }
    A.fill(m)
  end)

  teardown(function() A.cleanup(db) end)

  it("gives the rows find_all gives, one find per page: a to-one JOINed, one IN statement per to-many level", function()
    local want = {}
    for i, u in ipairs(m.User:find_all { include = INC, order = { "id" } }) do want[i] = shape(u) end
    local got = {}
    local n = A.count(log, function()
      for u in m.User:each { include = INC, batch = 2 } do got[#got + 1] = shape(u) end
    end)
    assert.are.same(want, got)
    -- pages (ann, bob) and (cid, dan): users + posts + tags each; then an
    -- empty page that ends the loop
    assert.are.equal(7, n)
    local from = #log + 1
    for _ in m.User:each { include = INC, batch = 3 } do end
    local sent = M.statements(log, from)
    -- (ann, bob, cid): 3 statements; (dan): users and posts (no post: no
    -- tags statement), a short page: the end
    assert.are.equal(5, #sent)
    local users_t, posts_t, tags_t = m.User.table_name, m.Post.table_name, m.Tag.table_name
    assert.truthy(sent[1]:find(users_t, 1, true) and sent[1]:find("JOIN", 1, true)) -- the profile, same statement
    assert.truthy(sent[2]:find(posts_t, 1, true) and sent[2]:find(" IN ", 1, true))
    assert.truthy(sent[3]:find(tags_t, 1, true) and sent[3]:find(" IN ", 1, true))
    assert.truthy(sent[4]:find(users_t, 1, true) and sent[4]:find("JOIN", 1, true))
    assert.truthy(sent[5]:find(posts_t, 1, true) and sent[5]:find(" IN ", 1, true))
  end)

  it("takes where, limit, offset, attributes, raw and a descending primary key order", function()
    local names = {}
    for u in m.User:each { include = { "posts" }, batch = 2, limit = 2, offset = 1 } do names[#names + 1] = u.name end
    assert.are.same({ "bob", "cid" }, names)
    names = {}
    for u in m.User:each { include = { "posts" }, batch = 1, order = { { "id", "desc" } } } do
      names[#names + 1] = u.name .. #u.posts
    end
    assert.are.same({ "dan0", "cid1", "bob2", "ann3" }, names)
    names = {}
    for u in m.User:each { include = { "posts" }, where = { active = true }, attributes = { "name" }, raw = true } do
      assert.is_nil(getmetatable(u))
      names[#names + 1] = u.name .. #u.posts
    end
    assert.are.same({ "ann3", "bob2", "cid1" }, names)
    -- break ends the loop; the closing value closes
    local n = 0
    for _ in m.User:each { include = { "posts" }, batch = 1 } do
      n = n + 1
      if n == 2 then break end
    end
    assert.are.equal(2, n)
  end)

  it("holds no connection between pages: the loop body may query, also in a transaction", function()
    local counts = {}
    for u in m.User:each { include = { "posts" }, batch = 2 } do
      counts[#counts + 1] = u:count_posts() == #u.posts -- a statement while the loop runs (SQLite :memory: has one connection)
    end
    assert.are.same({ true, true, true, true }, counts)
    -- in a transaction: the pages read on its connection, and see its rows
    local names = {}
    local ok = pcall(db.transaction, db, function()
      m.User:create { name = "eve" }
      for u in m.User:each { include = { "posts" }, batch = 1, where = { name = { "dan", "eve" } } } do
        names[#names + 1] = u.name .. #u.posts
      end
      error("roll back")
    end)
    assert.is_false(ok)
    assert.are.same({ "dan0", "eve0" }, names)
    assert.are.equal(0, m.User:count { where = { name = "eve" } })
  end)

  it("bad input is usage with nothing sent", function()
    local function refused(pattern, fn)
      local _, sent = M.fails(log, "usage", pattern, fn)
      assert.are.same({}, sent)
    end
    refused("order must be nil or its primary key", function()
      for _ in m.User:each { include = { "posts" }, order = { "name" } } do end
    end)
    refused("has no association 'nope'", function() for _ in m.User:each { include = { "nope" } } do end end)
    refused("batch must be an integer", function() for _ in m.User:each { include = { "posts" }, batch = 0 } do end end)
    refused("batch must be an integer", function() for _ in m.User:each { batch = "x" } do end end)
  end)

  it("batch sets the rows per fetch of a plain each too", function()
    local names = {}
    for u in m.User:each { batch = 1, order = { "id" } } do names[#names + 1] = u.name end
    assert.are.same({ "ann", "bob", "cid", "dan" }, names)
  end)
end)

-- async: one suspension per page (SQLite on a file: several connections)
for _, d0 in ipairs(H.dialects()) do
  local d, path = d0, nil
  if d0.name == "sqlite" then
    path = os.tmpname()
    d = { name = "sqlite", url = "sqlite://" .. path }
  end
  describe("each with include, async [" .. d.name .. "]", function()
    it("suspends once per page and gives the same rows", function()
      local db, log = M.connect(d, { async = "auto", pool = { max = 2 } })
      local m = A.models(db)
      db:sync { force = true }
      A.fill(m)
      local want = {}
      for i, u in ipairs(m.User:find_all { include = INC, order = { "id" } }) do want[i] = shape(u) end
      local got, from = {}, #log + 1
      local co = sqorm.spawn(function()
        for u in m.User:each { include = INC, batch = 2 } do got[#got + 1] = shape(u) end
      end)
      assert.are.equal("suspended", coroutine.status(co))
      local resumed = 0
      while sqorm.pending() > 0 do resumed = resumed + sqorm.poll() end
      assert.are.same(want, got)
      assert.are.equal(3, resumed) -- three pages, each one operation
      assert.are.equal(7, #M.statements(log, from))
      A.cleanup(db)
      if path then
        for _, suffix in ipairs { "", "-wal", "-shm" } do os.remove(path .. suffix) end
      end
    end)
  end)
end
