-- Schema: Model:sync (create if missing, force, alter), Model:drop,
-- db:sync over every model in definition order, db:drop_all.
local sqorm = require "sqorm"
local H = require "spec.helper"
local M = require "spec.model_helper"
local T = sqorm.types

H.each_dialect(describe, function(d)
  local db, log, models

  before_each(function()
    db, log = M.connect(d)
    models = {}
  end)

  after_each(function()
    M.cleanup(db, table.unpack(models))
  end)

  local function track(m)
    models[#models + 1] = m
    return m
  end

  it("creates the table when missing and leaves an existing one alone", function()
    local P = track(M.players(db))
    assert.are.equal(P, P:sync())
    P:create{ name = "a" }
    P:sync()
    assert.are.equal(1, P:count())
    local ddl = table.concat(M.statements(log), "\n")
    assert.matches("IF NOT EXISTS", ddl, 1, true)
  end)

  it("force drops and recreates the table", function()
    local P = track(M.players(db))
    P:sync{ force = true }
    P:create{ name = "a" }
    M.clear(log)
    P:sync{ force = true }
    assert.are.equal(0, P:count())
    local st = M.statements(log)
    assert.matches("^DROP TABLE", st[1])
    assert.matches("^CREATE TABLE", st[2])
  end)

  it("alter adds new columns and drops removed ones, keeping the rows", function()
    local name = H.tname("evolving")
    local V1 = track(db:define("evolving", {
      { "id", T.INTEGER, primary_key = true, auto_increment = true },
      { "a", T.INTEGER },
      { "old", T.STRING(10) },
    }, { table_name = name, timestamps = false }))
    V1:sync{ force = true }
    V1:create{ a = 1, old = "x" }
    local V2 = track(db:define("evolving", {
      { "id", T.INTEGER, primary_key = true, auto_increment = true },
      { "a", T.INTEGER },
      { "added", T.STRING(20), default = "d" },
    }, { table_name = name, timestamps = false, indexes = { { fields = { "a" } } } }))
    V2:sync{ alter = true }
    local row = V2:find_one()
    assert.are.equal(1, row.a)
    V2:create{ a = 2, added = "new" }
    assert.are.equal("new", V2:find_one{ where = { a = 2 } }.added)
    local cols = db:query(("SELECT * FROM %s"):format(name))[1]
    assert.is_nil(cols.old)
    -- a second alter finds nothing to do, and never duplicates the index
    M.clear(log)
    V2:sync{ alter = true }
    for _, s in ipairs(M.statements(log)) do
      assert.is_nil(s:match("^CREATE INDEX"), s)
      assert.is_nil(s:match("ADD COLUMN"), s)
    end
  end)

  it("alter creates a missing table", function()
    local P = track(M.players(db))
    P:sync{ alter = true }
    assert.are.equal(0, P:count())
  end)

  it("drops a table with Model:drop", function()
    local P = track(M.players(db))
    P:sync()
    assert.is_true(P:drop())
    assert.is_true(P:drop()) -- IF EXISTS
    local e = H.raises(function() P:count() end)
    assert.is_not_nil(e.kind)
  end)

  it("db:sync{ force = true } drops every model in reverse order, then creates in order", function()
    local A = track(db:define("team", { { "label", T.STRING } }, { table_name = H.tname("teams") }))
    local B = track(db:define("member", { { "team_id", T.INTEGER } }, { table_name = H.tname("members") }))
    A:sync()
    A:create{ label = "x" }
    M.clear(log)
    assert.are.equal(db, db:sync{ force = true })
    local st = M.statements(log)
    assert.matches("^DROP TABLE IF EXISTS .*" .. B.table_name, st[1])
    assert.matches("^DROP TABLE IF EXISTS .*" .. A.table_name, st[2])
    local created = {}
    for _, s in ipairs(st) do
      local t = s:match("^CREATE TABLE [\"`]([%w_]+)")
      if t then created[#created + 1] = t end
    end
    assert.are.same({ A.table_name, B.table_name }, created)
    assert.are.equal(0, A:count())
    db:sync() -- if not exists: harmless
    assert.is_true(db:drop_all())
    H.raises(function() A:count() end)
  end)

  it("refuses unknown sync options", function()
    local P = track(M.players(db))
    H.raises_kind("usage", "unknown option", function() P:sync{ froce = true } end)
    H.raises_kind("usage", nil, function() P:sync{ force = true, alter = true } end)
    H.raises_kind("usage", nil, function() db:sync{ force = "yes" } end)
  end)
end)
