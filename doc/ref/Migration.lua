--- What a migration file's `up(m)` and `down(m)` get: schema operations,
-- each rendered for the dialect by the core (identifiers checked and
-- quoted, values bound) and run at once inside the migration's
-- transaction. On SQLite a change its ALTER TABLE can't make rebuilds the
-- table keeping its rows, indexes and foreign keys. Column specs are the
-- ones of `Db:define` (`allow_null`, `primary_key`, `auto_increment`,
-- `unique`, `default`, `comment`) plus `references = { "table", "column" }`
-- with `on_delete` / `on_update` (`"cascade"`, `"set_null"`, `"restrict"`,
-- `"no_action"`). `m.db` is the db, `m.name` the migration. A
-- `T.ENUM{ ... }` column is a native ENUM on MySQL, a named type on
-- PostgreSQL (`enum_<table>_<column>`, or `enum_type = "name"`; created
-- before its first use, dropped by the op that removes its last column)
-- and TEXT with a CHECK on SQLite.
-- @classmod Migration
-- @usage
-- -- migrations/20261201120000_create_guilds.lua
-- local T = require("sqorm").types
-- return {
--   up = function(m)
--     m:create_table("guilds", { { "id", T.INTEGER, primary_key = true, auto_increment = true },
--                                { "name", T.STRING(32), allow_null = false, unique = true } })
--     m:add_column("players", "guild_id", { T.INTEGER, references = { "guilds", "id" }, on_delete = "set_null" })
--     m:add_index("players", { "guild_id" })
--   end,
--   down = function(m) m:remove_column("players", "guild_id"); m:drop_table("guilds") end,
-- }
local Migration = {}

--- Creates a table from a list of column specs `{ "name", T.X, ... }`.
-- @tparam string name
-- @tparam table cols
-- @tparam[opt] table opts `indexes` (`{ { cols = {...}, name =, unique = } }` or lists of
-- names), `foreign_keys` (`{ { cols = {...}, references = { "t", "id" }, on_delete = } }`),
-- `if_not_exists`
-- @usage m:create_table("guilds", { { "id", T.INTEGER, primary_key = true } })
function Migration:create_table(name, cols, opts) end

--- Drops a table.
-- @tparam string name
-- @tparam[opt] table opts `if_exists`
-- @usage m:drop_table("guilds")
function Migration:drop_table(name, opts) end

--- Renames a table.
-- @usage m:rename_table("guild", "guilds")
function Migration:rename_table(name, new_name) end

--- Adds a column (`spec`: a type, or `{ T.X, options... }`).
-- @usage m:add_column("players", "level", { T.INTEGER, allow_null = false, default = 1 })
function Migration:add_column(table, name, spec) end

--- Removes a column (SQLite: a rebuild when something refers to it).
-- @usage m:remove_column("players", "level")
function Migration:remove_column(table, name) end

--- Renames a column.
-- @usage m:rename_column("players", "coins", "gold")
function Migration:rename_column(table, name, new_name) end

--- Changes a column's type, nullability and default to `spec`'s (keys
-- are not touched; SQLite rebuilds the table keeping rows and indexes).
-- @usage m:change_column("players", "name", { T.STRING(64), allow_null = false })
function Migration:change_column(table, name, spec) end

--- Adds values to an ENUM column. `spec` is the column's whole new
-- definition, its `T.ENUM{ ... }` listing every value in order: MySQL
-- rewrites the column with it, SQLite rebuilds the table with its CHECK,
-- PostgreSQL adds the missing labels to the type (`ADD VALUE IF NOT
-- EXISTS`, in order; PostgreSQL 12 and later, where a new label can be
-- used once the migration has committed; older servers refuse it inside
-- the migration's transaction: `usage`, nothing sent).
-- @tparam string table
-- @tparam string name the column
-- @param spec `{ T.ENUM{ ... }, options... }` or a `T.ENUM{ ... }`
-- @usage m:add_enum_values("items", "rarity", { T.ENUM{ "common", "rare", "epic" }, allow_null = false })
function Migration:add_enum_values(table, name, spec) end

--- Adds an index (name: `"<table>_<col>_<col>"` unless given).
-- @tparam string table
-- @tparam {string,...} cols
-- @tparam[opt] table opts `name`, `unique`, `if_not_exists`
-- @usage m:add_index("players", { "guild_id" })
function Migration:add_index(table, cols, opts) end

--- Removes an index by name, or by its columns (the name models give it).
-- @tparam string table
-- @tparam string|{string,...} name_or_cols
-- @tparam[opt] table opts `if_exists`
-- @usage m:remove_index("players", { "guild_id" })
function Migration:remove_index(table, name_or_cols, opts) end

--- Adds a unique constraint.
-- @tparam string table
-- @tparam {string,...} cols
-- @tparam[opt] table opts `name`
-- @usage m:add_unique("players", { "guild_id", "name" })
function Migration:add_unique(table, cols, opts) end

--- Removes a unique constraint by name (or, on SQLite, by its columns).
-- @usage m:remove_unique("players", "players_guild_id_name_key")
function Migration:remove_unique(table, name_or_cols) end

--- Adds a primary key over the columns.
-- @usage m:add_primary_key("scores", { "player_id", "day" })
function Migration:add_primary_key(table, cols) end

--- Drops the primary key (PostgreSQL: the constraint `name`, default `"<table>_pkey"`).
-- @usage m:drop_primary_key("scores")
function Migration:drop_primary_key(table, name) end

--- Adds a foreign key.
-- @tparam string table
-- @tparam {string,...} cols
-- @tparam table opts `references = { "table", "column" }`, `name`, `on_delete`, `on_update`
-- @usage m:add_foreign_key("players", { "guild_id" }, { references = { "guilds", "id" }, on_delete = "cascade" })
function Migration:add_foreign_key(table, cols, opts) end

--- Removes a foreign key by name, or every key over the columns.
-- @usage m:remove_foreign_key("players", { "guild_id" })
function Migration:remove_foreign_key(table, name_or_cols) end

--- Runs one raw statement (`?` placeholders, values bound); returns the
-- affected rows. For what no schema operation says (data fixes, a
-- dialect's own DDL).
-- @usage m:exec("UPDATE players SET coins = ? WHERE coins IS NULL", { 0 })
function Migration:exec(sql, binds) end

--- Runs one raw read; returns its rows.
-- @usage local rows = m:query("SELECT id FROM players WHERE guild_id IS NULL")
function Migration:query(sql, binds) end

return Migration
