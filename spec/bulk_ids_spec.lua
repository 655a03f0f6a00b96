-- The keys bulk_create and create hand back are the ones the server
-- really assigned, and explicit keys never move a PostgreSQL sequence.
local H = require "spec.helper"
local M = require "spec.model_helper"

H.each_dialect(describe, function(d)
  local db, log, P

  before_each(function()
    db, log = M.connect(d)
    P = M.players(db)
    P:sync()
    M.clear(log)
  end)

  after_each(function() M.cleanup(db, P) end)

  -- Every instance's id is the id of the row holding its name.
  local function assert_ids_read_back(list)
    local seen = {}
    for _, p in ipairs(list) do
      assert.are.equal("integer", math.type(p.id))
      assert.is_nil(seen[p.id], "id " .. tostring(p.id) .. " handed out twice")
      seen[p.id] = true
      local row = P:find_one { where = { name = p.name } }
      assert.are.equal(row.id, p.id, "the id bulk_create returned for " .. p.name)
    end
  end

  it("bulk_create returns the ids the server assigned", function()
    P:create { name = "first" }
    local recs = {}
    for i = 1, 9 do recs[i] = { name = "p" .. i, coins = i } end
    assert_ids_read_back(P:bulk_create(recs))
    assert_ids_read_back(P:bulk_create({ { name = "q1" }, { name = "q2" }, { name = "q3" } }, { batch_size = 2 }))
  end)

  if d.name == "mysql" then
    it("bulk_create returns the real ids when the server's increment is not 1", function()
      -- as on Galera (auto_increment_increment = cluster size); the SET is
      -- session state, so it and the inserts share the transaction's
      -- connection
      local list
      db:transaction(function()
        db:exec("SET SESSION auto_increment_increment = 3")
        list = P:bulk_create { { name = "a" }, { name = "b" }, { name = "c" }, { name = "d" } }
        db:exec("SET SESSION auto_increment_increment = 1")
      end)
      assert_ids_read_back(list)
      assert.are.equal(3, list[2].id - list[1].id)
    end)

    it("uses INSERT ... RETURNING on MariaDB >= 10.5 (one statement for the batch)", function()
      local v = db:server_version()
      local major, minor = v:gsub("^5%.5%.5%-", ""):match("^(%d+)%.(%d+)")
      if not (v:find("MariaDB", 1, true) and (tonumber(major) > 10 or (tonumber(major) == 10 and tonumber(minor) >= 5))) then
        return pending("not MariaDB >= 10.5")
      end
      P:bulk_create { { name = "a" }, { name = "b" } }
      local st = M.statements(log)
      assert.are.equal(1, #st)
      assert.matches("^INSERT INTO .* RETURNING ", st[1])
    end)
  end

  if d.name == "postgres" then
    it("an explicit key does not move the sequence: a collision fails loudly", function()
      local a = P:create { name = "a" }
      P:create { id = a.id + 1, name = "explicit" }
      -- the sequence hands out a.id + 1 next: unique_violation, never a
      -- silent overwrite, and nothing moved the sequence
      H.raises_kind("unique_violation", nil, function() P:create { name = "b" } end)
      local c = P:create { name = "c" }
      assert.are.equal(a.id + 2, c.id)
      -- bulk_create's explicit keys leave it alone too
      P:bulk_create { { id = 1000, name = "x" }, { id = 1001, name = "y" } }
      assert.are.equal(c.id + 1, P:create { name = "d" }.id)
    end)

    it("explicit keys on one connection never rewind the ids another generates", function()
      local db2 = M.connect(d)
      local P2 = db2:define("player", {
        { "id", require("sqorm").types.INTEGER, primary_key = true, auto_increment = true },
        { "name", require("sqorm").types.STRING(32), unique = true },
        { "coins", require("sqorm").types.INTEGER, allow_null = false, default = 0 },
        { "goods", require("sqorm").types.INTEGER, allow_null = false, default = 0 },
      }, { table_name = P.table_name, timestamps = true })
      local last = 0
      for i = 1, 20 do
        local p = P:create { name = "gen" .. i }
        assert.is_true(p.id > last, "generated ids only move forward")
        last = p.id
        P2:create { id = 10000 + i, name = "exp" .. i }
      end
      assert.are.equal(20, P:count { where = { id = require("sqorm").op.lt(10000) } })
      db2:close()
    end)
  end
end)
