-- Eager loading: include of to-one (JOIN, same statement) and to-many
-- (one batched statement per level) associations, stitched in C; parent
-- limits count parents; find_and_count_all counts distinct parents.
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

  it("a to-one include is one statement (a JOIN); a missing one is nil", function()
    local n, users = A.count(log, function()
      return m.User:find_all { include = { "profile" }, order = { "id" } }
    end)
    assert.are.equal(1, n)
    assert.are.same({ "ann", "bob", "cid", "dan" }, A.names(users))
    assert.are.equal("ann's", users[1].profile.bio)
    assert.are.equal("bob's", users[2].profile.bio)
    assert.is_nil(users[3].profile) -- loaded, and nil: no error
  end)

  it("each to-many level is one more statement; none is an empty list", function()
    local n, users = A.count(log, function()
      return m.User:find_all { include = { { "posts", include = { "tags" } } }, order = { "id" } }
    end)
    assert.are.equal(3, n)
    assert.are.same({ 3, 2, 1, 0 }, { #users[1].posts, #users[2].posts, #users[3].posts, #users[4].posts })
    local a1
    for _, p in ipairs(users[1].posts) do if p.title == "a1" then a1 = p end end
    local tags = A.names(a1.tags)
    table.sort(tags)
    assert.are.same({ "blue", "red" }, tags)
    assert.are.same({}, users[4].posts)
  end)

  it("the same to-one row in one result is one Lua object", function()
    local posts = m.Post:find_all { include = { "author" }, order = { "id" } }
    assert.are.equal(6, #posts)
    assert.are.equal(posts[1].author, posts[2].author)
    assert.are.equal(posts[1].author, posts[3].author)
    assert.are_not.equal(posts[1].author, posts[4].author)
  end)

  it("a parent limit counts parents, never joined rows (sequelize 7344, 11082)", function()
    local users = m.User:find_all { include = { "posts", "profile" }, order = { "id" }, limit = 2 }
    assert.are.same({ "ann", "bob" }, A.names(users))
    assert.are.equal(3, #users[1].posts)
    assert.are.equal(2, #users[2].posts)
    local page = m.User:find_all { include = { "posts" }, order = { "id" }, limit = 2, offset = 1 }
    assert.are.same({ "bob", "cid" }, A.names(page))
  end)

  it("find_and_count_all counts distinct parents under the same filters (sequelize 1719, 9481)", function()
    local page = m.User:find_and_count_all { include = { { "posts", required = true } }, limit = 2, order = { "id" } }
    assert.are.equal(3, page.count)
    assert.are.same({ "ann", "bob" }, A.names(page.rows))
    local all = m.User:find_and_count_all { include = { "posts", "profile" }, limit = 1 }
    assert.are.equal(4, all.count)
    assert.are.equal(1, #all.rows)
    local none = m.User:find_and_count_all { where = { name = "zed" } }
    assert.are.equal(0, none.count)
    assert.are.same({}, none.rows)
  end)

  it("required keeps parents with a matching child and loads only those children", function()
    local users = m.User:find_all { include = { { "posts", required = true, where = { published = true } } },
                                    order = { "id" } }
    assert.are.same({ "ann", "bob" }, A.names(users))
    assert.are.equal(2, #users[1].posts)
    assert.are.equal(1, #users[2].posts)
    local with_profile = m.User:find_all { include = { { "profile", required = true } }, order = { "id" } }
    assert.are.same({ "ann", "bob" }, A.names(with_profile))
  end)

  it("op.has filters by a related row and loads nothing", function()
    local n, users = A.count(log, function()
      return m.User:find_all { where = { op.has("posts", { score = op.gte(7) }) }, order = { "id" } }
    end)
    assert.are.equal(1, n)
    assert.are.same({ "ann", "bob" }, A.names(users))
    assert.are.same({ "ann", "bob", "cid" }, A.names(m.User:find_all { where = { op.has("posts") }, order = { "id" } }))
    assert.are.equal(2, m.Post:count { where = { op.has("tags", { name = "blue" }) } })
    assert.are.equal(3, m.User:count { where = { op.has("posts") } })
  end)

  it("per-parent limit and order give the same rows on every dialect (sequelize 7766)", function()
    local users = m.User:find_all { include = { { "posts", order = { { "score", "desc" } }, limit = 2 } },
                                    order = { "id" } }
    assert.are.same({ "a2", "a1" }, A.names(users[1].posts, "title"))
    assert.are.same({ "b1", "b2" }, A.names(users[2].posts, "title"))
    assert.are.same({ "c1" }, A.names(users[3].posts, "title"))
    local second = m.User:find_all { include = { { "posts", order = { "id" }, limit = 1, offset = 1 } }, order = { "id" } }
    assert.are.same({ "a2" }, A.names(second[1].posts, "title"))
    assert.are.same({ "b2" }, A.names(second[2].posts, "title"))
    assert.are.same({}, second[3].posts)
  end)

  it("children stitch without the foreign key in attributes (sequelize 4694)", function()
    local users = m.User:find_all { attributes = { "name" }, include = { { "posts", attributes = { "title" } } },
                                    order = { "name" } }
    assert.are.equal(3, #users[1].posts)
    assert.is_nil(users[1].posts[1].score)
    local posts = m.Post:find_all { attributes = { "title" }, include = { { "author", attributes = { "name" } } },
                                    order = { "id" } }
    assert.are.equal("ann", posts[1].author.name)
  end)

  it("nested includes: to-one under to-many under to-one", function()
    local posts = m.Post:find_all { include = { { "author", include = { { "posts", order = { "id" } }, "profile" } } },
                                    where = { title = "b2" } }
    assert.are.equal(1, #posts)
    local bob = posts[1].author
    assert.are.equal("bob", bob.name)
    assert.are.equal("bob's", bob.profile.bio)
    assert.are.same({ "b1", "b2" }, A.names(bob.posts, "title"))
  end)

  it("order on a joined to-one column", function()
    local posts = m.Post:find_all { include = { "author" }, order = { { "author.name", "desc" }, { "id" } } }
    assert.are.same({ "c1", "b1", "b2", "a1", "a2", "a3" }, A.names(posts, "title"))
    local by = m.Post:find_all { include = { "author" }, where = { ["author.name"] = "bob" }, order = { "id" } }
    assert.are.same({ "b1", "b2" }, A.names(by, "title"))
  end)

  it("find_one and find_by_pk take include", function()
    local u = m.User:find_one { where = { name = "ann" }, include = { "posts", "profile" } }
    assert.are.equal(3, #u.posts)
    local p = m.Post:find_by_pk(u.posts[1].id, { include = { "author", "tags" } })
    assert.are.equal("ann", p.author.name)
    assert.is_table(p.tags)
  end)

  it("raw = true gives plain nested tables", function()
    local rows = m.User:find_all { include = { "posts", "profile" }, order = { "id" }, raw = true, limit = 1 }
    assert.is_nil(getmetatable(rows[1]))
    assert.are.equal("ann", rows[1].name)
    assert.are.equal(3, #rows[1].posts)
    assert.are.equal("ann's", rows[1].profile.bio)
  end)

  it("bad include input is usage with nothing sent", function()
    local function refused(pattern, fn)
      local _, sent = M.fails(log, "usage", pattern, fn)
      assert.are.same({}, sent)
    end
    refused("has no association 'nope'", function() m.User:find_all { include = { "nope" } } end)
    refused("has no association 'nope'", function() m.User:find_all { where = { op.has("nope") } } end)
    refused("unknown include option 'wher'", function() m.User:find_all { include = { { "posts", wher = {} } } } end)
    refused("included twice", function() m.User:find_all { include = { "posts", "posts" } } end)
    local other = sqorm.connect("sqlite::memory:")
    local Else = other:define("post", { { "id", sqorm.types.INTEGER, primary_key = true } }, { table_name = "x" })
    refused("another db", function() m.User:find_all { include = { Else } } end)
    other:close()
    refused("is a to-many include", function() m.User:find_all { include = { "posts" }, order = { "posts.title" } } end)
    refused("order must be nil or its primary key", function()
      for _ in m.User:each { include = { "posts" }, order = { "name" } } do end
    end)
    refused("limit, offset and order apply to to-many", function()
      m.Post:find_all { include = { { "author", limit = 1 } } }
    end)
  end)
end)
