-- Decoding never loses data silently: an integer column whose stored text
-- does not fit 64 bits reads back as the exact text (as raw queries
-- deliver a BIGINT UNSIGNED above 2^63), never clamped to 2^63-1. Also
-- db:models() and friends with stray arguments.
local sqorm = require "sqorm"
local H = require "spec.helper"
local M = require "spec.model_helper"
local T = sqorm.types

H.each_dialect(describe, function(d)
  local db

  before_each(function()
    db = M.connect(d)
  end)

  after_each(function()
    db:close()
  end)

  it("an out-of-range integer text reads back exactly, in range ones as integers", function()
    local t = H.tname("big")
    db:exec(("CREATE TABLE %s (id INTEGER PRIMARY KEY, n %s)"):format(t, H.text_type(d.name)))
    local B = db:define("big", { { "id", T.INTEGER, primary_key = true }, { "n", T.BIGINT } },
      { table_name = t, timestamps = false })
    local cases = {
      { 1, "99999999999999999999", "99999999999999999999" },
      { 2, "-99999999999999999999", "-99999999999999999999" },
      { 3, "9223372036854775808", "9223372036854775808" },
      { 4, "9223372036854775807", math.maxinteger },
      { 5, "-9223372036854775808", math.mininteger },
      { 6, "123", 123 },
    }
    for _, c in ipairs(cases) do
      db:exec(("INSERT INTO %s (id, n) VALUES (?, ?)"):format(t), { c[1], c[2] })
    end
    for _, c in ipairs(cases) do
      local v = B:find_by_pk(c[1]).n
      assert.are.equal(c[3], v, "row " .. c[1])
      assert.are.equal(type(c[3]), type(v))
      if math.type(c[3]) then assert.are.equal("integer", math.type(v)) end
      assert.are.equal(c[3], B:find_one{ where = { id = c[1] }, raw = true }.n)
    end
    db:exec("DROP TABLE " .. t)
  end)

  it("db:models() with an argument is usage, not a crash", function()
    local P = M.players(db)
    H.raises_kind("usage", "takes no arguments", function() db:models(42) end)
    H.raises_kind("usage", "takes no arguments", function() db:models({}) end)
    H.raises_kind("usage", "takes no arguments", function() db:models(nil) end)
    local all = db:models()
    assert.are.equal(P, all.player)
    assert.are.equal(P, db:model("player"))
    assert.is_nil(db:model("nope"))
    H.raises_kind("usage", nil, function() db.models(42) end)
    -- stray extra arguments elsewhere are harmless
    assert.are.equal(P, db:model("player", 42, {}))
    assert.is_true(P:drop(nil))
  end)
end)
