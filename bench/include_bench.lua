-- include_bench.lua: issue 11's eager-loading workload - 1,000 users x 10
-- posts x 3 tags - read three ways through sqorm:
--   include  User:find_all{ include = { { "posts", include = { "tags" } } } }
--   n_plus_1 the loop written by hand: find_all users, get_posts per user,
--            get_tags per post
--   joined   one raw SQL join (db:query), rows as plain tables
-- and prints, per way, calls/s, rows/s (users + posts + tags delivered per
-- call: 41,000) and statements per call. The raw C join, and the floor
-- (the same join building the same Lua tables), are bench/include_raw.c
-- (same data; sqlite, mysql, postgres).
--
--   lua5.4 bench/include_bench.lua [url | sqlite | mysql | postgres] [seconds per way]
--
-- A bare dialect name connects as bench/run.sh's other clients do (SQLite
-- in memory; the servers of the SQORM_TEST_* variables, without TLS). The
-- `include` way also prints a line in run.sh's format, one op being one
-- object of the tree (41,000 per call):
--   RESULT include <db> sqorm <objects> <seconds> <objects/s> <peak_rss_kib>
-- The C module from the build tree next to this directory (../build, or
-- $SQORM_BUILD), as sqorm_bench.lua loads it.
local here = arg[0]:match("^(.*)/[^/]*$") or "."
local build = os.getenv("SQORM_BUILD") or (here .. "/../build")
package.path = here .. "/?.lua;" .. build .. "/share/?.lua;" .. build .. "/share/?/init.lua;" ..
  here .. "/../lua/?.lua;" .. here .. "/../lua/?/init.lua;" .. package.path
package.cpath = build .. "/lib/?.so;" .. package.cpath
local sqorm = require "sqorm"
local T = sqorm.types

local url = arg[1] or "sqlite::memory:"
local budget = tonumber(arg[2] or "3")
local USERS, POSTS, TAGS, NTAGS = 1000, 10, 3, 50

local statements = 0
local function count_statement() statements = statements + 1 end
local target = url
if url == "sqlite" then
  target = "sqlite::memory:"
elseif url == "mysql" or url == "postgres" then
  local s = require("benchlib").server(url) -- the SQORM_TEST_* server, as run.sh's other clients
  target = { dialect = url, host = s.host, port = s.port, user = s.user, password = s.password,
             database = s.database, ssl = { mode = "disable" } }
end
local function open()
  if type(target) == "table" then
    target.logging = count_statement
    return sqorm.connect(target)
  end
  return sqorm.connect(target, { logging = count_statement })
end
local db <close> = open()

local User = db:define("user", { { "id", T.INTEGER, primary_key = true, auto_increment = true },
                                 { "name", T.STRING(40) } }, { table_name = "ib_users", timestamps = false })
local Post = db:define("post", { { "id", T.INTEGER, primary_key = true, auto_increment = true },
                                 { "title", T.STRING(40) } }, { table_name = "ib_posts", timestamps = false })
local Tag = db:define("tag", { { "id", T.INTEGER, primary_key = true, auto_increment = true },
                               { "name", T.STRING(40) } }, { table_name = "ib_tags", timestamps = false })
User:has_many(Post, { as = "posts", foreign_key = "author_id" })
Post:belongs_to_many(Tag, { as = "tags", through = "ib_post_tags", foreign_key = "post_id", other_key = "tag_id" })

db:sync { force = true }
db:transaction(function()
  local tags = {}
  for i = 1, NTAGS do tags[i] = { name = "tag" .. i } end
  Tag:bulk_create(tags)
  local users = {}
  for i = 1, USERS do users[i] = { name = "user" .. i } end
  User:bulk_create(users)
  local posts = {}
  for u = 1, USERS do
    for p = 1, POSTS do posts[#posts + 1] = { title = "p" .. p, author_id = u } end
  end
  Post:bulk_create(posts, { batch_size = 1000 })
  local links = {}
  for pid = 1, USERS * POSTS do
    for k = 0, TAGS - 1 do links[#links + 1] = { post_id = pid, tag_id = (pid + k * 7) % NTAGS + 1 } end
  end
  Post:associations().tags.through:bulk_create(links, { batch_size = 1000 })
end)

local ROWS = USERS + USERS * POSTS + USERS * POSTS * TAGS

local function check(users)
  local n = #users
  for _, u in ipairs(users) do
    n = n + #u.posts
    for _, p in ipairs(u.posts) do n = n + #p.tags end
  end
  assert(n == ROWS, ("loaded %d rows, expected %d"):format(n, ROWS))
end

local ways = {
  include = function()
    check(User:find_all { include = { { "posts", include = { "tags" } } } })
  end,
  n_plus_1 = function()
    local users = User:find_all()
    local n = #users
    for _, u in ipairs(users) do
      local posts = u:get_posts()
      n = n + #posts
      for _, p in ipairs(posts) do n = n + #p:get_tags() end
    end
    assert(n == ROWS)
  end,
  joined = function()
    local rows = db:query([[SELECT u.id AS uid, u.name AS uname, p.id AS pid, p.title, t.id AS tid, t.name AS tname
      FROM ib_users u JOIN ib_posts p ON p.author_id = u.id JOIN ib_post_tags pt ON pt.post_id = p.id
      JOIN ib_tags t ON t.id = pt.tag_id]])
    assert(#rows == USERS * POSTS * TAGS)
  end,
}

local has_socket, socket = pcall(require, "socket")
local clock = has_socket and socket.gettime or os.clock -- wall clock when lua-socket is there
-- WAYS=include,joined selects (default: all three)
local list = { "include", "joined", "n_plus_1" }
if os.getenv("WAYS") then
  list = {}
  for w in os.getenv("WAYS"):gmatch("[%w_]+") do list[#list + 1] = w end
end
for _, name in ipairs(list) do
  local fn = assert(ways[name], "unknown way " .. name)
  fn() -- warm
  statements = 0
  local calls, t0, c0 = 0, clock(), os.clock()
  repeat
    fn()
    calls = calls + 1
  until clock() - t0 >= budget
  local dt, dc = clock() - t0, os.clock() - c0
  -- cpu_calls/s: by this process's CPU time (steadier on a shared machine;
  -- it leaves out a server's work)
  local dialect = url:match("^(%a+)")
  print(("RESULT include_bench %s %s calls/s=%.2f rows/s=%.0f cpu_calls/s=%.2f statements/call=%.1f"):format(
    dialect, name, calls / dt, calls * ROWS / dt, calls / dc, statements / calls))
  if name == "include" then
    local f = io.open("/proc/self/status")
    local kib = f and f:read("a"):match("VmHWM:%s*(%d+)") or "0"
    if f then f:close() end
    print(("RESULT include %s sqorm %d %.6f %.1f %s"):format(dialect, calls * ROWS, dt, calls * ROWS / dt, kib))
  end
end
db:drop_all()
