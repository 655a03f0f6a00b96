-- Every database call is one operation of the core: its values are its
-- own, its log lines come before and after it (never from its middle),
-- and its rows reach Lua through one sink - directly, or recorded into a
-- rowset and replayed (what async mode does; the undocumented connect
-- option _replay = true makes inline runs do it too). Both give the same
-- results.
local sqorm = require "sqorm"
local H = require "spec.helper"
local M = require "spec.model_helper"
local T, op, fn = sqorm.types, sqorm.op, sqorm.fn

-- A plain copy of what a call returned: instances as tables, rows as they are.
local function plain(v)
  if type(v) ~= "table" then return v end
  if getmetatable(v) and v.to_table then return v:to_table() end
  local t = {}
  for k, x in pairs(v) do t[k] = plain(x) end
  return t
end

H.each_dialect(describe, function(d)
  local url = d.url
  local file
  if d.name == "sqlite" then
    file = os.tmpname()
    url = "sqlite:" .. file
  end
  local inline, replay, A, B
  local tname = H.tname("ops")

  local function define(db)
    return db:define("item", {
      { "id", T.INTEGER, primary_key = true, auto_increment = true },
      { "name", T.STRING(32) },
      { "price", T.DECIMAL(10, 2) },
      { "weight", T.DOUBLE },
      { "rare", T.BOOLEAN },
      { "data", T.BLOB },
    }, { table_name = tname, timestamps = false })
  end

  setup(function()
    inline = sqorm.connect(url, { pool = { max = 2 } })
    replay = sqorm.connect(url, { pool = { max = 2 }, _replay = true })
    A, B = define(inline), define(replay)
    A:sync{ force = true }
    local recs = {}
    for i = 1, 75 do
      recs[i] = { name = i % 9 == 0 and sqorm.null or ("item" .. i), price = ("%d.%02d"):format(i, i % 100),
                  weight = i / 4, rare = i % 2 == 0, data = i % 5 == 0 and ("\0\1" .. i) or nil }
    end
    A:bulk_create(recs)
  end)

  teardown(function()
    pcall(A.drop, A)
    inline:close()
    replay:close()
    if file then os.remove(file) end
  end)

  local function same(f)
    local a, b = { f(inline, A) }, { f(replay, B) }
    assert.are.same(plain(a), plain(b))
    return a[1]
  end

  it("gives the same rows to db:query and db:exec either way", function()
    local rows = same(function(db)
      return db:query(("SELECT id, name, price, data FROM %s WHERE id <= ? ORDER BY id"):format(tname), { 12 })
    end)
    assert.are.equal(12, #rows)
    assert.is_nil(rows[9].name)
    same(function(db) return db:query(("SELECT count(*) AS n FROM %s WHERE id > 1000"):format(tname)) end)
    same(function(db)
      return db:query(("SELECT 1 AS one; SELECT id FROM %s WHERE id < 3 ORDER BY id"):format(tname), nil, { multi = true })
    end)
    same(function(db) return db:exec(("UPDATE %s SET weight = weight WHERE id < 3"):format(tname)) end)
  end)

  it("gives the same instances, raw rows and values to the finds and aggregates", function()
    local list = same(function(_, M_) return M_:find_all{ where = { id = op.lte(40) }, order = { "id" } } end)
    assert.are.equal(40, #list)
    same(function(_, M_) return M_:find_all{ where = { rare = true }, order = { { "id", "desc" } }, raw = true, limit = 5 } end)
    same(function(_, M_)
      return M_:find_all{ attributes = { "rare", fn.count("id", "n"), fn.sum("price", "total") },
                          group = { "rare" }, order = { "rare" }, raw = true }
    end)
    same(function(_, M_) return M_:find_one{ where = { name = "item7" } } end)
    same(function(_, M_) return M_:find_one{ where = { id = 0 } } end)
    same(function(_, M_) return M_:find_by_pk(10) end)
    same(function(_, M_) return M_:find_by_pk(10, { attributes = { "id", "price" } }) end)
    same(function(_, M_) return M_:count(), M_:count{ where = { rare = false } } end)
    same(function(_, M_) return M_:sum("price"), M_:min("weight"), M_:max("name"), M_:avg("id") end)
  end)

  it("streams the same rows through each, batch after batch", function()
    local function stream(_, M_, opts)
      local out = {}
      for p in M_:each(opts) do out[#out + 1] = plain(p) end
      return out
    end
    local rows = same(function(db, M_) return stream(db, M_, { order = { "id" } }) end)
    assert.are.equal(75, #rows)
    same(function(db, M_) return stream(db, M_, { attributes = { "name", "id" }, raw = true, order = { "id" } }) end)
    same(function(db, M_) return stream(db, M_, { where = { id = op.gt(1000) } }) end)
  end)

  it("runs transactions and savepoints the same way", function()
    for _, pair in ipairs({ { inline, A }, { replay, B } }) do
      local db, M_ = pair[1], pair[2]
      local n = db:transaction(function()
        local p = M_:find_by_pk(1)
        local ok = pcall(db.transaction, db, function()
          db:exec(("UPDATE %s SET weight = 0 WHERE id = 1"):format(tname))
          error("undo")
        end)
        assert.is_false(ok)
        return M_:count{ where = { weight = p.weight } }
      end)
      assert.are.equal(1, n)
      assert.are.equal(0, db:pool_stats().in_use)
    end
  end)

  it("writes no log line for a call refused before it runs, and Executed lines after it", function()
    local db, log = M.connect({ url = url }, { benchmark = true })
    H.raises_kind("usage", "missing bind", function() db:query("SELECT :x AS x", { y = 1 }) end)
    assert.are.same({}, log)
    db:query("SELECT 1 AS one")
    assert.are.equal(2, #log)
    assert.are.equal("Executing (default): SELECT 1 AS one", log[1])
    assert.truthy(log[2]:match("^Executed %(default%): SELECT 1 AS one Elapsed time: %d+%.%d%dms$"))
    db:close()
  end)
end)
