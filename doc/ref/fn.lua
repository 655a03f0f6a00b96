--- Function values: column defaults computed per insert (`now`,
-- `uuidv4`) and aggregates for `attributes`.
--
-- Any other name: `sqorm.fn.<name>(...)` is a call of the SQL function
-- `name` (checked like an identifier: `[A-Za-z_][A-Za-z0-9_]*`, else kind
-- `usage`), for `attributes` (`{ sqorm.fn.lower("name"), "lname" }`),
-- `where` operands, `order`, `group` and `having`. Its arguments are
-- column names (strings), `sqorm.col`, other calls, numbers and booleans
-- (bound). An attribute `{ expression, "alias" }` names it; the alias is
-- checked like an identifier and usable in `order`, `group`, `having`.
-- @module sqorm.fn
-- @usage
-- db:define("event", { { "at", T.DATETIME, default = sqorm.fn.now() } })
-- Player:find_all{ attributes = { "guild_id", sqorm.fn.count("id", "members") },
--                  group = { "guild_id" }, raw = true }
local fn = {}

--- The current UTC time, as a column default.
function fn.now() end

--- A random v4 UUID, as a column default.
function fn.uuidv4() end

--- count(col) AS alias in `attributes`.
-- @tparam[opt] string col the column (none: count(*))
-- @tparam[opt] string alias the result's name (default "count")
function fn.count(col, alias) end

--- sum(col) AS alias.
-- @tparam string col the column
-- @tparam[opt] string alias the result's name
function fn.sum(col, alias) end

--- min(col) AS alias.
-- @tparam string col the column
-- @tparam[opt] string alias the result's name
function fn.min(col, alias) end

--- max(col) AS alias.
-- @tparam string col the column
-- @tparam[opt] string alias the result's name
function fn.max(col, alias) end

--- avg(col) AS alias.
-- @tparam string col the column
-- @tparam[opt] string alias the result's name
function fn.avg(col, alias) end

return fn
