-- db:query / db:exec with ? and :name binds, typed results, and the
-- usage errors of bad binds, on every configured dialect.
local sqorm = require "sqorm"
local H = require "spec.helper"

H.each_dialect(describe, function(d)
  local db, t

  before_each(function()
    db = sqorm.connect(d.url)
    t = H.tname("raw")
    db:exec(("CREATE TABLE %s (id %s, name VARCHAR(64), coins INTEGER, ratio DOUBLE PRECISION, ok BOOLEAN, data %s)")
      :format(t, H.autoinc_pk(d.name), H.blob_type(d.name)))
  end)

  after_each(function()
    if db and not db:is_closed() then
      pcall(db.exec, db, "DROP TABLE " .. t)
      db:close()
    end
  end)

  it("inserts with ? binds and reports affected rows and last insert id", function()
    local r = db:exec(("INSERT INTO %s (name, coins) VALUES (?, ?)"):format(t), { "ann", 10 })
    assert.are.equal(1, r.affected_rows)
    if d.name ~= "postgres" then assert.is_true(r.last_insert_id >= 1) end
    local r2 = db:exec(("INSERT INTO %s (name, coins) VALUES (?, ?), (?, ?)"):format(t), { "bob", 20, "cy", 30 })
    assert.are.equal(2, r2.affected_rows)
    local u = db:exec(("UPDATE %s SET coins = coins + 1 WHERE coins >= ?"):format(t), { 20 })
    assert.are.equal(2, u.affected_rows)
  end)

  it("binds :name values, reusing a name", function()
    db:exec(("INSERT INTO %s (name, coins) VALUES (:n, :c)"):format(t), { n = "dee", c = 5 })
    local rows = db:query(("SELECT name, coins FROM %s WHERE coins = :c AND coins < :c + 1"):format(t), { c = 5 })
    assert.are.same({ { name = "dee", coins = 5 } }, rows)
  end)

  it("returns an array of row tables keyed by column name", function()
    for i = 1, 3 do db:exec(("INSERT INTO %s (name, coins) VALUES (?, ?)"):format(t), { "p" .. i, i * 100 }) end
    local rows = db:query(("SELECT name, coins FROM %s WHERE coins > ? ORDER BY coins DESC"):format(t), { 150 })
    assert.are.same({ { name = "p3", coins = 300 }, { name = "p2", coins = 200 } }, rows)
    assert.are.same({}, db:query(("SELECT name FROM %s WHERE coins > ?"):format(t), { 1e6 }))
  end)

  it("types results: integers stay integers, NULL reads as nil", function()
    db:exec(("INSERT INTO %s (name, coins, ratio, ok) VALUES (?, ?, ?, ?)"):format(t), { "x", 42, 0.5, true })
    db:exec(("INSERT INTO %s (name) VALUES (?)"):format(t), { sqorm.null })
    local rows = db:query(("SELECT id, name, coins, ratio, ok FROM %s ORDER BY id"):format(t))
    assert.are.equal("integer", math.type(rows[1].id))
    assert.are.equal("integer", math.type(rows[1].coins))
    assert.are.equal(42, rows[1].coins)
    assert.are.equal("float", math.type(rows[1].ratio))
    assert.are.equal(0.5, rows[1].ratio)
    if d.name == "mysql" then assert.are.equal(1, rows[1].ok) -- BOOLEAN is TINYINT(1) there
    else assert.are.equal(true, rows[1].ok) end
    assert.is_nil(rows[2].name)
    assert.is_nil(rows[2].coins)
    local one = db:query("SELECT ? AS a, ? AS b, ? AS c", { 7, 2.5, "s" })[1]
    assert.are.equal(7, one.a)
    assert.are.equal("integer", math.type(one.a))
    assert.are.equal(2.5, one.b)
    assert.are.equal("s", one.c)
  end)

  it("binds booleans, integers, floats and strings", function()
    db:exec(("INSERT INTO %s (name, coins, ratio, ok) VALUES (?, ?, ?, ?)"):format(t), { "b", -7, -1.25, false })
    local r = db:query(("SELECT name, coins, ratio, ok FROM %s WHERE ok = ?"):format(t), { false })[1]
    assert.are.equal("b", r.name)
    assert.are.equal(-7, r.coins)
    assert.are.equal(-1.25, r.ratio)
  end)

  it("keeps strings binary-safe (embedded NULs)", function()
    local bin = "a\0b\0\255\254c"
    db:exec(("INSERT INTO %s (name, data) VALUES (?, ?)"):format(t), { "bin", bin })
    local r = db:query(("SELECT data FROM %s WHERE name = ?"):format(t), { "bin" })[1]
    assert.are.equal(#bin, #r.data)
    assert.are.equal(bin, r.data)
  end)

  it("streams the statement to the logging function", function()
    local lines = {}
    local ldb = sqorm.connect(d.url, { logging = function(s) lines[#lines + 1] = s end })
    ldb:query("SELECT 1 AS one")
    ldb:close()
    assert.are.same({ "Executing (default): SELECT 1 AS one" }, lines)
  end)

  it("logs elapsed time with benchmark = true", function()
    local lines = {}
    local ldb = sqorm.connect(d.url, { logging = function(s) lines[#lines + 1] = s end, benchmark = true })
    ldb:query("SELECT 1 AS one")
    ldb:close()
    assert.are.equal(2, #lines)
    assert.is_truthy(lines[2]:match("^Executed %(default%): SELECT 1 AS one Elapsed time: %d+%.%d%dms$"))
  end)

  describe("bad binds raise kind usage", function()
    local function q(sql, binds) return function() db:query(sql, binds) end end
    it("too few binds", function() H.raises_kind("usage", "bind #2 is nil", q("SELECT ?, ?", { 1 })) end)
    it("no binds for placeholders", function() H.raises_kind("usage", "no binds", q("SELECT ?")) end)
    it("too many binds", function() H.raises_kind("usage", "1 placeholder(s) but 3 binds", q("SELECT ?", { 1, 2, 3 })) end)
    it("binds without placeholders", function() H.raises_kind("usage", "0 placeholder(s)", q("SELECT 1", { 1 })) end)
    it("a mix of ? and :name", function() H.raises_kind("usage", "mixes", q("SELECT ?, :a", { 1, a = 2 })) end)
    it("a missing named bind", function() H.raises_kind("usage", "missing bind ':b'", q("SELECT :a, :b", { a = 1 })) end)
    it("an unused named bind", function() H.raises_kind("usage", "':zz' is not used", q("SELECT :a", { a = 1, zz = 2 })) end)
    it("a named bind for ?", function() H.raises_kind("usage", "named bind 'a'", q("SELECT ?", { 1, a = 2 })) end)
    it("a positional bind for :name", function() H.raises_kind("usage", "positional", q("SELECT :a", { a = 1, 5 })) end)
    it("a table value", function() H.raises_kind("usage", "bind #1 has type table", q("SELECT ?", { {} })) end)
    it("a function value", function() H.raises_kind("usage", "has type function", q("SELECT ?", { print })) end)
    it("a coroutine value", function() H.raises_kind("usage", "has type thread", q("SELECT ?", { coroutine.create(print) })) end)
    it("a hole", function() H.raises_kind("usage", "bind #1 is nil", q("SELECT ?, ?", { nil, 2 })) end)
    it("binds that are not a table", function() H.raises_kind("usage", "binds must be a table", q("SELECT ?", 5)) end)
    it("SQL that is not a string", function()
      H.raises_kind("usage", "expects SQL as a string", function() db:query(nil) end)
      H.raises_kind("usage", "expects SQL as a string", function() db:exec({}) end)
    end)
    it("and the db still works afterwards", function()
      pcall(db.query, db, "SELECT ?", { {} })
      assert.are.equal(1, db:query("SELECT 1 AS one")[1].one)
    end)
  end)

  describe("SQL errors carry kind and driver code", function()
    it("syntax", function()
      local err = H.raises(function() db:query("SELEC nonsense") end)
      assert.are.equal("syntax", err.kind)
      assert.is_string(err.code)
      if d.name ~= "sqlite" then assert.are.equal(5, #err.sqlstate) end
      assert.is_truthy(tostring(err):find("sqorm.Error [syntax]", 1, true))
    end)
    it("unknown table", function()
      H.raises_kind("syntax", nil, function() db:query("SELECT * FROM no_such_table_sqorm") end)
    end)
    it("unique violation", function()
      local u = H.tname("uq")
      db:exec(("CREATE TABLE %s (k INTEGER PRIMARY KEY)"):format(u))
      db:exec(("INSERT INTO %s VALUES (?)"):format(u), { 1 })
      local err = H.raises(function() db:exec(("INSERT INTO %s VALUES (?)"):format(u), { 1 }) end)
      assert.are.equal("unique_violation", err.kind)
      if d.name == "postgres" then assert.are.equal("23505", err.sqlstate) end
      if d.name == "mysql" then assert.are.equal("1062", err.code); assert.are.equal("23000", err.sqlstate) end
      if d.name == "sqlite" then assert.are.equal("SQLITE_CONSTRAINT_PRIMARYKEY", err.code) end
      db:exec("DROP TABLE " .. u)
    end)
    it("not null is a constraint error", function()
      local u = H.tname("nn")
      db:exec(("CREATE TABLE %s (k INTEGER NOT NULL)"):format(u))
      H.raises_kind("constraint", nil, function() db:exec(("INSERT INTO %s VALUES (?)"):format(u), { sqorm.null }) end)
      db:exec("DROP TABLE " .. u)
    end)
  end)
end)
