--- A transaction (or a savepoint inside one), from `Db:begin` or handed
-- to `Db:transaction`'s function. It belongs to the coroutine that opened
-- it: only that coroutine may end it (kind `usage` otherwise). Closing it
-- uncommitted (`<close>`, `__gc`) rolls back. A commit while a savepoint
-- opened inside it is still open is refused (kind `usage`).
-- @classmod Tx
-- @usage
-- local tx <close> = db:begin()
-- db:exec("DELETE FROM players WHERE coins = 0")
-- tx:commit()            -- closing without commit rolls back
local Tx = {}

--- Commits (a savepoint: releases it). Raises kind `closed` when the
-- transaction already ended, `deadlock` when the server rolled it back.
-- @treturn boolean true
function Tx:commit() end

--- Rolls back (a savepoint: to where it began, ending the savepoints
-- opened inside it). Always allowed on an open transaction.
-- @treturn boolean true
function Tx:rollback() end

--- Whether the transaction is still open.
-- @treturn boolean
function Tx:is_open() end

return Tx
