-- spec/assoc_helper.lua - what the association specs share: users with a
-- profile (has_one), posts (has_many / belongs_to "author"), tags through
-- a join table (belongs_to_many both ways), on fresh table names, and a
-- statement counter over the db's logging.
local sqorm = require "sqorm"
local H = require "spec.helper"
local M = require "spec.model_helper"

local T = sqorm.types
local A = {}

-- Defines the models on db (table names unique per call) and returns
-- them: { User, Profile, Post, Tag, through = name }.
function A.models(db, opts)
  opts = opts or {}
  local User = db:define("user", {
    { "id", T.INTEGER, primary_key = true, auto_increment = true },
    { "name", T.STRING(40) },
    { "active", T.BOOLEAN, default = true },
  }, { table_name = H.tname("users"), timestamps = false })
  local Profile = db:define("profile", {
    { "id", T.INTEGER, primary_key = true, auto_increment = true },
    { "bio", T.STRING(80) },
  }, { table_name = H.tname("profiles"), timestamps = false })
  local Post = db:define("post", {
    { "id", T.INTEGER, primary_key = true, auto_increment = true },
    { "title", T.STRING(40) },
    { "published", T.BOOLEAN, default = false },
    { "score", T.INTEGER, default = 0 },
  }, { table_name = H.tname("posts"), timestamps = false })
  local Tag = db:define("tag", {
    { "id", T.INTEGER, primary_key = true, auto_increment = true },
    { "name", T.STRING(40) },
  }, { table_name = H.tname("tags"), timestamps = false })
  local through = H.tname("post_tags")
  User:has_one(Profile, { as = "profile", foreign_key = "user_id", on_delete = opts.profile_on_delete })
  User:has_many(Post, { as = "posts", foreign_key = "author_id", on_delete = opts.posts_on_delete })
  Post:belongs_to(User, { as = "author", foreign_key = "author_id" })
  Post:belongs_to_many(Tag, { as = "tags", through = through, foreign_key = "post_id", other_key = "tag_id" })
  Tag:belongs_to_many(Post, { as = "posts", through = through, foreign_key = "tag_id", other_key = "post_id" })
  return { User = User, Profile = Profile, Post = Post, Tag = Tag, through = through }
end

-- 4 users (dan has nothing), posts with scores, tags:
--   ann: a1 (pub, 5), a2 (10), a3 (pub, 1)     bob: b1 (pub, 7), b2 (3)     cid: c1 (2)
--   tags: a1 {red, blue}, a2 {red}, b1 {blue, green}
function A.fill(m)
  local U, P, Tg = m.User, m.Post, m.Tag
  local ann = U:create { name = "ann" }
  local bob = U:create { name = "bob" }
  local cid = U:create { name = "cid" }
  U:create { name = "dan", active = false }
  m.Profile:create { bio = "ann's", user_id = ann.id }
  m.Profile:create { bio = "bob's", user_id = bob.id }
  local function post(u, t, pub, s) return P:create { title = t, published = pub, score = s, author_id = u.id } end
  local a1, a2 = post(ann, "a1", true, 5), post(ann, "a2", false, 10)
  post(ann, "a3", true, 1)
  local b1 = post(bob, "b1", true, 7)
  post(bob, "b2", false, 3)
  post(cid, "c1", false, 2)
  local red, blue, green = Tg:create { name = "red" }, Tg:create { name = "blue" }, Tg:create { name = "green" }
  a1:add_tags { red, blue }
  a2:add_tags(red)
  b1:add_tags { blue, green }
end

-- The number of statements fn sends (through the db's logging).
function A.count(log, fn)
  local from = #log + 1
  local r = fn()
  return #M.statements(log, from), r
end

-- The names (or another field) of a list of instances.
function A.names(list, field)
  local t = {}
  for i, x in ipairs(list) do t[i] = x[field or "name"] end
  return t
end

function A.cleanup(db)
  if not db or db:is_closed() then return end
  pcall(db.drop_all, db)
  db:close()
end

return A
