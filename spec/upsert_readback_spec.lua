-- MySQL's upsert returns no row: sqorm reads the row back by the key it
-- was given. When that finds nothing (the duplicate was on another unique
-- key), it raises stale instead of guessing.
local H = require "spec.helper"
local M = require "spec.model_helper"

H.each_dialect(describe, function(d)
  local db, log, P

  before_each(function()
    db, log = M.connect(d)
    P = M.players(db)
    P:sync { force = true }
  end)

  after_each(function() M.cleanup(db, P) end)

  if d.name == "mysql" then
    it("an upsert whose read-back finds no row raises stale naming the model and key", function()
      local a = P:create { name = "a", coins = 1 }
      M.clear(log)
      local err, st = M.fails(log, "stale", "no player row has the key it was given (id = 999)",
        P.upsert, P, { id = 999, name = "a", coins = 2 })
      assert.matches("another unique key", err.message)
      assert.are.equal(2, #st) -- the upsert and its read-back
      assert.is_nil(P:find_by_pk(999))
      assert.are.equal(a.id, P:find_one { where = { name = "a" } }.id)
    end)
  end

  it("an upsert by its key returns the row", function()
    local p = P:upsert { id = 5, name = "x", coins = 1 }
    assert.are.equal(5, p.id)
    p = P:upsert { id = 5, name = "x", coins = 2 }
    assert.are.equal(2, p.coins)
  end)
end)
