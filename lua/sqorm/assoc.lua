-- sqorm.assoc: the accessors of associations (get_<as>, count_<as>, ...),
-- installed into a model's instance methods when an association is
-- defined. Thin sugar over the model methods: no SQL is built here.
local M = {}

function M.install(methods, info) -- luacheck: ignore
end

return M
