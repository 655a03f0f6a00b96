--- A model: a table's columns, keys and rules, and the class methods
-- that read and write its rows. Made by `Db:define`.
--
-- Every options table is strict: a key the method does not take is kind
-- `usage` naming it, and nothing is sent. Query options: `where`,
-- `attributes`, `order` (`{ {"coins", "desc"}, "id" }`), `limit`,
-- `offset`, `group`, `having`, `lock` (`"update"` / `"share"`),
-- `paranoid = false`, `raw = true` (plain row tables, fastest),
-- `use_primary = true` (with read replicas: read from the primary).
--
-- `where`: a value means `=`, a list means IN, `sqorm.null` IS NULL,
-- operators come from `sqorm.op`; a key that is not a column is kind
-- `usage`. An explicitly given `where` that is empty is kind `usage`
-- (omit it to mean every row). Values are converted to the column's type
-- when nothing is lost, refused otherwise.
-- @classmod Model
-- @usage
-- local rich = Player:find_all{ where = { coins = op.gt(300) },
--                               order = { { "coins", "desc" } }, limit = 10 }
-- Player:update({ goods = 0 }, { where = { name = sqorm.null } })
-- Player:destroy{ where = { id = { 1, 2, 3 } } }
local Model = {}

--- Creates the table when missing; `force = true` drops and recreates it;
-- `alter = true` reads the live table and makes it match the model
-- (columns, types, NULL, defaults, the primary key, unique keys, indexes,
-- foreign keys), refusing to drop a column that holds data unless
-- `alter = { drop = true }`. SQLite rebuilds the table when its ALTER
-- can't make the change (rows, indexes and keys kept).
-- @tparam[opt] table opts `force`, `alter`
-- @treturn Model the model
-- @usage Player:sync{ alter = true }
function Model:sync(opts) end

--- Drops the table.
-- @treturn boolean true
function Model:drop() end

--- An unsaved instance (validated when saved).
-- @tparam table values column -> value
-- @tparam[opt] table opts `fields`: write only these columns
-- @treturn Instance the instance
-- @usage local p = Player:build{ coins = 10 }; p:save()
function Model:build(values, opts) end

--- Inserts a row; validation runs first (kind `validation`, every failing
-- field in `err.fields`).
-- @tparam table values column -> value
-- @tparam[opt] table opts `fields`: write only these columns (the guard
-- for form input)
-- @treturn Instance the instance, with its generated key
-- @usage local p = Player:create{ id = 6, coins = 600, goods = 600 }
function Model:create(values, opts) end

--- Inserts rows, all or nothing: one multi-row INSERT per batch.
-- @tparam {table,...} list the rows
-- @tparam[opt] table opts `batch_size`; `ignore_duplicates = true` (skip
-- rows colliding with a unique key); `update_on_duplicate = { cols }` with
-- `conflict = { cols }` (update those columns of a colliding row;
-- `conflict` required on PostgreSQL and SQLite); `returning = false`
-- (return the count, build no instances)
-- @return the instances, with the keys the server assigned; with
-- `ignore_duplicates` / `update_on_duplicate`, the instances of the rows
-- the server returned (MySQL-family servers return none for
-- `update_on_duplicate`, nor MySQL and TiDB for `ignore_duplicates`: use
-- `returning = false` there); with `returning = false`, the count
-- @usage Player:bulk_create{ { coins = 1, goods = 1 }, { coins = 2, goods = 2 } }
-- Player:bulk_create(list, { update_on_duplicate = { "coins" }, conflict = { "name" } })
function Model:bulk_create(list, opts) end

--- Finds a row by primary key.
-- @param key the key's value, or `{ a = 1, b = 2 }` for a composite key
-- @tparam[opt] table opts `attributes`, `lock`, `raw`, `paranoid`,
-- `use_primary`
-- @treturn ?Instance the instance, or nil when there is none
-- @usage local one = Player:find_by_pk(6)
function Model:find_by_pk(key, opts) end

--- The first row matching.
-- @tparam[opt] table opts query options
-- @treturn ?Instance the instance, or nil
-- @usage local top = Player:find_one{ order = { { "coins", "desc" } }, offset = 1 }
function Model:find_one(opts) end

--- Every row matching.
-- @tparam[opt] table opts query options
-- @treturn {Instance,...} the instances (plain tables with `raw = true`)
-- @usage
-- Player:find_all{ where = { coins = op.gt(300), goods = op.between(1, 5) } }
-- Player:find_all{ where = { op.or_({ coins = 1 }, { goods = 2 }), name = op.like("a%") } }
function Model:find_all(opts) end

--- Finds the row the `where` fixes by equality, or inserts it (with
-- `defaults`), on one connection.
-- @tparam table opts `where`, `defaults`, `paranoid`
-- @treturn Instance the instance
-- @treturn boolean true when it was created
-- @usage local p, created = Player:find_or_create{ where = { name = "ann" }, defaults = { coins = 5 } }
function Model:find_or_create(opts) end

--- Inserts a row or updates the one with the same key.
-- @tparam table values column -> value
-- @tparam[opt] table opts `conflict` (the unique columns to match on),
-- `fields`
-- @return the instance (true on MySQL when the key can't be known; kind
-- `stale` on MySQL when the row read back by the given key is not there)
-- @usage Player:upsert({ name = "ann", coins = 5 }, { conflict = { "name" } })
function Model:upsert(values, opts) end

--- Counts rows.
-- @tparam[opt] table opts query options
-- @treturn integer the count
-- @usage local n = Player:count{ where = { goods = op.between(1, 5) } }
function Model:count(opts) end

--- The sum of a column (0 when no row matches; DECIMAL: an exact string).
-- @tparam string col the column
-- @tparam[opt] table opts query options
-- @treturn number
function Model:sum(col, opts) end

--- The smallest value of a column, or nil.
-- @tparam string col the column
-- @tparam[opt] table opts query options
function Model:min(col, opts) end

--- The largest value of a column, or nil.
-- @tparam string col the column
-- @tparam[opt] table opts query options
function Model:max(col, opts) end

--- The mean of a column, or nil.
-- @tparam string col the column
-- @tparam[opt] table opts query options
-- @treturn ?number
function Model:avg(col, opts) end

--- Updates the matching rows. Without `where` it is refused unless
-- `all = true`.
-- @tparam table values column -> value
-- @tparam table opts `where` (or `all = true`)
-- @treturn integer the affected (matched) rows
-- @usage Player:update({ goods = 0 }, { where = { name = sqorm.null } })
function Model:update(values, opts) end

--- Deletes the matching rows (soft on paranoid models unless
-- `force = true`). Without `where` it is refused unless `all = true`.
-- @tparam table opts `where` (or `all = true`), `force`
-- @treturn integer the affected rows
-- @usage Player:destroy{ where = { id = { 1, 2, 3 } } }
function Model:destroy(opts) end

--- Restores soft-deleted rows of a paranoid model.
-- @tparam table opts `where` (or `all = true`)
-- @treturn integer the affected rows
function Model:restore(opts) end

--- Adds to columns of the matching rows in one UPDATE.
-- @tparam table values column -> amount
-- @tparam table opts `where` (or `all = true`)
-- @treturn integer the affected rows
-- @usage Player:increment({ coins = 5 }, { where = { id = 1 } })
function Model:increment(values, opts) end

--- Subtracts from columns of the matching rows.
-- @tparam table values column -> amount
-- @tparam table opts `where` (or `all = true`)
-- @treturn integer the affected rows
function Model:decrement(values, opts) end

--- Streams the matching rows with bounded memory, holding one pooled
-- connection (the transaction's inside one) until the loop ends. Returns
-- a closing value: a `break` releases the connection at once. `batch`:
-- rows per fetch (default 32). With `include`, pages of `batch` (default
-- 100) parents in primary-key order, each a find with its includes
-- (`order` nil or the primary key; docs/api.md "Eager loading").
-- @tparam[opt] table opts query options, `batch`, `include`
-- @return the iterator triple and a `Cursor` (the closing value)
-- @usage for p in Player:each{ where = { coins = op.gte(0) } } do print(p.id) end
function Model:each(opts) end

-- ---- associations and eager loading (docs/api.md, "Relations") ----

--- This model's rows point at one row of `target` (this model holds the
-- foreign key, added as a column typed like the key it references).
-- Defines the instance methods `get_<as>`, `set_<as>`, `create_<as>`.
-- @tparam Model target the model referenced
-- @tparam[opt] table opts `as` (default: the target's name),
-- `foreign_key` (default `<as>_<target_key>`), `target_key` (default: its
-- primary key), `on_delete` / `on_update` (`"cascade"`, `"set_null"`,
-- `"restrict"`, `"no_action"`), `constraints` (false: no FOREIGN KEY, or
-- `"deferred"`), `allow_null`, `scope` (a where on the target), `lazy =
-- "raise"`
-- @treturn Model this model
-- @usage Post:belongs_to(User, { as = "author", foreign_key = "author_id" })
function Model:belongs_to(target, opts) end

--- One row of `target` points at each row of this model (the target
-- holds the foreign key). Options as `belongs_to`, with `source_key`
-- (this model's column referenced, default its primary key) instead of
-- `target_key`.
-- @tparam Model target the model holding the key
-- @tparam[opt] table opts see `belongs_to`
-- @treturn Model this model
-- @usage User:has_one(Profile, { as = "profile", foreign_key = "user_id" })
function Model:has_one(target, opts) end

--- Many rows of `target` point at each row of this model. Defines
-- `get_<as>`, `count_<as>`, `has_<as>`, `add_<as>`, `remove_<as>`,
-- `set_<as>` and `create_<singular>` (`singular`: default `as`
-- singularized).
-- @tparam Model target the model holding the key
-- @tparam[opt] table opts see `has_one`, plus `singular`
-- @treturn Model this model
-- @usage User:has_many(Post, { as = "posts", foreign_key = "author_id" })
function Model:has_many(target, opts) end

--- Many-to-many through a join table (`through`: a table name, whose
-- model sqorm builds, or a Model) holding `foreign_key` (to this model)
-- and `other_key` (to the target). The same accessors as `has_many`;
-- adding a row twice makes one join row.
-- @tparam Model target the other side
-- @tparam table opts `through` (required), `foreign_key`, `other_key`,
-- `source_key`, `target_key`, `as`, `singular`, `scope`, `lazy`,
-- `constraints`
-- @treturn Model this model
-- @usage Post:belongs_to_many(Tag, { as = "tags", through = "post_tags" })
function Model:belongs_to_many(target, opts) end

--- The associations of this model: `{ [as] = info }`, each info a table
-- with `kind`, `as`, `singular`, `to_many`, `source`, `target`,
-- `through` (a Model, for belongs_to_many), `foreign_key`,
-- `source_key`, `target_key`, `other_key`, `scope`, `lazy`.
-- @treturn table a new map (the infos are shared: don't change them)
function Model:associations() end

--- The number of distinct rows matching (`where`, required includes),
-- whatever `limit` and `offset` say, and the page of rows: one operation
-- (the count statement, then the page and its includes, on one
-- connection).
-- @tparam[opt] table opts the options of `find_all`
-- @treturn table `{ count = n, rows = { ... } }`
-- @usage local page = User:find_and_count_all{ include = { { "posts", required = true } }, limit = 10 }
function Model:find_and_count_all(opts) end

--- A scoped model: the scopes named here added, left to right, to the
-- model's default scope (on a scoped model: to its scopes). A name is a
-- key of `scopes` in `Db:define`'s options; `{ name, arg, ... }` calls a
-- function scope with the arguments, at once (it must return a table of
-- query options). `"default"` adds the default scope (once), so
-- `Player:unscoped():scope("rich")` is rich without the default scope.
-- Every class method works on the result; finds, counts, aggregates,
-- `each`, `find_or_create` and the class `update`, `destroy`, `restore`,
-- `increment`, `decrement` merge the scopes into their options: `where`
-- clauses AND-ed, `include` merged by association name, other options
-- the later one wins, the call's options last. An unknown name, a
-- function scope returning no table, or an argument that is neither a
-- name nor `{ name, ... }` is kind `usage`; an error raised by a
-- function scope propagates. Nothing is sent.
-- @param ... scope names, or `{ name, arg, ... }`
-- @treturn Model a scoped model
-- @usage Player:scope("rich", { "top", 3 }):find_all()   -- default + rich + top(3)
function Model:scope(...) end

--- The model with no scope at all (not even the default scope).
-- @treturn Model an unscoped model
-- @usage Player:unscoped():count()
function Model:unscoped() end

--- A subquery for `op.in_`, `op.not_in`, `op.exists` and
-- `op.not_exists`: `attributes` (exactly one for IN), `where`, `order`,
-- `limit`, `offset`, `group`, `having`, `distinct`, `paranoid`. Built
-- when the query using it runs; its values are bound.
-- @tparam[opt] table opts its options
-- @return a subquery value
-- @usage Player:find_all{ where = { id = op.in_(Item:subquery{ attributes = { "owner_id" },
--                                                                where = { kind = "sword" } }) } }
function Model:subquery(opts) end

return Model
