-- luacheck configuration (Debian's lua-check). The test command runs
--   luacheck lua examples spec doc/ref
-- from the top directory.
std = "lua54"
max_line_length = 120
exclude_files = { "build/", "build-*/", "build.luarocks/" }

files["spec/"] = {
  std = "+busted",
  max_line_length = false, -- expected SQL and messages are written out whole
  self = false,            -- methods (`function h:done()`) needn't use self
  ignore = {
    "211/tx", "211/sp", -- `local tx <close> = db:begin()`: held for its scope
    "212/tx",           -- transaction callbacks that don't use their Tx
    "213",              -- loop variables of loops run for their count
    "221", "231", "241", -- variables left nil or write-only on purpose (an empty where, captured logs)
    "311/co",           -- `co = nil`: a reference dropped before collectgarbage()
    "211/sqorm",        -- `local sqorm = require "sqorm"` atop a spec
  },
}
-- LDoc stubs: empty functions that document the API
files["doc/ref/"] = { unused_args = false }
