--- Connection settings from the environment, the way hosted databases
-- hand them out. A missing variable raises kind `usage` naming it.
-- @module sqorm.env
-- @usage
-- local db = sqorm.env.connect()       -- DATABASE_URL if set, else the TIDB_* variables
local env = {}

--- Connects with `DATABASE_URL` when it is set, else with the `TIDB_*`
-- variables (`sqorm.env.tidb`).
-- @tparam[opt] table opts options merged in (as `sqorm.connect`'s)
-- @treturn Db the handle
function env.connect(opts) end

--- A connect table from `TIDB_HOST`, `TIDB_PORT` (4000), `TIDB_USER`,
-- `TIDB_PASSWORD`, `TIDB_DB_NAME`, `TIDB_ENABLE_SSL` (true: verify_identity
-- against `TIDB_CA_PATH`, or the system CA bundle without it).
-- @tparam[opt] table extra keys merged in
-- @treturn table options for `sqorm.connect`
-- @usage local db = sqorm.connect(sqorm.env.tidb())
function env.tidb(extra) end

--- The URL in `DATABASE_URL` (or another variable), as Neon provides it.
-- @tparam[opt="DATABASE_URL"] string name the variable
-- @treturn string the URL
function env.database_url(name) end

--- The system's CA bundle (Debian, RHEL, openSUSE, Alpine, macOS paths),
-- or nil: the client library then uses its default store.
-- @treturn ?string a file path
function env.system_ca() end

return env
