--- Operators for `where`: values made by these functions, so a table
-- decoded from a request can never inject an operator (a string key such
-- as `"$gt"` is kind `usage`). Logical operators work as list items of a
-- `where` and on one column.
-- @module sqorm.op
-- @usage
-- local op = sqorm.op
-- Player:find_all{ where = { coins = op.gt(300), goods = op.between(1, 5) } }
-- Player:find_all{ where = { op.or_({ coins = 1 }, { goods = 2 }), name = op.like("a%") } }
-- Player:find_all{ where = { rank = op.or_(op.lt(100), op.is_null()) } }
-- Player:find_all{ where = { op.not_{ coins = 0 } } }
local op = {}

--- Equal (a plain value means the same).
-- @param v the value
function op.eq(v) end

--- Not equal.
-- @param v the value
function op.ne(v) end

--- Greater than.
-- @param v the value
function op.gt(v) end

--- Greater than or equal.
-- @param v the value
function op.gte(v) end

--- Less than.
-- @param v the value
function op.lt(v) end

--- Less than or equal.
-- @param v the value
function op.lte(v) end

--- Between a and b, inclusive.
-- @param a low
-- @param b high
function op.between(a, b) end

--- Not between a and b.
-- @param a low
-- @param b high
function op.not_between(a, b) end

--- In a list (a plain list means the same); an empty list matches nothing.
-- @tparam table list the values
-- @usage Player:find_all{ where = { id = op.in_{ 1, 2, 3 } } }
function op.in_(list) end

--- Not in a list; an empty list matches everything.
-- @tparam table list the values
function op.not_in(list) end

--- LIKE a pattern (`%` and `_`).
-- @tparam string pattern the pattern
function op.like(pattern) end

--- NOT LIKE a pattern.
-- @tparam string pattern the pattern
function op.not_like(pattern) end

--- IS NULL (`sqorm.null` as a value means the same).
function op.is_null() end

--- IS NOT NULL.
function op.not_null() end

--- All of the conditions: where tables, or operators on one column.
-- @param ... conditions
-- @usage op.and_({ coins = op.gt(1) }, { goods = 2 })
function op.and_(...) end

--- Any of the conditions.
-- @param ... conditions
-- @usage Player:find_all{ where = { op.or_({ coins = 1 }, { goods = 2 }) } }
function op.or_(...) end

--- Not the condition: a where table or an operator.
-- @param cond the condition
-- @usage Player:find_all{ where = { op.not_{ coins = 0 } } }
function op.not_(cond) end

--- `op["in"]`: the same as `op.in_`.
-- @function in

--- Compares the JSON value at a path of a `T.JSON` column:
-- `where = { stats = op.json("ui.theme", "dark") }`. The path is a value,
-- bound as a parameter: a string of keys joined by dots, or a list of
-- keys (strings, taken as they are) and 1-based array positions
-- (integers). The comparison is a string, number or boolean (equality),
-- `sqorm.json_null` (a JSON null there, never the string "null"),
-- `sqorm.null` / `op.is_null()` (no value there: missing or JSON null),
-- `op.not_null()`, or one of eq, ne, gt, gte, lt, lte, between,
-- not_between, in_, not_in, like, not_like over values of one JSON type:
-- only values of that type match (the string "10" is not the number 10).
-- @tparam string|table path "a.b" or { "a", "b", 1 }
-- @param value_or_op a value or an operator value
-- @return a value for a JSON column in a `where`
-- @usage Item:find_all{ where = { stats = op.json({ "tags", 1 }, "sword") } }
function op.json(path, value_or_op) end

--- `op["and"]`: the same as `op.and_`.
-- @function and

--- `op["or"]`: the same as `op.or_`.
-- @function or

--- `op["not"]`: the same as `op.not_`.
-- @function not

--- EXISTS a related row: `op.has("posts")`, `op.has("posts", { published
-- = true })`, as a list item of a read's `where` (find_all, count, ...).
-- Loads nothing. An unknown association is kind `usage`.
-- @tparam string name the association
-- @tparam[opt] table where on the association's target
-- @usage User:find_all{ where = { op.has("posts", { published = true }) } }
function op.has(name, where) end

--- EXISTS (subquery), as a list item of a read's `where`.
-- @param subquery a `Model:subquery{...}`
function op.exists(subquery) end

--- NOT EXISTS (subquery).
-- @param subquery a `Model:subquery{...}`
function op.not_exists(subquery) end

return op
