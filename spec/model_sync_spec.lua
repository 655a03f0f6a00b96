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
    -- "old" holds data: a plain alter refuses to drop it, naming it
    M.clear(log)
    H.raises_kind("usage", '"old"', function() V2:sync{ alter = true } end)
    assert.are.same({}, M.statements(log))
    assert.are.equal("x", db:query(("SELECT old FROM %s"):format(name))[1].old)
    V2:sync{ alter = { drop = true } }
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
    H.raises_kind("usage", nil, function() P:sync{ force = true, alter = { drop = true } } end)
    H.raises_kind("usage", nil, function() db:sync{ force = "yes" } end)
    H.raises_kind("usage", "unknown alter option 'dorp'", function() P:sync{ alter = { dorp = true } } end)
    H.raises_kind("usage", "alter.drop must be a boolean", function() P:sync{ alter = { drop = 1 } } end)
    H.raises_kind("usage", "alter must be", function() db:sync{ alter = "yes" } end)
  end)

  -- The keys model of the alter specs below: code is the key, n has a
  -- default, tag may be unique; `v` changes one thing at a time.
  local K = T
  local function keys(tname, v)
    v = v or {}
    local n = { "n", K.INTEGER, default = v.default }
    local tag = { "tag", K.STRING(16), unique = v.unique_tag or v.group }
    if v.group then n.unique = v.group end
    if v.pk2 then n.primary_key, n.allow_null = true, false end
    local cols = { { "code", K.STRING(16), primary_key = true }, n, tag }
    if v.note ~= false then cols[#cols + 1] = { "note", K.TEXT } end
    if v.req then cols[#cols + 1] = { "req", K.INTEGER, allow_null = false } end
    return track(db:define("keyed", cols, { table_name = tname, timestamps = false }))
  end

  -- alter, then a second alter that must find nothing to do.
  local function alter_once(Mdl, how)
    Mdl:sync{ alter = how or true }
    M.clear(log)
    Mdl:sync{ alter = true }
    assert.are.same({}, M.statements(log))
  end

  it("alter adds a unique key; over duplicates it fails loudly and changes nothing", function()
    local name = H.tname("keyed")
    local A = keys(name)
    A:sync()
    A:bulk_create{ { code = "a", n = 1, tag = "x", note = "hello" }, { code = "b", n = 2, tag = "x" } }
    local B = keys(name, { unique_tag = true })
    H.raises_kind("unique_violation", nil, function() B:sync{ alter = true } end)
    -- nothing half-applied: the old shape still matches, the rows are there
    local A2 = keys(name)
    M.clear(log)
    A2:sync{ alter = true }
    assert.are.same({}, M.statements(log))
    assert.are.equal(2, A2:count())
    if d.name == "sqlite" then
      assert.are.same({}, db:query("SELECT name FROM sqlite_master WHERE name LIKE '%sqorm_new%'"))
    end
    A2:update({ tag = "y" }, { where = { code = "b" } })
    B = keys(name, { unique_tag = true })
    alter_once(B)
    H.raises_kind("unique_violation", nil, function() B:create{ code = "c", n = 3, tag = "x" } end)
    -- and removed again: duplicates are fine
    local C = keys(name)
    alter_once(C)
    C:create{ code = "c", n = 3, tag = "x" }
    assert.are.equal(2, C:count{ where = { tag = "x" } })
  end)

  it("alter adds a composite unique key", function()
    local name = H.tname("keyed")
    keys(name):sync()
    local G = keys(name, { group = "keyed_n_tag" })
    G:create{ code = "a", n = 1, tag = "x" }
    alter_once(G)
    H.raises_kind("unique_violation", nil, function() G:create{ code = "b", n = 1, tag = "x" } end)
    G:create{ code = "b", n = 2, tag = "x" }
  end)

  it("alter applies a changed default", function()
    local name = H.tname("keyed")
    keys(name, { default = 0 }):sync()
    local D = keys(name, { default = 7 })
    alter_once(D)
    db:exec(("INSERT INTO %s (code) VALUES ('a')"):format(name))
    assert.are.equal(7, D:find_by_pk("a").n)
    alter_once(keys(name)) -- no default at all
    db:exec(("INSERT INTO %s (code) VALUES ('b')"):format(name))
    assert.is_nil(D:find_by_pk("b").n)
  end)

  it("alter changes the primary key, and refuses a key over duplicates", function()
    local name = H.tname("keyed")
    keys(name, { default = 0 }):sync()
    local P2 = keys(name, { default = 0, pk2 = true })
    P2:create{ code = "a", n = 1 }
    alter_once(P2)
    P2:create{ code = "a", n = 2 } -- same code, another n: a new row now
    assert.are.equal(2, P2:count())
    local P1 = keys(name, { default = 0 })
    H.raises_kind("unique_violation", nil, function() P1:sync{ alter = true } end)
    P2 = keys(name, { default = 0, pk2 = true })
    M.clear(log)
    P2:sync{ alter = true }
    assert.are.same({}, M.statements(log))
    P2:destroy{ where = { code = "a", n = 2 } }
    P1 = keys(name, { default = 0 })
    alter_once(P1)
    H.raises_kind("unique_violation", nil, function() P1:create{ code = "a", n = 5 } end)
  end)

  it("alter never drops a column holding data unless alter = { drop = true }", function()
    local name = H.tname("keyed")
    local A = keys(name)
    A:sync()
    A:create{ code = "a", note = "precious" }
    local B = keys(name, { note = false })
    M.clear(log)
    local e = H.raises_kind("usage", '"note"', function() B:sync{ alter = true } end)
    assert.matches("alter = { drop = true }", e.message, 1, true)
    assert.are.same({}, M.statements(log))
    assert.are.equal("precious", db:query(("SELECT note FROM %s"):format(name))[1].note)
    -- a rename is a drop plus an add: refused too, the data stays
    local R = track(db:define("keyed", {
      { "code", T.STRING(16), primary_key = true }, { "n", T.INTEGER }, { "tag", T.STRING(16) },
      { "remark", T.TEXT },
    }, { table_name = name, timestamps = false }))
    H.raises_kind("usage", '"note"', function() R:sync{ alter = true } end)
    assert.are.equal("precious", db:query(("SELECT note FROM %s"):format(name))[1].note)
    -- an empty column (only NULLs) goes without the option
    db:exec(("UPDATE %s SET note = NULL"):format(name))
    B = keys(name, { note = false })
    alter_once(B)
    -- with the option, data or not
    A = keys(name)
    A:sync{ alter = true }
    A:update({ note = "x" }, { all = true })
    B = keys(name, { note = false })
    alter_once(B, { drop = true })
    assert.is_nil(db:query(("SELECT * FROM %s"):format(name))[1].note)
    assert.are.equal(1, B:count())
  end)

  if d.name ~= "mysql" then -- MySQL fills a NOT NULL column with its implicit default
    it("a failed alter (NOT NULL over existing rows) leaves the table as it was", function()
      local name = H.tname("keyed")
      local A = keys(name)
      A:sync()
      A:create{ code = "a", note = "n" }
      local B = keys(name, { req = true })
      H.raises_kind("constraint", nil, function() B:sync{ alter = true } end)
      if d.name == "sqlite" then
        assert.are.same({}, db:query("SELECT name FROM sqlite_master WHERE name LIKE '%sqorm_new%'"))
      end
      A = keys(name)
      M.clear(log)
      A:sync{ alter = true }
      assert.are.same({}, M.statements(log))
      assert.are.equal("n", A:find_by_pk("a").note)
      -- inside a transaction the failure rolls back to a savepoint only
      db:transaction(function()
        A:create{ code = "b" }
        B = keys(name, { req = true })
        H.raises_kind("constraint", nil, function() B:sync{ alter = true } end)
        A = keys(name)
      end)
      assert.are.equal(2, A:count())
    end)
  end
end)
