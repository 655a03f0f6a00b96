-- DECIMAL is exact on every dialect, SQLite included: values keep every
-- digit, are stored at the column's scale, and compare, order, sum,
-- average, min/max and increment as numbers, never through a double.
local sqorm = require "sqorm"
local H = require "spec.helper"

local T, op = sqorm.types, sqorm.op

H.each_dialect(describe, function(d)
  local db, Item, tname

  before_each(function()
    db = sqorm.connect(d.url)
    tname = H.tname("items")
    Item = db:define("item", {
      { "id", T.INTEGER, primary_key = true, auto_increment = true },
      { "price", T.DECIMAL(30, 2) },
      { "tag", T.STRING(16) },
    }, { table_name = tname, timestamps = false })
    Item:sync { force = true }
  end)

  after_each(function()
    pcall(Item.drop, Item)
    db:close()
  end)

  local function price_of(id) return Item:find_by_pk(id).price end

  -- the prices of the rows a query returns, in its order
  local function prices(opts)
    local out = {}
    for i, p in ipairs(Item:find_all(opts)) do out[i] = p.price end
    return out
  end

  local function fill(list)
    for _, v in ipairs(list) do Item:create { price = v } end
  end

  it("round-trips values of 18 and more digits exactly", function()
    local big = {
      "123456789012345678.91",
      "-123456789012345678.91",
      "9999999999999999999999999999.99",
      "0.01",
    }
    for _, v in ipairs(big) do
      local p = Item:create { price = v }
      assert.are.equal(v, price_of(p.id))
    end
    -- and they are told apart where a double would make them equal
    assert.are.same({ "123456789012345678.91" },
      prices { where = { price = "123456789012345678.91" } })
    assert.are.equal(0, Item:count { where = { price = "123456789012345678.90" } })
  end)

  it("stores values at the column's scale", function()
    local a = Item:create { price = "1.5" }
    local b = Item:create { price = 12 }     -- an integer: exact
    local c = Item:create { price = 0.1 }    -- a float: its shortest exact text
    local e = Item:create { price = "-0.00" }
    local f = Item:create { price = "007.50" }
    assert.are.equal("1.50", price_of(a.id))
    assert.are.equal("12.00", price_of(b.id))
    assert.are.equal("0.10", price_of(c.id))
    assert.are.equal("0.00", price_of(e.id))
    assert.are.equal("7.50", price_of(f.id))
    -- so the same number is the same value: one group, one match
    assert.are.equal(2, Item:count { where = { price = "7.5" } } + Item:count { where = { price = 1.5 } })
  end)

  it("refuses values that would lose digits", function()
    for _, v in ipairs { 1 / 3, "1.234", "12345678901234567890123456789" } do
      local err = H.raises(function() Item:create { price = v } end)
      assert(err.kind == "validation" or err.kind == "usage", tostring(err))
      assert.is_truthy(tostring(err.message):find("does not fit DECIMAL(30,2)", 1, true), err.message)
    end
    assert.are.equal(0, Item:count())
  end)

  it("sums exactly", function()
    fill { "0.10", "0.10", "0.10", "0.10", "0.10", "0.10", "0.10", "0.10", "0.10", "0.10" }
    assert.are.equal("1.00", Item:sum("price"))
    Item:create { price = "123456789012345678.91" }
    Item:create { price = "-0.01" }
    assert.are.equal("123456789012345679.90", Item:sum("price"))
    assert.are.equal("0", Item:sum("price", { where = { tag = "none" } }))
    local row = Item:find_all { attributes = { sqorm.fn.sum("price", "total") }, raw = true }[1]
    assert.are.equal("123456789012345679.90", row.total)
  end)

  it("averages, and takes min and max, in numeric order", function()
    fill { "9.5", "10.25", "-3.75", "100" }
    assert.are.equal(29.0, Item:avg("price"))
    assert.are.equal("-3.75", Item:min("price"))
    assert.are.equal("100.00", Item:max("price")) -- text order would say "9.50"
    assert.are.equal("9.50", Item:max("price", { where = { price = op.lt(10) } }))
    Item:destroy { all = true }
    fill { "1.00", "2.00", "2.00" }
    -- the mean is rounded before it becomes a float: to the column's scale
    -- + 4 decimals on MySQL and SQLite, to 16 or more digits on PostgreSQL
    assert.is_true(math.abs(Item:avg("price") - 5 / 3) < 1e-6)
    assert.is_nil(Item:avg("price", { where = { tag = "none" } }))
  end)

  it("orders numerically, negatives included", function()
    fill { "10.25", "-10", "9.5", "-9.5", "0", "100" }
    assert.are.same({ "-10.00", "-9.50", "0.00", "9.50", "10.25", "100.00" }, prices { order = { { "price", "asc" } } })
    assert.are.same({ "100.00", "10.25", "9.50" }, prices { order = { { "price", "desc" } }, limit = 3 })
  end)

  it("compares numerically in where", function()
    fill { "10.25", "-10", "9.5", "-9.5", "0", "100" }
    local order = { { "price", "asc" } }
    assert.are.same({ "10.25", "100.00" }, prices { where = { price = op.gt(9.6) }, order = order })
    assert.are.same({ "9.50", "10.25", "100.00" }, prices { where = { price = op.gte("9.50") }, order = order })
    assert.are.same({ "-10.00", "-9.50" }, prices { where = { price = op.lt(0) }, order = order })
    assert.are.same({ "9.50", "10.25" }, prices { where = { price = op.between(9, 11) }, order = order })
    assert.are.same({ "-10.00", "-9.50", "0.00", "100.00" },
      prices { where = { price = op.not_between("9", "11") }, order = order })
    assert.are.same({ "-9.50", "100.00" }, prices { where = { price = { "-9.5", 100 } }, order = order })
    assert.are.same({ "-10.00", "0.00", "9.50", "10.25" },
      prices { where = { price = op.not_in { "-9.5", "100.0" } }, order = order })
    assert.are.same({ "10.25" }, prices { where = { price = "10.250" } })
    assert.are.equal(5, Item:count { where = { price = op.ne("10.2500") } })
  end)

  it("groups equal values together", function()
    fill { "1.5", "1.50", "2", "2.00", "2.0" }
    local groups = Item:find_all { attributes = { "price", sqorm.fn.count("id", "n") }, group = { "price" },
      order = { { "price", "asc" } }, raw = true }
    assert.are.equal(2, #groups)
    assert.are.same({ "1.50", 2 }, { groups[1].price, groups[1].n })
    assert.are.same({ "2.00", 3 }, { groups[2].price, groups[2].n })
  end)

  it("increments exactly", function()
    local p = Item:create { price = "123456789012345678.91" }
    Item:increment({ price = 0.09 }, { where = { id = p.id } })
    assert.are.equal("123456789012345679.00", price_of(p.id))
    p:reload()
    p:increment("price", -1)
    assert.are.equal("123456789012345678.00", price_of(p.id))
  end)

  if d.name == "sqlite" then
    it("stores plain text that other tools read without sqorm", function()
      Item:create { price = "123456789012345678.91" }
      local r = db:query(("SELECT price, typeof(price) AS ty FROM %s"):format(tname))[1]
      assert.are.equal("text", r.ty)
      assert.are.equal("123456789012345678.91", r.price)
      -- nothing sqorm registers is needed to read, sort or index the column
      assert.are.same({ "123456789012345678.91" },
        { db:query(("SELECT price FROM %s ORDER BY price"):format(tname))[1].price })
    end)

    it("declares the column with TEXT affinity that sync still reads as DECIMAL(30,2)", function()
      local function decl()
        return db:query(("SELECT type FROM pragma_table_info('%s') WHERE name = 'price'"):format(tname))[1].type
      end
      assert.are.equal("DECIMAL TEXT(30,2)", decl())
      Item:create { price = "1.5" }
      local schema = db:query(("SELECT sql FROM sqlite_master WHERE name = '%s'"):format(tname))[1].sql
      Item:sync { alter = true } -- nothing to change: no rebuild
      assert.are.equal(schema, db:query(("SELECT sql FROM sqlite_master WHERE name = '%s'"):format(tname))[1].sql)
      assert.are.equal("DECIMAL TEXT(30,2)", decl())
      assert.are.equal("1.50", Item:find_one().price)
    end)

    it("offers the exact collation and functions to raw SQL", function()
      local r = db:query([[SELECT sqorm_dsum(v) AS s, sqorm_davg(v) AS a, max(v COLLATE sqorm_decimal) AS mx,
        sqorm_dadd('0.1', '0.2') AS plus, sqorm_dnorm('1.5', 10, 2) AS norm
        FROM (SELECT '9.5' AS v UNION ALL SELECT '10.25' UNION ALL SELECT NULL)]])[1]
      assert.are.same({ s = "19.75", a = "9.875000", mx = "10.25", plus = "0.3", norm = "1.50" }, r)
      H.raises_kind("database", "is not a decimal number", function() db:query("SELECT sqorm_dsum('abc') AS s") end)
      H.raises_kind("database", "does not fit DECIMAL(10,2)", function() db:query("SELECT sqorm_dnorm('1.234', 10, 2) AS s") end)
    end)
  end
end)
