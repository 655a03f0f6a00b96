-- examples/neon_connect.lua - connect to hosted PostgreSQL (Neon or any
-- TLS-only Postgres) from DATABASE_URL over TLS, authenticate, and print
-- the server's version.
--
--   DATABASE_URL='postgres://user:pw@ep-xyz.eu-central-1.aws.neon.tech/neondb?sslmode=require' \
--     lua5.4 examples/neon_connect.lua
--
-- Prints "connected over TLS (<protocol>)" and then the `SELECT version()`
-- string, e.g. "PostgreSQL 15.x on x86_64-pc-linux-gnu, ...".
local sqorm = require "sqorm"

local url = sqorm.env.database_url()
if not url:find("sslmode=", 1, true) then
  url = url .. (url:find("?", 1, true) and "&" or "?") .. "sslmode=require"
end

local db <close> = sqorm.connect(url)
db:authenticate()
local tls = db:query("SELECT ssl, version AS protocol FROM pg_stat_ssl WHERE pid = pg_backend_pid()")[1]
if not (tls and tls.ssl) then error("the connection is not encrypted") end
print(("connected over TLS (%s)"):format(tls.protocol))
print(db:query("SELECT version() AS version")[1].version)
