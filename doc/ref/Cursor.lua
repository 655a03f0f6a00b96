--- The closing value of `Model:each`: the streaming statement behind a
-- generic `for`. The loop closes it when it ends or on `break`; a cursor
-- inside a transaction is closed when the transaction ends (its next
-- iteration raises kind `closed`).
-- @classmod Cursor
-- @usage
-- for p in Player:each{ where = { coins = op.gte(0) } } do
--   if p.coins > 1000 then break end   -- the connection goes back at once
-- end
local Cursor = {}

--- Ends the statement and gives its connection back (idempotent).
-- @usage local it, _, _, cur = Player:each(); it(); cur:close()
function Cursor:close() end

return Cursor
