--- An instance: one row of a model. `p.name` reads a column, `p.name = v`
-- marks it changed (a name that is not a column is kind `usage`; a value
-- that can't be converted, kind `validation`). A column named like a
-- method is reached with `Instance:get` / `Instance:set`.
--
-- An instance addresses its row by the key it was loaded with; a write
-- or reload that matches no row raises kind `stale`.
-- @classmod Instance
-- @usage
-- local p = Player:find_by_pk(6)
-- p.coins = 700; p:save()          -- UPDATE of changed columns only
-- p:update{ coins = 800 }          -- sets and saves; returns p
local Instance = {}

--- Reads a column (also one named like a method).
-- @tparam string name the column
-- @return its value (nil for NULL)
-- @usage p:get("save")
function Instance:get(name) end

--- Sets a column (also one named like a method); saved by `Instance:save`.
-- @tparam string name the column
-- @param value the value
-- @usage p:set("save", 1)
function Instance:set(name, value) end

--- Writes the instance: INSERT when new, else an UPDATE of the changed
-- columns (plus `updated_at`). On a model with `version`, the UPDATE
-- checks and moves on the version; a lost race is kind `stale` and
-- writes nothing.
-- @tparam[opt] table opts `fields`: only these of the pending changes
-- @treturn Instance the instance
-- @usage p.coins = 700; p:save()
function Instance:save(opts) end

--- Sets values and saves every pending change.
-- @tparam table values column -> value
-- @tparam[opt] table opts `fields`
-- @treturn Instance the instance
-- @usage p:update{ coins = 800, goods = 800 }
function Instance:update(values, opts) end

--- Deletes the row (soft on paranoid models unless `force = true`); on a
-- model with `version`, only at the version loaded (else kind `stale`).
-- @tparam[opt] table opts `force`
-- @treturn boolean true
-- @usage p:destroy()
function Instance:destroy(opts) end

--- Reads the row again.
-- @treturn Instance the instance
-- @usage p:reload()
function Instance:reload() end

--- The columns changed since the last load or save.
-- @treturn {string,...}|false their names, or false
-- @usage if p:changed() then p:save() end
function Instance:changed() end

--- The values as a plain table.
-- @treturn table column -> value
function Instance:to_table() end

--- Adds to a column in the database (`col = col + n`) and reloads it.
-- @tparam string col the column
-- @tparam[opt=1] number|table n the amount, or `{ by = n }`
-- @treturn Instance the instance
-- @usage p:increment("coins", 5)
function Instance:increment(col, n) end

--- Subtracts from a column in the database.
-- @tparam string col the column
-- @tparam[opt=1] number|table n the amount, or `{ by = n }`
-- @treturn Instance the instance
function Instance:decrement(col, n) end

return Instance
