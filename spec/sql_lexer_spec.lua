-- Placeholders are found by one lexer per dialect: what each server reads
-- as a literal, a quoted name or a comment is never a bind, and what it
-- reads as a placeholder always is. (The full case tables are in
-- tests/test_lex.c; these run the cases against the real servers.)
local sqorm = require "sqorm"
local H = require "spec.helper"

H.each_dialect(describe, function(d)
  local db
  before_each(function() db = sqorm.connect(d.url) end)
  after_each(function() db:close() end)

  it("leaves doubled quotes, comments and ';' in literals alone", function()
    local r = db:query("SELECT 'it''s ?' AS s, ? AS v /* ? :x */ -- ?\n", { 5 })[1]
    assert.are.equal("it's ?", r.s)
    assert.are.equal(5, r.v)
  end)

  it("binds :name next to :: and := but not inside them", function()
    if d.name == "postgres" then
      assert.are.equal(3, db:query("SELECT :v::int + 1 AS n", { v = 2 })[1].n)
    elseif d.name == "mysql" then
      assert.are.equal(7, db:query("SELECT @sqorm_x := :v AS n", { v = 7 })[1].n)
    else
      assert.are.equal(2, db:query("SELECT :v + 1 AS n", { v = 1 })[1].n)
    end
  end)

  if d.name == "postgres" then
    it("refuses mixing $n with ? (never binds them wrongly)", function()
      H.raises_kind("usage", "mixes $n and ?", function() db:query("SELECT $1::int AS a, ? AS b", { 1, 2 }) end)
    end)

    it("takes native $n placeholders alone", function()
      assert.are.same({ { a = 1, b = 2, c = 1 } }, db:query("SELECT $1::int AS a, $2::int AS b, $1::int AS c", { 1, 2 }))
    end)

    it("reads E'...' strings with backslash escapes", function()
      local r = db:query([[SELECT E'it\'s ?' AS s, e'\\' AS b, ? AS v]], { 9 })[1]
      assert.are.equal("it's ?", r.s)
      assert.are.equal("\\", r.b)
      assert.are.equal(9, r.v)
    end)

    it("writes the jsonb ? operators as ?? ??| ??&", function()
      local r = db:query([[SELECT '{"a":1}'::jsonb ?? 'a' AS has, '{"a":1}'::jsonb ??| array['x','a'] AS any,
        '{"a":1}'::jsonb ??& array['x','a'] AS "all", ?::int AS v]], { 4 })[1]
      assert.are.same({ has = true, any = true, all = false, v = 4 }, r)
      H.raises_kind("usage", "??|", function() db:query("SELECT '{}'::jsonb ?| array['a']") end)
      H.raises_kind("usage", "??&", function() db:query("SELECT '{}'::jsonb ?& array['a']") end)
    end)

    it("does not take the :hi of an array slice for a bind", function()
      local r = db:query("SELECT (ARRAY[10,20,30,40])[lo:hi] AS s, (ARRAY[1,2])[:i] AS e " ..
        "FROM (SELECT 2 AS lo, 3 AS hi) x", { i = 2 })[1]
      assert.are.equal("{20,30}", r.s)
      assert.are.equal(2, r.e)
    end)

    it("reads nested comments and dollar quotes", function()
      local r = db:query("SELECT /* /* ? */ ? */ ? AS v, $$ ? $$ AS d, $q$ :x $q$ AS q", { 3 })[1]
      assert.are.same({ v = 3, d = " ? ", q = " :x " }, r)
    end)
  elseif d.name == "mysql" then
    it("reads 1--? as 1 minus minus a bind (-- needs a space)", function()
      assert.are.equal(3, db:query("SELECT 1--? AS v", { 2 })[1].v)
      assert.are.equal(1, db:query("SELECT 1 -- ?\n AS v")[1].v)
    end)

    it("reads backslash escapes, backticks and # comments", function()
      local r = db:query("SELECT 'it\\'s ?' AS `a?b`, \"q\\\"?\" AS `c``?`, ? AS v # ?\n", { 6 })[1]
      assert.are.equal("it's ?", r["a?b"])
      assert.are.equal('q"?', r["c`?"])
      assert.are.equal(6, r.v)
    end)

    it("binds inside an executable comment, not inside an ordinary one", function()
      assert.are.equal(8, db:query("SELECT /*!50000 ? + */ 1 /* ? */ AS v", { 7 })[1].v)
    end)
  else
    it("reads [a?b] as a name", function()
      local r = db:query("SELECT [a?b], ? AS v FROM (SELECT 1 AS [a?b])", { 2 })[1]
      assert.are.same({ ["a?b"] = 1, v = 2 }, r)
    end)

    it("refuses SQLite's own ?NNN, @x and $x parameters", function()
      H.raises_kind("usage", "'?1'", function() db:query("SELECT ?1", { 1 }) end)
      H.raises_kind("usage", "'@x'", function() db:query("SELECT @x", { 1 }) end)
      H.raises_kind("usage", "'$x'", function() db:query("SELECT $x", { 1 }) end)
    end)

    it("reads 1--? as a comment, as SQLite does", function()
      assert.are.same({ { v = 1 } }, db:query("SELECT 1 AS v --?"))
      assert.are.equal(1, db:query("SELECT 1--? AS v")[1]["1--? AS v"])
    end)
  end
end)
