-- SQLite: a double-quoted name is always an identifier (DQS off for DML and
-- DDL on every connection), so a column missing from the live table is an
-- error instead of its own name as a string.
local sqorm = require "sqorm"
local H = require "spec.helper"

local T, op = sqorm.types, sqorm.op

local function names_column(err, name)
  assert(err.kind == "syntax" or err.kind == "database", "kind: " .. tostring(err))
  assert(tostring(err.message):find(name, 1, true), "message names " .. name .. ": " .. tostring(err.message))
end

describe("sqlite double-quoted strings", function()
  local db, Hero, path

  -- a file database with a pool of several connections: every one of them
  -- must have DQS off, not only the first
  before_each(function()
    path = os.tmpname()
    db = sqorm.connect { dialect = "sqlite", storage = path, pool = { max = 3 } }
    db:exec("CREATE TABLE heroes (id INTEGER PRIMARY KEY, name TEXT)")
    db:exec("INSERT INTO heroes (id, name) VALUES (1, 'ann'), (2, 'bob')")
    -- the model has a column the live table lacks
    Hero = db:define("hero", {
      { "id", T.INTEGER, primary_key = true },
      { "name", T.TEXT },
      { "xp", T.INTEGER },
    }, { table_name = "heroes", timestamps = false })
  end)

  after_each(function()
    db:close()
    os.remove(path)
    os.remove(path .. "-wal")
    os.remove(path .. "-shm")
  end)

  it("raises on reads of a missing column instead of returning its name", function()
    names_column(H.raises(function() Hero:find_all() end), "xp")
    names_column(H.raises(function() Hero:find_by_pk(1) end), "xp")
    names_column(H.raises(function() Hero:find_all { attributes = { "id", "xp" }, raw = true } end), "xp")
  end)

  it("raises on a where on a missing column instead of matching every row", function()
    names_column(H.raises(function() Hero:find_all { where = { xp = op.gt(5) }, attributes = { "id" } } end), "xp")
    names_column(H.raises(function() Hero:count { where = { xp = op.gt(5) } } end), "xp")
    names_column(H.raises(function() Hero:update({ name = "x" }, { where = { xp = 5 } }) end), "xp")
    assert.are.same({ "ann", "bob" }, { db:query("SELECT name FROM heroes ORDER BY id")[1].name,
      db:query("SELECT name FROM heroes ORDER BY id")[2].name })
  end)

  it("raises on raw SQL with a double-quoted non-column, on every pooled connection", function()
    -- several coroutines hold connections at once, so more than one is used
    local errs = {}
    local cos = {}
    for i = 1, 3 do
      cos[i] = coroutine.create(function()
        db:transaction(function()
          coroutine.yield()
          local ok, err = pcall(db.query, db, 'SELECT "nope" FROM heroes')
          errs[i] = not ok and err or false
        end)
      end)
      assert(coroutine.resume(cos[i]))
    end
    for i = 1, 3 do assert(coroutine.resume(cos[i])) end
    for i = 1, 3 do names_column(errs[i], "nope") end
    -- single quotes are still string literals
    assert.are.equal("nope", db:query("SELECT 'nope' AS v")[1].v)
  end)

  it("raises in DDL that uses a double-quoted string", function()
    names_column(H.raises(function() db:exec('CREATE TABLE t2 (a TEXT, CHECK (a <> "nope"))') end), "nope")
    names_column(H.raises(function() db:exec('CREATE INDEX heroes_x ON heroes ("nope")') end), "nope")
  end)
end)
