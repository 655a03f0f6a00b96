-- bulk_create's fast paths (issue 15): a plain bulk insert's RETURNING
-- lists only the columns the server fills (the instances already hold
-- what was sent), and returning = false builds no instances but keeps
-- every rule: defaults, timestamps, validation, strict names.
local sqorm = require "sqorm"
local H = require "spec.helper"
local M = require "spec.model_helper"

local T = sqorm.types

-- 1 when the server returns rows from an INSERT (PostgreSQL, MariaDB >= 10.5).
local function has_returning(db, d)
  if d.name == "postgres" then return true end
  if d.name ~= "mysql" then return false end
  local v = db:server_version()
  local major, minor = v:gsub("^5%.5%.5%-", ""):match("^(%d+)%.(%d+)")
  return v:find("MariaDB", 1, true) ~= nil and (tonumber(major) > 10 or (tonumber(major) == 10 and tonumber(minor) >= 5))
end

local function q(d, name)
  return d.name == "mysql" and ("`" .. name .. "`") or ('"' .. name .. '"')
end

H.each_dialect(describe, function(d)
  local db, log, P, tname

  before_each(function()
    db, log = M.connect(d)
    tname = H.tname("bulkfast")
    -- `tag` has a default only the server knows
    db:exec(("CREATE TABLE %s (id %s, name VARCHAR(32) UNIQUE, coins INTEGER, tag VARCHAR(8) DEFAULT 'srv', "
      .. "created_at %s, updated_at %s)"):format(tname, H.autoinc_pk(d.name),
        d.name == "postgres" and "TIMESTAMP" or "DATETIME", d.name == "postgres" and "TIMESTAMP" or "DATETIME"))
    P = db:define("bulkfast", {
      { "id", T.INTEGER, primary_key = true, auto_increment = true },
      { "name", T.STRING(32), unique = true },
      { "coins", T.INTEGER, default = 7, validate = { min = 0 } },
      { "tag", T.STRING(8) },
    }, { table_name = tname, timestamps = true })
    M.clear(log)
  end)

  after_each(function()
    pcall(db.exec, db, "DROP TABLE " .. tname)
    db:close()
  end)

  it("RETURNING lists only the key and the columns no record gives", function()
    local list = P:bulk_create { { name = "a", coins = 1 }, { name = "b" } }
    local st = M.statements(log)
    assert.are.equal(1, #st)
    if has_returning(db, d) then
      local ret = st[1]:match(" RETURNING (.*)$")
      assert.are.equal(q(d, "id") .. ", " .. q(d, "tag"), ret)
    else
      assert.is_nil(st[1]:find("RETURNING", 1, true))
    end
    -- what the instances hold: what was sent, the server's key and default
    assert.are.equal(2, #list)
    for i, p in ipairs(list) do
      local row = P:find_one { where = { name = p.name } }
      assert.are.equal(row.id, p.id)
      assert.are.equal(({ 1, 7 })[i], p.coins)
      assert.are.equal(row.created_at, p.created_at)
      assert.are.equal(row.updated_at, p.updated_at)
      if has_returning(db, d) then assert.are.equal("srv", p.tag) end
    end
  end)

  it("no RETURNING at all when the records give every column", function()
    local list = P:bulk_create { { id = 10, name = "a", tag = "x" }, { id = 11, name = "b", tag = "y" } }
    local st = M.statements(log)
    assert.are.equal(1, #st)
    assert.is_nil(st[1]:find("RETURNING", 1, true))
    assert.are.same({ 10, 11 }, { list[1].id, list[2].id })
    assert.are.same({ "x", "y" }, { list[1].tag, list[2].tag })
  end)

  it("ignore_duplicates still returns whole rows (new instances from what the server returns)", function()
    if d.name == "mysql" and not has_returning(db, d) then return pending("no RETURNING") end
    P:bulk_create { { name = "a" } }
    M.clear(log)
    local list = P:bulk_create({ { name = "a" }, { name = "b", coins = 3 } }, { ignore_duplicates = true })
    assert.are.equal(1, #list)
    assert.are.equal("b", list[1].name)
    assert.are.equal(3, list[1].coins)
    assert.are.equal("srv", list[1].tag)
    local st = M.statements(log)
    assert.truthy(st[1]:find(q(d, "name"), st[1]:find(" RETURNING ", 1, true), true))
  end)
  it("returning = false: the count, with defaults, default functions and timestamps applied", function()
    local n = 0
    local D = db:define("bulkfast_d", {
      { "id", T.INTEGER, primary_key = true, auto_increment = true },
      { "name", T.STRING(32), unique = true },
      { "coins", T.INTEGER, default = 7, validate = { min = 0 } },
      { "tag", T.STRING(8), default = function() n = n + 1; return "f" .. n end },
    }, { table_name = tname, timestamps = true })
    M.clear(log)
    assert.are.equal(3, D:bulk_create({ { name = "a", coins = 1 }, { name = "b" }, { tag = "own", name = "c" } },
      { returning = false }))
    assert.are.equal(1, #M.statements(log))
    assert.are.equal(2, n)
    local rows = D:find_all { order = { "name" } }
    assert.are.same({ "a", "b", "c" }, { rows[1].name, rows[2].name, rows[3].name })
    assert.are.same({ 1, 7, 7 }, { rows[1].coins, rows[2].coins, rows[3].coins })
    assert.are.same({ "f1", "f2", "own" }, { rows[1].tag, rows[2].tag, rows[3].tag })
    for _, r in ipairs(rows) do
      assert.are.equal("string", type(r.created_at))
      assert.are.equal(r.created_at, r.updated_at)
    end
  end)

  it("returning = false checks every rule before any SQL", function()
    local err, st = M.fails(log, "validation", "record #2", function()
      P:bulk_create({ { name = "a" }, { name = "b", coins = -1 } }, { returning = false })
    end)
    assert.are.equal(2, err.index)
    assert.truthy(err.fields.coins)
    assert.are.equal(0, #st)
    err, st = M.fails(log, "validation", "record #1", function()
      P:bulk_create({ { name = "a", coins = "many" } }, { returning = false })
    end)
    assert.truthy(err.fields.coins)
    assert.are.equal(0, #st)
    local _, st3 = M.fails(log, "usage", "has no column 'nam'", function()
      P:bulk_create({ { name = "a" }, { nam = "b" } }, { returning = false })
    end)
    assert.are.equal(0, #st3)
    assert.are.equal(0, P:count())
  end)

  it("returning = false with a validator that normalises: the instance as it left it is written", function()
    local V = db:define("bulkfast_v", {
      { "id", T.INTEGER, primary_key = true, auto_increment = true },
      { "name", T.STRING(32), unique = true,
        validate = { lower = function(v, inst) inst.name = v:lower(); return true end } },
      { "coins", T.INTEGER },
    }, { table_name = tname, timestamps = true })
    assert.are.equal(2, V:bulk_create({ { name = "AbC" }, { name = "X", coins = 2 } }, { returning = false }))
    local rows = V:find_all { order = { "name" } }
    assert.are.same({ "abc", "x" }, { rows[1].name, rows[2].name })
  end)

  it("records may give their columns in any order and set; names are matched exactly", function()
    for _, ret in ipairs { true, false } do
      P:destroy { where = { coins = sqorm.op.gte(0) } }
      local recs = {
        { name = "a", coins = 1 },
        { coins = 2, tag = "t", name = "b" },
        { tag = "u", name = "c" },
        { name = "d", coins = 4, tag = sqorm.null },
      }
      local out = P:bulk_create(recs, { returning = ret })
      if ret then
        assert.are.same({ "a", "b", "c", "d" }, { out[1].name, out[2].name, out[3].name, out[4].name })
        assert.are.same({ 1, 2, 7, 4 }, { out[1].coins, out[2].coins, out[3].coins, out[4].coins })
      else
        assert.are.equal(4, out)
      end
      local rows = P:find_all { order = { "name" } }
      assert.are.same({ 1, 2, 7, 4 }, { rows[1].coins, rows[2].coins, rows[3].coins, rows[4].coins })
      assert.are.same({ "t", "u" }, { rows[2].tag, rows[3].tag })
      M.fails(log, "usage", "has no column 'names'", function()
        P:bulk_create({ { name = "e" }, { names = "f" } }, { returning = ret })
      end)
      M.fails(log, "usage", "has no column 'nam'", function()
        P:bulk_create({ { name = "e" }, { nam = "f" } }, { returning = ret })
      end)
    end
  end)
  it("values convert as everywhere else: range, floats, numeric strings, numbers for text", function()
    for _, ret in ipairs { true, false } do
      P:destroy { where = { coins = sqorm.op.gte(0) } }
      local out = P:bulk_create({ { name = "a", coins = 2.0 }, { name = "b", coins = "3" }, { name = 12, coins = 2147483647 } },
        { returning = ret })
      if ret then
        assert.are.same({ 2, 3, 2147483647 }, { out[1].coins, out[2].coins, out[3].coins })
        assert.are.equal("integer", math.type(out[1].coins))
        assert.are.equal("12", out[3].name)
      end
      local rows = P:find_all { order = { "coins" } }
      assert.are.same({ "a", "b", "12" }, { rows[1].name, rows[2].name, rows[3].name })
      local err = M.fails(log, "validation", "record #2", function()
        P:bulk_create({ { name = "c", coins = 1 }, { name = "d", coins = 2147483648 } }, { returning = ret })
      end)
      assert.truthy(err.fields.coins)
      err = M.fails(log, "validation", "record #1", function()
        P:bulk_create({ { name = "e", coins = 1.5 } }, { returning = ret })
      end)
      assert.truthy(err.fields.coins)
      err = M.fails(log, "validation", "record #1", function()
        P:bulk_create({ { name = "\255\254" } }, { returning = ret })
      end)
      assert.truthy(err.fields.name)
    end
  end)
end)
