-- connect forms, close / __close / __gc, and usage errors of connect.
local sqorm = require "sqorm"
local H = require "spec.helper"

describe("sqorm module", function()
  it("has a VERSION string and a null value", function()
    assert.is_string(sqorm.VERSION)
    assert.is_truthy(sqorm.VERSION:match("^%d+%.%d+%.%d+"))
    assert.are.equal("sqorm.null", tostring(sqorm.null))
  end)
end)

describe("sqorm.connect", function()
  it("accepts a URL", function()
    local db = sqorm.connect("sqlite::memory:")
    assert.are.equal("sqlite", db:dialect())
    assert.is_true(db:authenticate())
    db:close()
  end)

  it("accepts a URL plus an options table", function()
    local db = sqorm.connect("sqlite::memory:", { pool = { max = 3 }, logging = false })
    assert.are.equal(1, db:pool_stats().max) -- :memory: is capped at one connection
    db:close()
  end)

  it("accepts one table", function()
    local db = sqorm.connect { dialect = "sqlite", storage = ":memory:" }
    assert.are.equal(1, db:query("SELECT 1 AS one")[1].one)
    db:close()
  end)

  it("opens files by relative and absolute path, with WAL", function()
    local dir = os.tmpname()
    os.remove(dir)
    local abs = dir .. ".db"
    local db = sqorm.connect("sqlite://" .. abs) -- sqlite:///abs/path.db
    db:exec("CREATE TABLE t (a INTEGER)")
    db:exec("INSERT INTO t VALUES (?)", { 7 })
    assert.are.equal("wal", db:query("PRAGMA journal_mode")[1].journal_mode)
    db:close()
    local db2 = sqorm.connect { dialect = "sqlite", storage = abs }
    assert.are.equal(7, db2:query("SELECT a FROM t")[1].a)
    db2:close()
    -- a relative path, resolved against the working directory
    local rel = ("sqorm_spec_%d.db"):format(math.random(1, 1e9))
    local db3 = sqorm.connect("sqlite:" .. rel)
    db3:exec("CREATE TABLE t (a INTEGER)")
    db3:close()
    local f = io.open(rel, "rb")
    assert.is_not_nil(f)
    f:close()
    for _, suffix in ipairs { "", "-wal", "-shm" } do os.remove(rel .. suffix); os.remove(abs .. suffix) end
  end)

  it("does not connect until first use", function()
    -- nothing listens on port 1: only authenticate() notices
    local db = sqorm.connect("postgres://u:p@127.0.0.1:1/db", { connect_timeout = 2 })
    local err = H.raises(function() db:authenticate() end)
    assert.are.equal("connection", err.kind)
    db:close()
  end)

  it("reports a file that can't be opened as a connection error", function()
    local db = sqorm.connect("sqlite:/nonexistent-dir-sqorm/x.db")
    H.raises_kind("connection", "nonexistent-dir-sqorm", function() db:authenticate() end)
    db:close()
  end)

  describe("bad input raises kind usage", function()
    local cases = {
      { "an unknown URL scheme", "unknown URL scheme 'oracle'", function() sqorm.connect("oracle://h/db") end },
      { "a malformed URL", "malformed URL", function() sqorm.connect("no-scheme-here") end },
      { "an empty URL", "malformed URL", function() sqorm.connect("") end },
      { "a bad port", "port", function() sqorm.connect("mysql://h:70000/db") end },
      { "a bad ssl mode", "unknown ssl mode", function() sqorm.connect("postgres://h/db?sslmode=maybe") end },
      { "nil", "expects a URL string or an options table", function() sqorm.connect() end },
      { "a number", "got number", function() sqorm.connect(42) end },
      { "a non-table options argument", "options must be a table", function() sqorm.connect("sqlite::memory:", 5) end },
      { "an unknown dialect", "unknown dialect 'oracle'", function() sqorm.connect { dialect = "oracle" } end },
      { "no dialect", "no dialect given", function() sqorm.connect { host = "h" } end },
      { "an unknown option", "unknown option", function() sqorm.connect { dialect = "sqlite", bogus = 1 } end },
      { "a table where a string goes", "must be a string, number or boolean", function()
        sqorm.connect { dialect = "sqlite", storage = {} } end },
      { "a bad pool option", "pool.max", function() sqorm.connect { dialect = "sqlite", pool = { max = -2 } } end },
      { "a non-table pool", "'pool' must be a table", function() sqorm.connect { dialect = "sqlite", pool = 5 } end },
      { "a bad logging value", "logging", function() sqorm.connect("sqlite::memory:", { logging = 5 }) end },
      { "a huge URL", "longer than", function() sqorm.connect("postgres://" .. ("h"):rep(1e6)) end },
      { "a NUL byte in the URL", "NUL byte", function() sqorm.connect("sqlite:x\0y.db") end },
      { "a NUL byte in an option", "NUL byte", function() sqorm.connect { dialect = "sqlite", storage = "a\0b" } end },
      { "hostile bytes in the scheme", "bad scheme", function() sqorm.connect("x;DROP TABLE y://h") end },
    }
    for _, c in ipairs(cases) do
      it(c[1], function() H.raises_kind("usage", c[2], c[3]) end)
    end
  end)
end)

describe("db:close", function()
  it("is idempotent and makes every other method raise kind closed", function()
    local db = sqorm.connect("sqlite::memory:")
    db:close()
    db:close()
    assert.is_true(db:is_closed())
    H.raises_kind("closed", "closed", function() db:query("SELECT 1") end)
    H.raises_kind("closed", "closed", function() db:exec("SELECT 1") end)
    H.raises_kind("closed", "closed", function() db:authenticate() end)
    H.raises_kind("closed", "closed", function() db:pool_stats() end)
    assert.is_truthy(tostring(db):find("closed", 1, true))
  end)

  it("runs as a to-be-closed variable", function()
    local outer
    do
      local db <close> = sqorm.connect("sqlite::memory:")
      outer = db
      assert.is_false(db:is_closed())
    end
    assert.is_true(outer:is_closed())
  end)

  it("closes on error exit from a <close> scope", function()
    local outer
    local ok = pcall(function()
      local db <close> = sqorm.connect("sqlite::memory:")
      outer = db
      db:query("SELECT * FROM no_such_table")
    end)
    assert.is_false(ok)
    assert.is_true(outer:is_closed())
  end)

  it("is run by __gc when the handle is collected", function()
    -- db1 holds the only reference to a named pool; while it lives, the
    -- name can't be reopened with another file. (A session lock such as
    -- PRAGMA locking_mode = EXCLUSIVE can't show this any more: the pool
    -- resets the session when the statement's connection comes back.)
    local name = H.tname("gc_pool")
    local a, b = os.tmpname(), os.tmpname()
    local db1 = sqorm.connect { dialect = "sqlite", storage = a, name = name }
    db1:exec("CREATE TABLE t (a INTEGER)")
    H.raises_kind("usage", nil, function() sqorm.connect { dialect = "sqlite", storage = b, name = name } end)
    db1 = nil -- luacheck: ignore
    collectgarbage()
    collectgarbage()
    local db2 = sqorm.connect { dialect = "sqlite", storage = b, name = name } -- the collected handle let go
    db2:exec("CREATE TABLE t (a INTEGER)")
    db2:close()
    for _, p in ipairs { a, b } do
      for _, s in ipairs { "", "-wal", "-shm" } do os.remove(p .. s) end
    end
  end)

  it("survives methods called with a wrong self", function()
    local db = sqorm.connect("sqlite::memory:")
    H.raises_kind("usage", "sqorm.Db", function() db.query("SELECT 1") end)
    H.raises_kind("usage", "sqorm.Db", function() db.query({}, "SELECT 1") end)
    db:close()
  end)
end)
