-- examples/neon_connect.lua - connect to hosted PostgreSQL (Neon or any
-- TLS-only Postgres) from DATABASE_URL over TLS, authenticate, and print
-- the server's version.
--
--   DATABASE_URL='postgres://user:pw@ep-xyz.eu-central-1.aws.neon.tech/neondb?sslmode=require' \
--     lua5.4 examples/neon_connect.lua
--
-- Neon's pooled endpoint (PgBouncer in transaction mode) is the same host
-- name with "-pooler" after the endpoint id; sqorm sees the "-pooler." and
-- turns on pooler mode by itself (unnamed statements, no session state;
-- docs/api.md, "Neon, PgBouncer and other poolers"). For another PgBouncer,
-- add pgbouncer=true (or prepare=false) to the URL:
--
--   DATABASE_URL='postgres://user:pw@ep-xyz-pooler.eu-central-1.aws.neon.tech/neondb?sslmode=require' \
--     lua5.4 examples/neon_connect.lua
--
-- Prints "connected over TLS (<protocol>)", "pooler mode: on|off", then
-- the `SELECT version()` string, e.g. "PostgreSQL 15.x on x86_64-pc-linux-gnu, ...",
-- and "3 parameterised queries ok". Without DATABASE_URL it says so and
-- exits.
local sqorm = require "sqorm"

local url = sqorm.env.database_url()
if not url:find("sslmode=", 1, true) then
  url = url .. (url:find("?", 1, true) and "&" or "?") .. "sslmode=require"
end
-- The rule sqorm applies (an explicit prepare= wins).
local pooled = (url:find("-pooler.", 1, true) or url:find("pgbouncer=true", 1, true) or
  url:find("prepare=false", 1, true)) and not url:find("prepare=true", 1, true)

local db <close> = sqorm.connect(url)
db:authenticate()
-- In a transaction, so that behind a pooler the server connection that
-- answers is the one the question is about.
local tls = db:transaction(function()
  return db:query("SELECT ssl, version AS protocol FROM pg_stat_ssl WHERE pid = pg_backend_pid()")[1]
end)
if not (tls and tls.ssl) then error("the connection is not encrypted") end
print(("connected over TLS (%s)"):format(tls.protocol))
print(("pooler mode: %s"):format(pooled and "on" or "off"))
print(db:query("SELECT version() AS version")[1].version)
-- Each one its own transaction: behind a pooler, possibly on another
-- server connection each time.
for i = 1, 3 do
  assert(db:query("SELECT ?::int * 2 AS x", { i })[1].x == i * 2)
end
print("3 parameterised queries ok")
