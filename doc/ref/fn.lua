--- Function values: column defaults computed per insert (`now`,
-- `uuidv4`) and aggregates for `attributes`.
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
