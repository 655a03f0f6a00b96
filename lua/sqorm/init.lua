-- sqorm: an ORM for Lua 5.4 whose engine is C.
-- This file is thin sugar over the C module `sqorm.core`: no SQL is built
-- here and no rows are walked here.
local core = require "sqorm.core"

local sqorm = {}
for k, v in pairs(core) do sqorm[k] = v end

sqorm.env = require "sqorm.env"

-- hooks: Model:add_hook / remove_hook, db:add_hook / remove_hook and the
-- define option `hooks` (lua/sqorm/hooks.lua)
require "sqorm.hooks"

-- sqorm.migrator(db, { dir = "migrations", table = "sqorm_migrations", ... })
function sqorm.migrator(db, opts) return require("sqorm.migrate").new(db, opts) end

return sqorm
