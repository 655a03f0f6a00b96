-- examples/read_replicas.lua - one handle over a PostgreSQL primary and a
-- streaming replica (docs/api.md, "Read replicas from Lua"): reads go to
-- the replica, writes and transactions to the primary, and a coroutine
-- that wrote reads its own writes from the primary for `sticky` seconds.
--
--   DATABASE_URL='postgres://u:pw@primary/db' REPLICA_URL='postgres://u:pw@replica/db' \
--     lua5.4 examples/read_replicas.lua
--
-- Prints where each statement ran, as the server says (pg_is_in_recovery()):
--   read on: replica
--   use_primary read on: primary
--   transaction on: primary
--   read-only transaction on: replica
--   after a write, read on: primary
--   replica picks: 2
-- Without the two URLs it says so and exits.
local sqorm = require "sqorm"

local primary, replica = os.getenv("DATABASE_URL"), os.getenv("REPLICA_URL")
if not primary or not replica then
  print("set DATABASE_URL (the primary) and REPLICA_URL (a streaming replica of it)")
  return
end

local db <close> = sqorm.connect{
  replication = { write = primary, read = { replica }, sticky = 5, fallback = true },
  pool = { max = 4 }, -- applies to the primary's pool and the replica's
}

local function where(opts)
  return db:query("SELECT pg_is_in_recovery() AS r", nil, opts)[1].r and "replica" or "primary"
end

print("read on: " .. where())
print("use_primary read on: " .. where{ use_primary = true })
print("transaction on: " .. db:transaction(function() return where() end))
print("read-only transaction on: " .. db:transaction(function() return where() end, { read_only = true }))
db:exec("CREATE TEMPORARY TABLE IF NOT EXISTS sq_example_note (id int)") -- a write
print("after a write, read on: " .. where())
print(("replica picks: %d"):format(db:pool_stats().replicas[1].picks))
