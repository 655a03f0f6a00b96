-- Regressions for what the Lua API fuzzer (fuzz/lua_api.lua) found: every
-- failure of a sqorm call is an error object with a kind, never a bare
-- Lua argument error. Binding-level (no SQL differs per dialect), so on
-- SQLite.
local sqorm = require "sqorm"
local H = require "spec.helper"
local T = sqorm.types

describe("lua_api fuzzer regressions", function()
  local db, Player
  before_each(function()
    db = sqorm.connect("sqlite::memory:")
    Player = db:define("player", { { "id", T.INTEGER, primary_key = true }, { "name", T.STRING(20) } })
    Player:sync()
  end)
  after_each(function() db:close() end)

  it("sqorm.error with arguments that are not strings is kind usage", function()
    for _, args in ipairs({ { {}, "m" }, { "usage", {} }, { nil, "m" }, { "usage", nil }, { print, "m" },
      { "usage", coroutine.create(print) }, { sqorm.error("usage", "x"), "m" } }) do
      H.raises_kind("usage", "sqorm.error(kind, message)", sqorm.error, args[1], args[2])
    end
    -- still works with strings
    local e = sqorm.error("validation", "nope")
    assert.are.equal("validation", e.kind)
    assert.are.equal("nope", e.message)
  end)

  it("db:model with a name that is not a string is kind usage", function()
    for _, v in ipairs({ {}, print, true, Player }) do
      H.raises_kind("usage", "db:model(name)", db.model, db, v)
    end
    H.raises_kind("usage", "db:model(name)", db.model, db)
    assert.are.equal(Player, db:model("player"))
    assert.is_nil(db:model("nobody"))
  end)

  it("tostring of an operator holding a string quotes it (it raised 'invalid option %q')", function()
    assert.are.equal('sqorm.op.eq("ann")', tostring(sqorm.op.eq("ann")))
    assert.are.equal('sqorm.op.between("a\\"b", 2)', tostring(sqorm.op.between('a"b', 2)))
    assert.are.equal('sqorm.op.like("x\\010y\\000")', tostring(sqorm.op.like("x\ny\0")))
    assert.are.equal("sqorm.op.in_({ ... })", tostring(sqorm.op.in_{ 1 }):gsub("table: 0x%x+", "{ ... }"))
  end)

  it("a method called on the wrong value is kind usage naming the expected self", function()
    local tx = db:begin()
    local it, _, _, cur = Player:each()
    assert.is_function(it)
    local others = { 42, "x", {}, db, Player, tx, cur, Player:build{ id = 1 } }
    local cases = {
      { tx.commit, "sqorm.Tx" }, { tx.rollback, "sqorm.Tx" }, { tx.is_open, "sqorm.Tx" },
      { getmetatable(tx).__close, "sqorm.Tx" }, { getmetatable(tx).__tostring, "sqorm.Tx" },
      { cur.close, "sqorm.Cursor" }, { getmetatable(cur).__tostring, "sqorm.Cursor" },
      { db.close, "sqorm.Db" }, { db.is_closed, "sqorm.Db" }, { getmetatable(db).__tostring, "sqorm.Db" },
      { getmetatable(Player).__tostring, "sqorm.Model" },
    }
    for _, c in ipairs(cases) do
      for _, v in ipairs(others) do
        if getmetatable(v) ~= (c[2] == "sqorm.Tx" and getmetatable(tx) or c[2] == "sqorm.Cursor" and getmetatable(cur)
            or c[2] == "sqorm.Db" and getmetatable(db) or getmetatable(Player)) then
          H.raises_kind("usage", "expected a " .. c[2] .. " as self", c[1], v)
        end
      end
    end
    H.raises_kind("usage", "expected a sqorm.Model", getmetatable(Player).__index, 42, "find_all")
    H.raises_kind("usage", "expected a sqorm.Model as self", getmetatable(Player).__newindex, 42, "f", print)
    -- nothing was closed or ended by the refused calls
    assert.is_true(tx:is_open())
    assert.is_false(db:is_closed())
    cur:close()
    tx:rollback()
  end)
end)
