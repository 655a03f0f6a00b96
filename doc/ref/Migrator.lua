--- The migrator: applies and reverts the migration files of a directory,
-- in name order, keeping a row per applied migration (name, batch,
-- applied time, checksum) in its table. Every verb holds a server session
-- lock for its whole run (`pg_advisory_lock`, `GET_LOCK`, SQLite's write
-- lock) on a connection of its own, so concurrent runs apply each
-- migration once and a killed run leaves no lock behind. Each migration
-- and its row share one transaction on PostgreSQL and SQLite; on
-- MySQL-family servers a failure says "partially applied" and names the
-- migration and the statement. Made by `sqorm.migrator`.
-- @classmod Migrator
-- @usage
-- local mg = sqorm.migrator(db, { dir = "migrations" })
-- mg:up()                       -- everything pending, as one batch
-- mg:down()                     -- the last batch
-- mg:down{ step = 2 }           -- the last two migrations
-- mg:down{ to = 0 }             -- everything
local Migrator = {}

--- Applies the pending migrations in name order as one batch (up to and
-- including `to`). A pending migration older than the newest applied one
-- is kind `usage` unless the migrator has `allow_out_of_order = true`.
-- A failing migration raises its error (rolled back where DDL is
-- transactional) with `err.applied`, the names applied before it.
-- @tparam[opt] table opts `to`: the last migration to apply
-- @treturn {string,...} the names applied
-- @usage mg:up{ to = "20261201120100_create_guilds" }
function Migrator:up(opts) end

--- Reverts: the last batch; `step = n`, the last n migrations; `to =
-- NAME`, everything applied after NAME and NAME itself; `to = 0`,
-- everything. A migration without a `down` function (or whose file is
-- gone) is kind `usage` before anything is sent.
-- @tparam[opt] table opts `step` or `to`
-- @treturn {string,...} the names reverted, newest first
-- @usage mg:down{ step = 1 }
function Migrator:down(opts) end

--- Every migration known from the files or the table, by name, with its
-- state: `applied`, `pending`, `changed` (the file was edited after it
-- ran: its checksum differs) or `missing` (applied, file gone).
-- @treturn {table,...} `{ name, state, batch, applied_at }`
-- @usage for _, s in ipairs(mg:status()) do print(s.state, s.name) end
function Migrator:status() end

--- The names of the migrations not applied yet, in name order.
-- @treturn {string,...}
-- @usage print(#mg:pending() .. " to apply")
function Migrator:pending() end

--- The applied migrations, by name.
-- @treturn {table,...} `{ name, batch, applied_at }` (`applied_at`:
-- "YYYY-MM-DD HH:MM:SS", UTC)
-- @usage for _, r in ipairs(mg:executed()) do print(r.batch, r.name) end
function Migrator:executed() end

--- Writes a new migration file `<UTC timestamp>_<name>.lua` with empty
-- `up` and `down` functions (the directory is made when missing).
-- @tparam string name letters, digits and `_`
-- @treturn string the file's path
-- @usage local path = mg:create("add_guilds")
function Migrator:create(name) end

--- Writes a migration whose `up` and `down` come from the difference
-- between the models and the live schema (tables, columns, types,
-- nullability, defaults, indexes, uniques, foreign keys); what the
-- difference can't see (comments, CHECK constraints, collations, enum
-- values, live keys and indexes no model declares) is written as
-- comments. Applying the file makes `db:sync{ alter = true }` a no-op.
-- @tparam string name letters, digits and `_`
-- @tparam table opts `models`: a list of models, a `function(db)` that
-- defines them, or the name of a module returning either
-- @treturn string|nil the file's path, nil when the models already match
-- @treturn table the operations of the difference
-- @treturn table the notes
-- @usage local path = mg:generate("sync_models", { models = db:models() })
function Migrator:generate(name, opts) end

return Migrator
