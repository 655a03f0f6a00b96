-- spec/model_helper.lua - what the model specs share: a db whose logging
-- function records every statement, the players model of DESIGN.md on a
-- table name of its own, and cleanup.
local sqorm = require "sqorm"
local H = require "spec.helper"

local T = sqorm.types
local M = {}

-- sqorm.connect(d.url) with a logging function that appends each message
-- to the returned list (log.sql() gives the statements only).
function M.connect(d, opts)
  local log = {}
  local o = { logging = function(msg) log[#log + 1] = msg end }
  for k, v in pairs(opts or {}) do o[k] = v end
  local db = sqorm.connect(d.url, o)
  return db, log
end

-- The statements logged since index `from` (1 when nil), without the
-- "Executing (default): " prefix.
function M.statements(log, from)
  local out = {}
  for i = from or 1, #log do
    out[#out + 1] = (log[i]:gsub("^Executing %(default%): ", ""))
  end
  return out
end

-- Clears the log in place.
function M.clear(log)
  for i = #log, 1, -1 do log[i] = nil end
end

-- DESIGN.md's Player, on a fresh table name; opts are merged into the
-- model options.
function M.players(db, opts)
  local o = { table_name = H.tname("players"), timestamps = true }
  for k, v in pairs(opts or {}) do o[k] = v end
  return db:define("player", {
    { "id", T.INTEGER, primary_key = true, auto_increment = true, comment = "The unique ID of the player." },
    { "name", T.STRING(32), unique = true },
    { "coins", T.INTEGER, allow_null = false, default = 0, validate = { min = 0 } },
    { "goods", T.INTEGER, allow_null = false, default = 0 },
  }, o)
end

-- Drops the given models' tables (ignoring errors) and closes db.
function M.cleanup(db, ...)
  if not db or db:is_closed() then return end
  for _, m in ipairs({ ... }) do pcall(m.drop, m) end
  db:close()
end

-- Runs fn and returns the error it raised, which must be a sqorm error of
-- `kind` whose message contains `pattern` (plain), and the statements
-- logged while it ran (which should usually be none).
function M.fails(log, kind, pattern, fn, ...)
  local from = #log + 1
  local err = H.raises_kind(kind, pattern, fn, ...)
  return err, M.statements(log, from)
end

return M
