-- sqorm.env: connection settings from the environment, the way hosted
-- databases hand them out.
--
--   sqorm.env.tidb()      -> connect table from TIDB_HOST, TIDB_PORT,
--                            TIDB_USER, TIDB_PASSWORD, TIDB_DB_NAME,
--                            TIDB_ENABLE_SSL, TIDB_CA_PATH (as the TiDB
--                            quickstarts name them); with TLS the server is
--                            always verified (verify_identity), against
--                            TIDB_CA_PATH or else the system CA store
--   sqorm.env.database_url([name]) -> the URL in DATABASE_URL (or $name),
--                            as Neon and other hosted Postgres provide it
--   sqorm.env.connect(opts) -> sqorm.connect on DATABASE_URL when set, else
--                            on the TIDB_* variables; opts are merged in.
local env = {}

local getenv = os.getenv

local function fail(msg)
  error(require("sqorm.core").error("usage", msg), 3)
end

local function truthy(v)
  v = v and v:lower()
  return v == "true" or v == "1" or v == "yes" or v == "on"
end

-- The system's CA bundle (Debian/Ubuntu, RHEL/Fedora, openSUSE,
-- Alpine/macOS), or nil: the client library then uses its default store.
local SYSTEM_CA = {
  "/etc/ssl/certs/ca-certificates.crt",
  "/etc/pki/tls/certs/ca-bundle.crt",
  "/etc/ssl/ca-bundle.pem",
  "/etc/ssl/cert.pem",
}

function env.system_ca()
  for _, path in ipairs(SYSTEM_CA) do
    local f = io.open(path, "r")
    if f then
      f:close()
      return path
    end
  end
  return nil
end

function env.tidb(extra)
  local host = getenv("TIDB_HOST")
  if not host or host == "" then fail("TIDB_HOST is not set") end
  local port = tonumber(getenv("TIDB_PORT") or "4000")
  if not port or port ~= math.floor(port) then fail("TIDB_PORT is not a number") end
  local t = {
    dialect = "tidb",
    host = host,
    port = math.tointeger(port),
    user = getenv("TIDB_USER") or "root",
    password = getenv("TIDB_PASSWORD") or "",
    database = getenv("TIDB_DB_NAME") or "test",
  }
  -- TiDB Cloud's certificates chain to public CAs and name the host, and
  -- its docs point the CA path at the system store: verify both, always.
  -- (require alone would accept any certificate, and before the login.)
  if truthy(getenv("TIDB_ENABLE_SSL")) then
    local ca = getenv("TIDB_CA_PATH")
    if not ca or ca == "" then ca = env.system_ca() end
    t.ssl = { mode = "verify_identity", ca = ca }
  end
  for k, v in pairs(extra or {}) do t[k] = v end
  return t
end

function env.database_url(name)
  name = name or "DATABASE_URL"
  local url = getenv(name)
  if not url or url == "" then fail(name .. " is not set") end
  return url
end

function env.connect(opts)
  if opts == env then fail("use sqorm.env.connect(...), not sqorm.env:connect(...)") end
  local sqorm = require "sqorm"
  local url = getenv("DATABASE_URL")
  if url and url ~= "" then return sqorm.connect(url, opts) end
  local host = getenv("TIDB_HOST")
  if not host or host == "" then
    fail("sqorm.env.connect: neither DATABASE_URL nor TIDB_HOST is set; set DATABASE_URL "
      .. "(e.g. postgres://user:password@host/db) or the TIDB_* variables (TIDB_HOST, TIDB_PORT, "
      .. "TIDB_USER, TIDB_PASSWORD, TIDB_DB_NAME, TIDB_ENABLE_SSL, TIDB_CA_PATH)")
  end
  return sqorm.connect(env.tidb(opts))
end

return env
