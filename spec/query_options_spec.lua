-- db:query(sql, binds, { plain = true | scalar = true | model = M }) on
-- every dialect: the first row, the first value, instances; strict and
-- exclusive options (usage, nothing sent).
local sqorm = require "sqorm"
local H = require "spec.helper"
local MH = require "spec.model_helper"

H.each_dialect(describe, function(d)
  local db, log, P, t

  before_each(function()
    db, log = MH.connect(d)
    P = MH.players(db)
    P:sync()
    t = P.table_name
    P:bulk_create({ { name = "ann", coins = 10 }, { name = "bob", coins = 20 }, { name = "cy", coins = 30 } })
  end)

  after_each(function() MH.cleanup(db, P) end)

  local function sql(s) return (s:gsub("%f[%w]T%f[%W]", t)) end

  it("plain = true returns the first row, or nil", function()
    local row = db:query(sql("SELECT name, coins FROM T ORDER BY coins DESC"), nil, { plain = true })
    assert.are.same({ name = "cy", coins = 30 }, row)
    assert.is_nil(db:query(sql("SELECT name FROM T WHERE coins > ?"), { 1000 }, { plain = true }))
    -- plain = false is the default shape
    assert.are.equal(3, #db:query(sql("SELECT name FROM T"), nil, { plain = false }))
  end)

  it("scalar = true returns the first value of the first row, or nil", function()
    assert.are.equal(3, db:query(sql("SELECT count(*) AS n, 99 AS x FROM T"), nil, { scalar = true }))
    assert.are.equal("bob", db:query(sql("SELECT name FROM T WHERE coins = ?"), { 20 }, { scalar = true }))
    assert.is_nil(db:query(sql("SELECT name FROM T WHERE coins > ?"), { 1000 }, { scalar = true }))
    -- a NULL first value is nil too
    assert.is_nil(db:query("SELECT NULL AS v", nil, { scalar = true }))
  end)

  it("model = M returns instances (extras kept by name) that can be saved", function()
    local list = db:query(sql("SELECT id, name, coins, coins * 2 AS doubled FROM T ORDER BY coins"), nil, { model = P })
    assert.are.equal(3, #list)
    assert.are.equal("ann", list[1].name)
    assert.are.equal(20, list[1].doubled)
    assert.are.equal("integer", math.type(list[1].coins))
    list[1].coins = 11
    list[1]:save()
    assert.are.equal(11, P:find_by_pk(list[1].id).coins)
    assert.are.same({}, db:query(sql("SELECT * FROM T WHERE coins > 1000"), nil, { model = P }))
  end)

  it("refuses unknown, badly typed and conflicting options with nothing sent", function()
    local from = #log + 1
    H.raises_kind("usage", "unknown option 'plan'", db.query, db, "SELECT 1", nil, { plan = true })
    H.raises_kind("usage", "exclude each other", db.query, db, "SELECT 1", nil, { plain = true, scalar = true })
    H.raises_kind("usage", "exclude each other", db.query, db, "SELECT 1", nil, { model = P, plain = true })
    H.raises_kind("usage", "'plain' must be a boolean", db.query, db, "SELECT 1", nil, { plain = 1 })
    H.raises_kind("usage", "'model' must be a model", db.query, db, "SELECT 1", nil, { model = {} })
    H.raises_kind("usage", "unknown option 'scalar' (plain, scalar and model shape the rows of db:query)", db.exec, db,
      "SELECT 1", nil, { scalar = true })
    H.raises_kind("usage", "multi", db.query, db, "SELECT 1; SELECT 2", nil, { model = P, multi = true })
    local other = sqorm.connect("sqlite::memory:")
    local O = MH.players(other)
    H.raises_kind("usage", "another db", db.query, db, "SELECT 1", nil, { model = O })
    other:close()
    assert.are.same({}, MH.statements(log, from))
  end)

  it("plain and scalar run inside a transaction on its connection", function()
    db:transaction(function()
      db:exec(sql("UPDATE T SET coins = 99 WHERE name = ?"), { "ann" })
      assert.are.equal(99, db:query(sql("SELECT coins FROM T WHERE name = ?"), { "ann" }, { scalar = true }))
      assert.are.equal("ann", db:query(sql("SELECT name FROM T WHERE coins = 99"), nil, { plain = true }).name)
    end)
  end)
end)
