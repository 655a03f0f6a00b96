-- db:query / db:exec run exactly one statement; several only with
-- { multi = true }, in order on one connection. The options table is strict.
local sqorm = require "sqorm"
local H = require "spec.helper"

H.each_dialect(describe, function(d)
  local db, t

  before_each(function()
    db = sqorm.connect(d.url)
    t = H.tname("players")
    db:exec(("CREATE TABLE %s (id INTEGER PRIMARY KEY, name VARCHAR(32), coins INTEGER)"):format(t))
    db:exec(("INSERT INTO %s VALUES (1, 'ann', 10), (2, 'bob', 20)"):format(t))
  end)

  after_each(function()
    if db and not db:is_closed() then
      pcall(db.exec, db, "DROP TABLE " .. t)
      db:close()
    end
  end)

  local function count() return db:query("SELECT count(*) AS n FROM " .. t)[1].n end
  local function coins(id) return db:query("SELECT coins FROM " .. t .. " WHERE id = ?", { id })[1].coins end

  describe("one statement per call", function()
    it("refuses a second statement with kind usage, and runs nothing", function()
      local err = H.raises_kind("usage", "2 statements", function()
        db:exec(("UPDATE %s SET coins = 0; DELETE FROM %s"):format(t, t))
      end)
      assert.is_truthy(err.message:find("multi = true", 1, true))
      assert.are.equal(2, count())
      assert.are.equal(10, coins(1))
      H.raises_kind("usage", "2 statements", function()
        db:query(("SELECT 1 AS a; DELETE FROM %s"):format(t))
      end)
      H.raises_kind("usage", "3 statements", function()
        db:exec(("UPDATE %s SET coins = ? WHERE id = 1; SELECT 1;DELETE FROM %s -- x"):format(t, t), { 5 })
      end)
      assert.are.equal(2, count())
      assert.are.equal(10, coins(1))
    end)

    it("allows trailing semicolons, blanks and comments", function()
      assert.are.equal(1, db:exec(("UPDATE %s SET coins = 11 WHERE id = 1;"):format(t)).affected_rows)
      assert.are.equal(1, db:exec(("UPDATE %s SET coins = 12 WHERE id = 1 ; ;  -- done\n"):format(t)).affected_rows)
      assert.are.equal(1, db:exec(("/* first */ UPDATE %s SET coins = 13 WHERE id = 1; /* last */"):format(t)).affected_rows)
      assert.are.equal(13, coins(1))
    end)

    it("does not split at a ';' inside literals, quoted names or comments", function()
      local q = d.name == "mysql" and "`" or '"'
      local r = db:query(("SELECT 'a;b' AS %sx;y%s /* ; */ -- ;\n"):format(q, q))
      assert.are.equal("a;b", r[1]["x;y"])
      db:exec(("UPDATE %s SET name = 'x; DELETE FROM %s' WHERE id = ?"):format(t, t), { 2 })
      assert.are.equal(2, count())
    end)
  end)

  describe("the options table", function()
    it("is strict", function()
      H.raises_kind("usage", "unknown option 'mutli' (known: multi", function()
        db:exec("SELECT 1", nil, { mutli = true })
      end)
      H.raises_kind("usage", "option 'timeout' must be a number of seconds", function()
        db:query("SELECT 1", {}, { timeout = "1" })
      end)
      H.raises_kind("usage", "option keys must be strings", function() db:query("SELECT 1", nil, { true }) end)
      H.raises_kind("usage", "'multi' must be a boolean", function() db:query("SELECT 1", nil, { multi = 1 }) end)
      H.raises_kind("usage", "options must be a table", function() db:query("SELECT 1", nil, "multi") end)
    end)

    it("accepts nil and an empty table", function()
      assert.are.equal(1, db:query("SELECT 1 AS one", nil, nil)[1].one)
      assert.are.equal(1, db:query("SELECT 1 AS one", nil, {})[1].one)
      assert.are.equal(1, db:query("SELECT ? AS one", { 1 }, { multi = false })[1].one)
    end)
  end)

  describe("multi = true", function()
    it("runs every statement in order on one connection", function()
      local r = db:exec(("UPDATE %s SET coins = 0; DELETE FROM %s WHERE id = 2; INSERT INTO %s VALUES (3, 'cy', 30)")
        :format(t, t, t), nil, { multi = true })
      assert.are.equal(2 + 1 + 1, r.affected_rows) -- summed over the statements
      assert.are.same({ { id = 1, coins = 0 }, { id = 3, coins = 30 } },
        db:query("SELECT id, coins FROM " .. t .. " ORDER BY id"))
    end)

    it("consumes ? binds in order across the statements", function()
      db:exec(("UPDATE %s SET coins = ? WHERE id = ?; UPDATE %s SET coins = ? WHERE id = ?"):format(t, t),
        { 100, 1, 200, 2 }, { multi = true })
      assert.are.equal(100, coins(1))
      assert.are.equal(200, coins(2))
    end)

    it("resolves :name binds in every statement", function()
      db:exec(("UPDATE %s SET coins = :c WHERE id = 1; UPDATE %s SET coins = :c + 1 WHERE id = 2"):format(t, t),
        { c = 7 }, { multi = true })
      assert.are.equal(7, coins(1))
      assert.are.equal(8, coins(2))
      H.raises_kind("usage", "':zz' is not used", function()
        db:exec("SELECT :a; SELECT :b", { a = 1, b = 2, zz = 3 }, { multi = true })
      end)
      H.raises_kind("usage", "mixes", function() db:exec("SELECT :a; SELECT ?", { a = 1, 2 }, { multi = true }) end)
      H.raises_kind("usage", "bind #2 is nil", function() db:exec("SELECT ?; SELECT ?", { 1 }, { multi = true }) end)
    end)

    it("returns the rows of the last statement that returned rows", function()
      local rows = db:query(("SELECT 1 AS a; SELECT name FROM %s WHERE id = ?; UPDATE %s SET coins = 1")
        :format(t, t), { 2 }, { multi = true })
      assert.are.same({ { name = "bob" } }, rows)
      assert.are.same({}, db:query(("UPDATE %s SET coins = 2; UPDATE %s SET coins = 3"):format(t, t), nil,
        { multi = true }))
    end)

    it("stops at the first failure and names the statement", function()
      local err = H.raises(function()
        db:exec(("UPDATE %s SET coins = 5 WHERE id = 1; SELECT * FROM no_such_table_sqorm; UPDATE %s SET coins = 6")
          :format(t, t), nil, { multi = true })
      end)
      assert.are.equal("syntax", err.kind)
      assert.is_truthy(err.message:find("^statement 2 of 3: "))
      assert.are.equal(5, coins(1)) -- the first ran (autocommit), the third did not
      assert.are.equal(20, coins(2))
    end)

    it("is atomic inside a transaction", function()
      pcall(db.transaction, db, function()
        db:exec(("UPDATE %s SET coins = 99; SELECT * FROM no_such_table_sqorm"):format(t), nil, { multi = true })
      end)
      assert.are.equal(10, coins(1))
    end)

    it("with one statement behaves as without", function()
      assert.are.same({ { n = 2 } }, db:query("SELECT count(*) AS n FROM " .. t .. ";", nil, { multi = true }))
    end)
  end)

  if d.name == "sqlite" then
    it("keeps a trigger body with its ';' as one statement", function()
      db:exec(("CREATE TRIGGER %s_trg AFTER INSERT ON %s BEGIN UPDATE %s SET coins = coins + 1 WHERE id = new.id; " ..
        "UPDATE %s SET name = CASE WHEN new.name = 'x' THEN 'y' ELSE new.name END WHERE id = new.id; END")
        :format(t, t, t, t))
      db:exec(("INSERT INTO %s VALUES (3, 'x', 30)"):format(t))
      assert.are.same({ { name = "y", coins = 31 } }, db:query("SELECT name, coins FROM " .. t .. " WHERE id = 3"))
    end)
  elseif d.name == "mysql" then
    it("keeps a stored procedure body with its ';' as one statement", function()
      local p = t .. "_p"
      db:exec(("CREATE PROCEDURE %s(IN x INT) BEGIN IF x > 0 THEN UPDATE %s SET coins = x WHERE id = 1; END IF; " ..
        "UPDATE %s SET coins = CASE WHEN x > 5 THEN 1 ELSE 2 END WHERE id = 2; END"):format(p, t, t))
      db:exec(("CALL %s(?)"):format(p), { 9 })
      assert.are.equal(9, coins(1))
      assert.are.equal(1, coins(2))
      db:exec("DROP PROCEDURE " .. p)
    end)
  else
    it("keeps a function body with its ';' as one statement", function()
      local f = t .. "_f"
      db:exec(("CREATE FUNCTION %s(x int) RETURNS int LANGUAGE sql AS $$ SELECT 1; SELECT x + 1 $$"):format(f))
      assert.are.equal(42, db:query(("SELECT %s(?::int) AS v"):format(f), { 41 })[1].v)
      local g = t .. "_g"
      db:exec(("CREATE FUNCTION %s(x int) RETURNS int LANGUAGE sql BEGIN ATOMIC SELECT 1; SELECT x + 2; END"):format(g))
      assert.are.equal(43, db:query(("SELECT %s(?::int) AS v"):format(g), { 41 })[1].v)
      db:exec(("DROP FUNCTION %s; DROP FUNCTION %s"):format(f, g), nil, { multi = true })
    end)

    it("numbers $n per statement with multi = true", function()
      local r = db:query("SELECT ?::int AS a; SELECT ?::int + ?::int AS b", { 1, 2, 3 }, { multi = true })
      assert.are.same({ { b = 5 } }, r)
    end)
  end
end)
