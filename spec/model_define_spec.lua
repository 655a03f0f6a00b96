-- db:define: types, column and model options, table names, list and map
-- column forms, and the mistakes define refuses.
local sqorm = require "sqorm"
local H = require "spec.helper"
local M = require "spec.model_helper"
local T = sqorm.types

describe("sqorm.types", function()
  it("has every type of DESIGN.md as a value", function()
    for _, n in ipairs{ "INTEGER", "BIGINT", "SMALLINT", "FLOAT", "DOUBLE", "DECIMAL", "STRING", "CHAR", "TEXT",
                        "BOOLEAN", "DATE", "DATETIME", "BLOB", "UUID" } do
      assert.is_not_nil(T[n], n)
      assert.are.equal(n, tostring(T[n]))
    end
  end)

  it("parametrises STRING, CHAR and DECIMAL by calling them", function()
    assert.are.equal("STRING(32)", tostring(T.STRING(32)))
    assert.are.equal("CHAR(36)", tostring(T.CHAR(36)))
    assert.are.equal("DECIMAL(10,2)", tostring(T.DECIMAL(10, 2)))
    assert.are.equal(T.STRING(32), T.STRING(32))
    assert.are_not.equal(T.STRING(32), T.STRING(16))
  end)

  it("refuses arguments where a type takes none, and bad ones", function()
    H.raises_kind("usage", "takes no arguments", function() return T.INTEGER(11) end)
    H.raises_kind("usage", "integer", function() return T.STRING("x") end)
    H.raises_kind("usage", nil, function() return T.STRING(1, 2) end)
  end)
end)

H.each_dialect(describe, function(d)
  local db, log, models

  before_each(function()
    db, log = M.connect(d)
    models = {}
  end)

  after_each(function()
    M.cleanup(db, table.unpack(models))
  end)

  local function define(name, cols, opts)
    opts = opts or {}
    local m = db:define(name, cols, opts)
    models[#models + 1] = m
    return m
  end

  it("takes columns as an ordered list", function()
    local P = define("player", {
      { "id", T.INTEGER, primary_key = true, auto_increment = true },
      { "name", T.STRING(32) },
      { "coins", T.INTEGER },
    }, { table_name = H.tname("players"), timestamps = false })
    assert.are.same({ "id", "name", "coins" }, P.columns)
    assert.are.same({ "id" }, P.primary_key)
    assert.are.equal("player", P.name)
  end)

  it("takes columns as a map: primary key first, then by name", function()
    local P = define("player", {
      zeta = T.INTEGER,
      name = { type = T.STRING(32), unique = true },
      id = { type = T.INTEGER, primary_key = true, auto_increment = true },
      alpha = T.TEXT,
    }, { table_name = H.tname("players"), timestamps = false })
    assert.are.same({ "id", "alpha", "name", "zeta" }, P.columns)
  end)

  it("adds id when no column is a primary key, and timestamps by default", function()
    local P = define("thing", { { "label", T.STRING } }, { table_name = H.tname("things") })
    assert.are.same({ "id", "label", "created_at", "updated_at" }, P.columns)
    P:sync()
    local t = P:create{ label = "a" }
    assert.are.equal("integer", math.type(t.id))
    assert.matches("^%d%d%d%d%-%d%d%-%d%d %d%d:%d%d:%d%d$", t.created_at)
    assert.are.equal(t.created_at, t.updated_at)
  end)

  it("names tables with the plural of the model name's last word", function()
    assert.are.equal("players", db:define("player", { { "x", T.INTEGER } }).table_name)
    assert.are.equal("people", db:define("person", { { "x", T.INTEGER } }).table_name)
    assert.are.equal("super_users", db:define("super_user", { { "x", T.INTEGER } }).table_name)
    assert.are.equal("children", db:define("child", { { "x", T.INTEGER } }).table_name)
    assert.are.equal("categories", db:define("category", { { "x", T.INTEGER } }).table_name)
    assert.are.equal("my_table", db:define("whatever", { { "x", T.INTEGER } }, { table_name = "my_table" }).table_name)
  end)

  it("turns timestamps off, renames them, and adds deleted_at for paranoid models", function()
    local A = define("a", { { "x", T.INTEGER } }, { table_name = H.tname("a"), timestamps = false })
    assert.are.same({ "id", "x" }, A.columns)
    local B = define("b", { { "x", T.INTEGER } }, { table_name = H.tname("b"), created_at = "made", updated_at = "touched" })
    assert.are.same({ "id", "x", "made", "touched" }, B.columns)
    local C = define("c", { { "x", T.INTEGER } }, { table_name = H.tname("c"), paranoid = true })
    assert.are.same({ "id", "x", "created_at", "updated_at", "deleted_at" }, C.columns)
  end)

  it("stores every type and reads it back as the Lua type of DESIGN.md", function()
    local K = define("kind", {
      { "id", T.INTEGER, primary_key = true, auto_increment = true },
      { "big", T.BIGINT }, { "small", T.SMALLINT }, { "f", T.FLOAT }, { "dbl", T.DOUBLE },
      { "dec", T.DECIMAL(10, 2) }, { "s", T.STRING(20) }, { "ch", T.CHAR(3) }, { "txt", T.TEXT },
      { "ok", T.BOOLEAN }, { "day", T.DATE }, { "at", T.DATETIME }, { "bin", T.BLOB }, { "u", T.UUID },
    }, { table_name = H.tname("kinds"), timestamps = false })
    K:sync{ force = true }
    local bin = "\0\1\2\255binary"
    local k = K:create{ big = 9007199254740993, small = -3, f = 1.5, dbl = 2.25, dec = "12345678.91", s = "hello",
                        ch = "abc", txt = ("x"):rep(1000), ok = true, day = "2024-02-29", at = "2024-01-02 03:04:05",
                        bin = bin, u = "123e4567-e89b-12d3-a456-426614174000" }
    local r = K:find_by_pk(k.id)
    assert.are.equal(9007199254740993, r.big)
    assert.are.equal("integer", math.type(r.big))
    assert.are.equal(-3, r.small)
    assert.are.equal("float", math.type(r.f))
    assert.are.equal(1.5, r.f)
    assert.are.equal(2.25, r.dbl)
    assert.are.equal("12345678.91", r.dec)
    assert.are.equal("hello", r.s)
    assert.are.equal("abc", r.ch)
    assert.are.equal(1000, #r.txt)
    assert.are.equal(true, r.ok)
    assert.are.equal("2024-02-29", r.day)
    assert.are.equal("2024-01-02 03:04:05", r.at)
    assert.are.equal(bin, r.bin)
    assert.are.equal("123e4567-e89b-12d3-a456-426614174000", r.u:lower())
    local f = K:create{ ok = false, at = 0 }
    f = K:find_by_pk(f.id)
    assert.are.equal(false, f.ok)
    assert.are.equal("1970-01-01 00:00:00", f.at)
    assert.is_nil(f.s)
  end)

  it("generates a v4 UUID for a UUID primary key without a value", function()
    local U = define("token", { { "id", T.UUID, primary_key = true }, { "label", T.STRING } },
      { table_name = H.tname("tokens"), timestamps = false })
    U:sync{ force = true }
    local t = U:create{ label = "x" }
    assert.matches("^%x%x%x%x%x%x%x%x%-%x%x%x%x%-4%x%x%x%-[89ab]%x%x%x%-%x%x%x%x%x%x%x%x%x%x%x%x$", t.id)
    assert.are.equal("x", U:find_by_pk(t.id).label)
    assert.are_not.equal(t.id, U:create{ label = "y" }.id)
  end)

  it("applies defaults: values, functions (per insert) and sqorm.fn.now()", function()
    local n = 0
    local D = define("deflt", {
      { "id", T.INTEGER, primary_key = true, auto_increment = true },
      { "coins", T.INTEGER, default = 7 },
      { "seq", T.INTEGER, default = function() n = n + 1; return n * 10 end },
      { "born", T.DATETIME, default = sqorm.fn.now() },
      { "tag", T.STRING, default = "none" },
    }, { table_name = H.tname("deflts"), timestamps = false })
    D:sync{ force = true }
    local a, b = D:create{}, D:create{ coins = 1, tag = "t" }
    assert.are.same({ 7, 10, "none" }, { a.coins, a.seq, a.tag })
    assert.are.same({ 1, 20, "t" }, { b.coins, b.seq, b.tag })
    assert.matches("^%d%d%d%d%-", a.born)
    local built = D:build{}
    assert.are.equal(7, built.coins)
  end)

  it("supports composite primary keys and composite unique keys", function()
    local C = define("member", {
      { "team", T.INTEGER, primary_key = true },
      { "player", T.INTEGER, primary_key = true },
      { "a", T.INTEGER, unique = "a_b" },
      { "b", T.INTEGER, unique = "a_b" },
    }, { table_name = H.tname("members"), timestamps = false })
    C:sync{ force = true }
    C:create{ team = 1, player = 2, a = 1, b = 1 }
    C:create{ team = 1, player = 3, a = 1, b = 2 }
    assert.are.equal(3, C:find_by_pk{ team = 1, player = 3 }.player)
    assert.is_nil(C:find_by_pk{ team = 2, player = 3 })
    local e = H.raises(function() C:create{ team = 2, player = 2, a = 1, b = 1 } end)
    assert.are.equal("unique_violation", e.kind)
    H.raises_kind("usage", "composite", function() C:find_by_pk(1) end)
  end)

  it("creates declared indexes", function()
    local I = define("item", { { "a", T.INTEGER }, { "b", T.INTEGER } },
      { table_name = H.tname("items"), indexes = { { fields = { "a", "b" }, unique = true }, { fields = { "b" }, name = H.tname("ix_b") } } })
    M.clear(log)
    I:sync{ force = true }
    local ddl = table.concat(M.statements(log), "\n")
    assert.matches("UNIQUE", ddl, 1, true)
    I:create{ a = 1, b = 1 }
    assert.are.equal("unique_violation", H.raises(function() I:create{ a = 1, b = 1 } end).kind)
  end)

  if d.name == "mysql" then
    it("renders column comments and ENGINE=InnoDB on MySQL", function()
      local P = M.players(db)
      models[#models + 1] = P
      M.clear(log)
      P:sync{ force = true }
      local ddl = table.concat(M.statements(log), "\n")
      assert.matches("COMMENT 'The unique ID of the player.'", ddl, 1, true)
      assert.matches("ENGINE=InnoDB", ddl, 1, true)
    end)
  end

  it("keeps a registry: db:model(name), db:models(), redefinition replaces", function()
    local A = define("alpha", { { "x", T.INTEGER } }, { table_name = H.tname("al") })
    assert.are.equal(A, db:model("alpha"))
    assert.is_nil(db:model("nope"))
    local A2 = define("alpha", { { "y", T.INTEGER } }, { table_name = H.tname("al") })
    assert.are.equal(A2, db:model("alpha"))
    assert.are.equal(A2, db:models().alpha)
  end)

  it("lets a model carry class methods and instance methods", function()
    local P = M.players(db)
    models[#models + 1] = P
    P:sync{ force = true }
    function P:rich() return self:find_all{ where = { coins = sqorm.op.gt(100) } } end
    function P.methods:label() return ("%s:%d"):format(self.name, self.coins) end
    P:create{ name = "a", coins = 500 }
    local r = P:rich()
    assert.are.equal(1, #r)
    assert.are.equal("a:500", r[1]:label())
  end)

  it("refuses bad definitions with kind usage", function()
    H.raises_kind("usage", "unknown option 'nullable'", function() db:define("x", { { "a", T.INTEGER, nullable = true } }) end)
    H.raises_kind("usage", "unknown option 'tablename'", function() db:define("x", { { "a", T.INTEGER } }, { tablename = "x" }) end)
    H.raises_kind("usage", "expected a type", function() db:define("x", { { "a", "INTEGER" } }) end)
    H.raises_kind("usage", "two columns", function() db:define("x", { { "a", T.INTEGER }, { "a", T.TEXT } }) end)
    H.raises_kind("usage", "auto_increment", function() db:define("x", { { "a", T.STRING, auto_increment = true } }) end)
    H.raises_kind("usage", "unknown validate rule", function() db:define("x", { { "a", T.INTEGER, validate = { is_email = true } } }) end)
    H.raises_kind("usage", nil, function() db:define("x", { { "a", T.INTEGER, default = "abc" } }) end)
    H.raises_kind("usage", nil, function() db:define("", { { "a", T.INTEGER } }) end)
    H.raises_kind("usage", "not both", function() db:define("x", { { "a", T.INTEGER }, b = T.INTEGER }) end)
    H.raises_kind("usage", nil, function() db:define("x", { { ("c"):rep(70), T.INTEGER } }) end)
  end)
end)
