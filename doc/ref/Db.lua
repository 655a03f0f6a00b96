--- A database handle: one connection pool, the models defined on it,
-- raw SQL and transactions. Made by `sqorm.connect`.
--
-- Every call made by the same coroutine inside `Db:transaction` (or
-- between `Db:begin` and its end) runs on that transaction's connection:
-- raw SQL and models alike. A closed handle raises kind `closed`.
-- `tostring(db)` never shows the password.
-- @classmod Db
-- @usage
-- local db <close> = sqorm.connect("sqlite:game.db")
-- db:authenticate()
-- local rows = db:query("SELECT id, coins FROM players WHERE coins > ?", { 300 })
local Db = {}

--- Runs one SQL statement that returns rows.
--
-- Binds are `?` (a list) or `:name` (a table), never both; PostgreSQL
-- also takes `$1, $2 ...`. The SQL is read with the dialect's own lexing
-- rules, so a `?` in a literal, a quoted name or a comment is no bind.
-- More than one statement is kind `usage` unless `multi = true`.
-- Values are typed from the column metadata: integers as integers,
-- DECIMAL as exact strings, DATE/DATETIME as UTC strings, NULL as `nil`.
-- A read outside a transaction that fails on a dead pooled connection is
-- run once more on a fresh one.
-- @tparam string sql the statement
-- @tparam[opt] table binds values (`sqorm.null` for NULL)
-- @tparam[opt] table opts `timeout` (seconds), `multi` (run every
-- statement; returns the last rows), `use_primary` (with read replicas:
-- a read goes to the primary, not a replica); one of `plain = true` (the first
-- row, or nil), `scalar = true` (the first value of the first row, or
-- nil), `model = M` (instances of model M of this db; result columns that
-- are no column of M are kept under their names). Strict: an unknown
-- key, a wrong type or two of plain / scalar / model are kind `usage`.
-- @treturn {table,...} the rows, each keyed by column name (or what
-- plain / scalar / model say)
-- @usage
-- local rows = db:query("SELECT id, coins FROM players WHERE coins > ?", { 300 })
-- local rows = db:query("SELECT * FROM players WHERE id = :id", { id = 6 })
-- local n = db:query("SELECT count(*) FROM players", nil, { scalar = true })
-- local top = db:query("SELECT * FROM players ORDER BY coins DESC", nil, { plain = true })
-- local rich = db:query("SELECT * FROM players WHERE coins > ?", { 1000 }, { model = Player })
function Db:query(sql, binds, opts) end

--- Runs one SQL statement for its effect.
-- @tparam string sql the statement
-- @tparam[opt] table binds values
-- @tparam[opt] table opts as `Db:query`
-- @treturn table `{ affected_rows = n, last_insert_id = id }` (affected
-- rows are matched rows on every dialect; PostgreSQL has no last insert
-- id: use `RETURNING` with `Db:query`)
-- @usage
-- local res = db:exec("UPDATE players SET coins = coins + 1 WHERE id = :id", { id = 6 })
-- print(res.affected_rows, res.last_insert_id)
function Db:exec(sql, binds, opts) end

--- Connects (or takes a pooled connection) and pings the server.
-- @treturn boolean true
-- @raise `connection`, `auth`, `timeout` when the server can't be reached
-- @usage db:authenticate()
function Db:authenticate() end

--- The server's version string (connects when needed).
-- @treturn string e.g. "10.11.6-MariaDB", "15.5", "SQLite 3.40.1"
function Db:server_version() end

--- The pool's counters.
-- @treturn table `size`, `idle`, `in_use`, `waiting`, `created`,
-- `destroyed`, `timeouts`, `waited`, `max`, `min`; with `replication`
-- those of the primary, plus `primary` and `replicas` (a list): each
-- pool's counters and `down`, `retry_in`, `failures`, `picks`, `failed`,
-- `last_error`
-- @usage print(db:pool_stats().in_use)
function Db:pool_stats() end

--- The dialect of the handle.
-- @treturn string `"sqlite"`, `"mysql"` or `"postgres"`
function Db:dialect() end

--- Closes the pool (idempotent; also on `__gc` and as a to-be-closed
-- variable). Any other method of a closed handle raises kind `closed`.
-- @usage local db <close> = sqorm.connect("sqlite::memory:")
function Db:close() end

--- Whether `Db:close` ran.
-- @treturn boolean
function Db:is_closed() end

--- Runs `fn` in a transaction: commits when it returns, rolls back and
-- re-raises when it raises. Inside another transaction of the same
-- coroutine it is a savepoint. `fn` may yield; the transaction stays
-- with its coroutine. A deadlock or serialization failure raises kind
-- `deadlock` (retry the whole function).
-- @tparam function fn called with the `Tx`
-- @tparam[opt] table opts `isolation`: `read_uncommitted`,
-- `read_committed`, `repeatable_read`, `serializable`; `read_only =
-- true`: on a read replica (with `replication`), and READ ONLY on
-- PostgreSQL (a write raises SQLSTATE 25006)
-- @return what `fn` returns
-- @usage
-- local total = db:transaction(function(tx)
--   db:exec("UPDATE players SET coins = coins - 10 WHERE id = ?", { 1 })
--   db:exec("UPDATE players SET coins = coins + 10 WHERE id = ?", { 2 })
--   return "ok"
-- end, { isolation = "serializable" })
function Db:transaction(fn, opts) end

--- Opens a transaction (a savepoint inside another one) and returns it:
-- the unmanaged form of `Db:transaction`. Closing it uncommitted (a
-- `<close>` variable, `__gc`) rolls back.
-- @tparam[opt] table opts `isolation`, `read_only`, as `Db:transaction`
-- @treturn Tx the transaction
-- @usage
-- do
--   local tx <close> = db:begin()
--   db:exec("DELETE FROM players WHERE coins = 0")
--   tx:commit()
-- end
function Db:begin(opts) end

--- Defines a model (a table). Columns as an ordered list of
-- `{ name, type, option = ... }`, or a map `{ name = type or { type = ...,
-- ... } }`. Column options: `primary_key`, `auto_increment`, `allow_null`
-- (true unless false), `default` (a value, a function, `sqorm.fn.now()`,
-- `sqorm.fn.uuidv4()`), `unique` (true or a shared name), `comment`,
-- `validate` (`min`, `max`, `len`, `not_empty`, `pattern`, functions).
-- A model without a primary key gets `id` INTEGER auto-increment.
-- @tparam string name the model's name
-- @tparam table columns the columns
-- @tparam[opt] table opts `table_name` (default: the plural of the name's
-- last word), `timestamps` (default true: `created_at` / `updated_at`,
-- renamed with `created_at = "..."`), `paranoid` (soft delete through
-- `deleted_at`), `indexes = { { fields = { "a", "b" }, unique = true, name = "..." } }`,
-- `version` (optimistic locking: true for a `version` column, or a column
-- name; saves and destroys of an instance check it, a lost race is kind
-- `stale`), `default_scope` (query options every find, count and class
-- write merges in) and `scopes` (name -> options or a function returning
-- them): see `Model:scope`
-- @treturn Model the model
-- @usage
-- local Player = db:define("player", {
--   { "id",    T.INTEGER, primary_key = true, auto_increment = true,
--              comment = "The unique ID of the player." },
--   { "name",  T.STRING(32), unique = true },
--   { "coins", T.INTEGER, allow_null = false, default = 0, validate = { min = 0 } },
--   { "goods", T.INTEGER, allow_null = false },
-- }, { table_name = "players", timestamps = true })
function Db:define(name, columns, opts) end

--- A model defined on this handle, by name.
-- @tparam string name the model's name
-- @treturn ?Model the model or nil
function Db:model(name) end

--- Every model of this handle.
-- @treturn table table name -> model
function Db:models() end

--- Creates the tables of every model (in dependency order); with options
-- as `Model:sync`: `force = true` drops and recreates them, `alter = true`
-- makes each live table match its model.
-- @tparam[opt] table opts `force`, `alter` (`true` or `{ drop = true }`)
-- @treturn Db the handle
-- @usage db:sync{ force = true }
function Db:sync(opts) end

--- Drops the tables of every model, in reverse dependency order.
-- @treturn boolean true
function Db:drop_all() end

return Db
