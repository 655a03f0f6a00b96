-- sqorm: an ORM for Lua 5.4 whose engine is C.
-- This file is thin sugar over the C module `sqorm.core`: no SQL is built
-- here and no rows are walked here.
local core = require "sqorm.core"

local sqorm = {}
for k, v in pairs(core) do sqorm[k] = v end

sqorm.env = require "sqorm.env"

return sqorm
