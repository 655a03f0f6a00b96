--- sqorm: an ORM for Lua 5.4 whose engine is a C library.
--
-- One `db` owns one connection pool (SQLite embedded, MySQL / MariaDB /
-- TiDB, PostgreSQL). Values always travel as bound parameters;
-- identifiers are validated and quoted; no SQL is assembled in Lua.
--
-- **Errors.** Every failure raises an error object (`sqorm.is_error(e)`):
--
-- * `err.kind`: `usage`, `connection`, `auth`, `timeout`, `deadlock`,
--   `pool_timeout`, `constraint`, `unique_violation`, `validation`,
--   `stale`, `syntax`, `closed`, `database`, `nomem`, `internal`,
--   `canceled`
-- * `err.code`: the driver's native code (MySQL `"1062"`, PostgreSQL
--   `"23505"`, SQLite `"SQLITE_CONSTRAINT_UNIQUE"`)
-- * `err.sqlstate`: the five-character SQLSTATE when the server sent one
-- * `err.message`: the message, naming the problem
-- * `err.fields`: `validation`: `{ column = problem }`; `unique_violation`:
--   the violated key's columns where the server names them
--
-- `tostring(err)` gives `sqorm.Error [kind] message (code C, sqlstate S)`.
-- No password ever appears in a message, a log line or `tostring`.
-- @module sqorm
-- @usage
-- local sqorm = require "sqorm"
-- local T, op = sqorm.types, sqorm.op
-- local db <close> = sqorm.connect("sqlite::memory:", { logging = print })
-- local Player = db:define("player", {
--   { "id",    T.INTEGER, primary_key = true, auto_increment = true },
--   { "name",  T.STRING(32), unique = true },
--   { "coins", T.INTEGER, allow_null = false, default = 0, validate = { min = 0 } },
-- })
-- db:sync{ force = true }
-- Player:bulk_create{ { name = "ann", coins = 600 }, { name = "bob", coins = 200 } }
-- for _, p in ipairs(Player:find_all{ where = { coins = op.gt(300) } }) do
--   print(p.id, p.name, p.coins)
-- end
local sqorm = {}

--- Opens a database handle (a pool). Nothing connects until first use
-- (`Db:authenticate` connects at once).
--
-- URLs: `sqlite::memory:`, `sqlite:data/game.db`, `sqlite:///abs/path.db`,
-- `mysql://user:pw@host:3306/db` (also `mariadb://`, `tidb://`, port 4000),
-- `postgres://user:pw@host/db?sslmode=require` (also `postgresql://`).
-- Query parameters and table keys share one vocabulary (`sslmode` /
-- `ssl.mode`, `sslrootcert` / `ssl.ca`, `connect_timeout`, ...).
--
-- Options (the table form, or `opts` after a URL): `dialect`, `host`,
-- `port`, `user`, `password`, `database`, `storage` (SQLite file or
-- `":memory:"`), `ssl = { mode, ca, cert, key, min_version }` (modes
-- `disable`, `prefer`, `require`, `verify_ca`, `verify_identity`),
-- `pool = { max, min, acquire_timeout, idle_timeout, max_lifetime,
-- pre_ping, worker_nice }` (seconds; `worker_nice`, 0..19, default 10:
-- the nice levels the async worker threads run below the caller, Linux),
-- `logging` (a function such as `print`, or
-- `false`), `benchmark`, `name` (a named pool shared by every state of
-- the process), `params` (extra driver parameters), `connect_timeout`,
-- `replication = { write = url_or_opts, read = { url_or_opts, ... },
-- sticky = seconds, fallback = bool, backoff = seconds }` (read replicas:
-- reads to a replica in round robin, writes and transactions to the
-- primary; see docs/api.md "Read replicas from Lua").
-- `async` (`false`, the default: every call blocks; `true`: each call
-- runs on a worker thread of the pool while its coroutine waits, see
-- `sqorm.spawn`; `"auto"`: async in a coroutine, blocking where it
-- can't yield), `timeout` (the default per-call timeout, seconds),
-- `lazy` (`"raise"`: the default `lazy` of every association of the db,
-- the N+1 guard; docs/api.md "The N+1 guard").
-- An unknown key is kind `usage`.
-- @tparam string|table url a URL, or the options table
-- @tparam[opt] table opts options merged over the URL's
-- @treturn Db the handle; close it with `db:close()` or `<close>`
-- @raise `usage` for a malformed URL or option (the password shown as `***`)
-- @usage
-- local db = sqorm.connect("sqlite::memory:")
-- local db = sqorm.connect("mysql://root@127.0.0.1:4000/test")
-- local db = sqorm.connect("postgres://u:p@host/neondb?sslmode=require")
-- local db = sqorm.connect(url, { pool = { max = 10 }, logging = false })
-- local db = sqorm.connect{ replication = { write = primary_url,
--   read = { replica_url }, sticky = 5 } }
-- local db = sqorm.connect{
--   dialect = "mysql", host = "127.0.0.1", port = 4000, user = "root",
--   password = "", database = "test",
--   ssl = { mode = "verify_identity", ca = "ca.pem", min_version = "TLSv1.2" },
--   pool = { max = 5, min = 0, acquire_timeout = 30, idle_timeout = 10,
--            max_lifetime = 300, pre_ping = true },
--   logging = print,
-- }
function sqorm.connect(url, opts) end

--- Tells sqorm's error objects apart from other values.
-- @param v any value
-- @treturn boolean true for an error object raised by sqorm
-- @usage
-- local ok, err = pcall(Player.create, Player, { coins = -1 })
-- if not ok and sqorm.is_error(err) and err.kind == "validation" then
--   print(err.fields.coins)   --> must be >= 0
-- end
function sqorm.is_error(v) end

--- Makes an error object of sqorm's shape (for Lua code layered on
-- sqorm that raises the same kind of errors).
-- @tparam string kind an error kind (`usage`, `validation`, ...; an
-- unknown one becomes `internal`)
-- @tparam string message the message
-- @return the error object (raise it with `error`)
-- @usage error(sqorm.error("usage", "players: no such team"))
function sqorm.error(kind, message) end

--- A raw SQL condition for a `where`: the one escape hatch. Read with the
-- dialect's lexer like raw SQL: its `?` outside literals and comments are
-- its binds (`??` is a literal `?` on PostgreSQL). A fragment holding a
-- `;`, ending inside a literal or comment, or using `$n` is kind `usage`.
-- @tparam string fragment SQL with `?` placeholders
-- @tparam[opt] table binds the values, in order
-- @return a condition for a `where` list
-- @usage Player:find_all{ where = { sqorm.raw("coins % 2 = ?", { 0 }) } }
function sqorm.raw(fragment, binds) end

--- Async mode (`async = true` at connect): runs `fn(...)` as a coroutine
-- now. Each sqorm call in it runs on a worker thread of its pool while
-- the coroutine is suspended (one suspension per call); `sqorm.poll`
-- resumes it with the call's result, or raises the call's error at the
-- call site. An error that escapes `fn` goes to `sqorm.on_error`.
-- @tparam function fn the body
-- @param ... its arguments
-- @treturn thread the coroutine
-- @usage
-- sqorm.spawn(function(id)
--   local p = Player:find_by_pk(id)   -- suspends; the host keeps running
--   db:transaction(function() db:exec("UPDATE players SET coins = coins - 1 WHERE id = ?", { id }) end)
-- end, 42)
function sqorm.spawn(fn, ...) end

--- Resumes the coroutines whose calls completed (in this Lua state), in
-- the order they completed. Never blocks: call it once per tick, or when
-- `sqorm.pollfd()` is readable. `max` and `seconds` bound one call's work
-- (a tick's share): at most `max` coroutines, and none after the first
-- once `seconds` have passed since the call began. Completions left
-- behind stay queued, in order, for the next call (the fd stays
-- readable): none is lost, none resumed twice.
-- @tparam[opt] integer max at most this many coroutines (>= 1; nil: all that wait)
-- @tparam[opt] number seconds a time budget (> 0; nil: none)
-- @treturn integer how many coroutines it resumed
-- @usage function on_tick() sqorm.poll(16, 0.002) end
function sqorm.poll(max, seconds) end

--- A file descriptor (an eventfd, or a pipe) that is readable while
-- `sqorm.poll` has work: watch it with the host's event loop (luv,
-- cqueues, epoll). Never read it.
-- @treturn integer the fd
-- @usage uv.new_poll(sqorm.pollfd()):start("r", function() sqorm.poll() end)
function sqorm.pollfd() end

--- For scripts: spawns `fn(...)`, then polls (waiting on the queue) until
-- nothing is pending.
-- @tparam function fn the body
-- @param ... its arguments
-- @return what `fn` returned
-- @raise what `fn` raised
-- @usage local n = sqorm.run(function() return #db:query("SELECT 1") end)
function sqorm.run(fn, ...) end

--- Calls this Lua state has submitted whose coroutine was not resumed yet.
-- @treturn integer the count
function sqorm.pending() end

--- Cancels the call a coroutine waits for: it resumes with an error of
-- kind `canceled` (a running statement is cancelled on the server).
-- @tparam thread co the coroutine
-- @treturn boolean true when `co` was waiting for a call
function sqorm.cancel(co) end

--- Where errors that escape spawned coroutines go. The default writes the
-- error and a traceback to stderr; `nil` restores it.
-- @tparam function|nil fn called as `fn(err, co)`
-- @usage sqorm.on_error(function(err, co) log(tostring(err), debug.traceback(co)) end)
function sqorm.on_error(fn) end

--- Hosts that own their coroutines (skynet, luv, cqueues): a waiting call
-- runs `suspend()` in its coroutine (the host's own wait), and its
-- completion runs `resume(co)` from `sqorm.poll`. `nil` restores the
-- default (`coroutine.yield`, resumed by `sqorm.poll`).
-- @tparam table|nil s `{ suspend = function, resume = function }`
-- @usage sqorm.scheduler{ suspend = skynet.wait, resume = skynet.wakeup }
function sqorm.scheduler(s) end

--- The SQL NULL to write: `Player:update({ name = sqorm.null }, ...)`, or
-- `where = { name = sqorm.null }` (IS NULL). NULLs read back as `nil`.
-- A bind of `nil` is refused: use `sqorm.null`.
-- @field null

--- JSON null for `T.JSON` values, distinct from SQL NULL (`nil`,
-- `sqorm.null`): `{ stats = sqorm.json_null }` stores the JSON text
-- `null`; a JSON null read back (also inside objects, so the key stays)
-- is this value.
-- @field json_null

--- Marks a table as a JSON array (an empty one would be an object) and
-- returns it; arrays read from JSON columns carry this mark.
-- @tparam[opt] table t the table (a new one when omitted)
-- @treturn table t
function sqorm.json_array(t) end

--- Marks a table as a JSON object (the default for plain tables) and
-- returns it.
-- @tparam[opt] table t the table (a new one when omitted)
-- @treturn table t
function sqorm.json_object(t) end

--- The JSON text of a Lua value, as `T.JSON` columns write it (object
-- keys sorted, floats that read back exactly). A value with no JSON form
-- (a cycle, a function, mixed keys, nesting past 100 levels) is kind
-- `usage` naming its path.
-- @param v the value
-- @treturn string JSON text
function sqorm.json_encode(v) end

--- The Lua value of JSON text, as `T.JSON` columns read it. Strict
-- RFC 8259; numbers are exact or refused (kind `usage`).
-- @tparam string s JSON text
-- @return the value (`sqorm.json_null` for null)
function sqorm.json_decode(s) end

--- The version string, "0.1.0" (SQORM_VERSION of the C API).
-- @field VERSION

--- The metatable of error objects (`getmetatable(err) == sqorm.Error`);
-- prefer `sqorm.is_error`.
-- @field Error

--- A migrator over the migration files in `opts.dir` (see `Migrator`,
-- and docs/api.md, "Migrations"). No I/O until a verb runs.
-- @tparam Db db the database to migrate
-- @tparam[opt] table opts `dir` (default `"migrations"`), `table` (the
-- bookkeeping table, default `"sqorm_migrations"`), `allow_out_of_order`
-- (apply a pending migration older than the newest applied one),
-- `lock_timeout` (seconds to wait for another run's lock, default 60),
-- `log` (a function receiving progress lines)
-- @treturn Migrator
-- @usage
-- local mg = sqorm.migrator(db, { dir = "migrations" })
-- mg:up()                         --> { "20261201120000_create_guilds", ... }
-- for _, s in ipairs(mg:status()) do print(s.state, s.name) end
function sqorm.migrator(db, opts) end

--- A column as an operand: in a comparison (`{ coins = op.gt(sqorm.col("goods")) }`),
-- a function argument, `order` or `group`. `"author.name"` names a
-- column of a joined to-one include.
-- @tparam string name the column
-- @return a column value
-- @usage Player:find_all{ where = { coins = sqorm.op.gt(sqorm.col("goods")) } }
function sqorm.col(name) end

--- The same function call with DISTINCT: `sqorm.distinct(sqorm.fn.count("guild_id"))`
-- renders count(DISTINCT guild_id).
-- @param call a `sqorm.fn.<name>(...)` value
-- @return the call with DISTINCT
function sqorm.distinct(call) end

return sqorm
