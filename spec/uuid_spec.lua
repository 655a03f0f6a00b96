-- UUID columns: an upper-case UUID is normalised to the canonical lower
-- case when coerced, so it is stored, looked up and compared as one key
-- on every dialect (issue 23).
local sqorm = require "sqorm"
local H = require "spec.helper"
local M = require "spec.model_helper"
local T = sqorm.types

local LOWER = "0f8e3c2a-1b2c-4d5e-8f90-a1b2c3d4e5f6"
local UPPER = LOWER:upper()
local MIXED = "0F8e3C2a-1b2C-4D5e-8f90-A1b2c3D4e5F6"

H.each_dialect(describe, function(d)
  local db, U

  before_each(function()
    db = M.connect(d)
    U = db:define("token", {
      { "id", T.UUID, primary_key = true },
      { "ref", T.UUID },
      { "label", T.STRING(16) },
    }, { table_name = H.tname("tokens"), timestamps = false })
    U:sync{ force = true }
  end)

  after_each(function() M.cleanup(db, U) end)

  it("stores an upper-case UUID in lower case", function()
    U:create{ id = UPPER, ref = MIXED, label = "a" }
    local row = U:find_one{ raw = true }
    assert.are.equal(LOWER, row.id)
    assert.are.equal(LOWER, row.ref)
  end)

  it("find_by_pk finds a row by any spelling of its key", function()
    U:create{ id = UPPER, label = "a" }
    for _, k in ipairs({ LOWER, UPPER, MIXED }) do
      local u = U:find_by_pk(k)
      assert.is_not_nil(u, k)
      assert.are.equal("a", u.label)
    end
    U:create{ id = "11111111-2222-4333-8444-555555555555", label = "b" }
    assert.are.equal("b", U:find_by_pk("11111111-2222-4333-8444-555555555555"):get("label"))
  end)

  it("where, update and destroy match any spelling", function()
    U:create{ id = LOWER, ref = LOWER, label = "a" }
    assert.are.equal(1, U:count{ where = { id = UPPER } })
    assert.are.equal(1, U:count{ where = { ref = MIXED } })
    assert.are.equal(1, U:count{ where = { id = { MIXED, UPPER } } })
    assert.are.equal(1, U:update({ label = "b" }, { where = { ref = UPPER } }))
    local u = U:find_by_pk(MIXED)
    u:update{ label = "c" }
    assert.are.equal("c", U:find_by_pk(LOWER).label)
    assert.are.equal(1, U:destroy{ where = { id = UPPER } })
    assert.are.equal(0, U:count())
  end)

  it("an upper-case duplicate of a key is the same key", function()
    U:create{ id = LOWER, label = "a" }
    H.raises_kind("unique_violation", nil, function() U:create{ id = UPPER, label = "b" } end)
  end)

  it("still refuses what is not a UUID", function()
    H.raises(function() U:find_by_pk("0f8e3c2a1b2c4d5e8f90a1b2c3d4e5f6") end)
    H.raises(function() U:create{ id = "G" .. LOWER:sub(2) } end)
  end)
end)
