-- bulk_create options: ignore_duplicates, update_on_duplicate with
-- conflict, returning = false. One statement per batch on every dialect;
-- instances only for the rows the server returned (never a guessed id).
local sqorm = require "sqorm"
local H = require "spec.helper"
local M = require "spec.model_helper"

H.each_dialect(describe, function(d)
  local db, log, P

  before_each(function()
    db, log = M.connect(d)
    P = M.players(db)
    P:sync { force = true }
    P:bulk_create { { name = "a", coins = 1, goods = 1 }, { name = "b", coins = 2, goods = 2 } }
    M.clear(log)
  end)

  after_each(function() M.cleanup(db, P) end)

  -- The INSERT statements logged since the log was cleared.
  local function inserts()
    local n = 0
    for _, s in ipairs(M.statements(log)) do
      if s:match("^INSERT") then n = n + 1 end
    end
    return n
  end

  local function by_name(name) return P:find_one { where = { name = name } } end

  it("returning = false returns the inserted count, one statement per batch", function()
    local recs = {}
    for i = 1, 5 do recs[i] = { name = "n" .. i, coins = i } end
    local n = P:bulk_create(recs, { returning = false, batch_size = 2 })
    assert.are.equal(5, n)
    assert.are.equal("integer", math.type(n))
    assert.are.equal(3, inserts())
    assert.are.equal(7, P:count())
    assert.are.equal(0, P:bulk_create({}, { returning = false }))
  end)

  it("ignore_duplicates skips existing rows, one statement per batch", function()
    local recs = { { name = "a", coins = 50 }, { name = "c", coins = 3 }, { name = "b", coins = 60 },
                   { name = "d", coins = 4 }, { name = "e", coins = 5 } }
    local list = P:bulk_create(recs, { ignore_duplicates = true, batch_size = 2 })
    assert.are.equal(3, inserts())
    -- only the inserted rows come back, each with the id of its row
    local names = {}
    for _, p in ipairs(list) do
      names[#names + 1] = p.name
      assert.are.equal(by_name(p.name).id, p.id)
      assert.is_false(p:changed())
    end
    table.sort(names)
    assert.are.same({ "c", "d", "e" }, names)
    assert.are.equal(1, by_name("a").coins)
    assert.are.equal(2, by_name("b").coins)
    assert.are.equal(5, P:count())
    -- the count form
    M.clear(log)
    local n = P:bulk_create({ { name = "a" }, { name = "f" }, { name = "c" } },
      { ignore_duplicates = true, returning = false, batch_size = 2 })
    assert.are.equal(1, n)
    assert.are.equal(2, inserts())
    if d.name ~= "mysql" then
      -- a conflict target on PostgreSQL and SQLite
      assert.are.equal(1, P:bulk_create({ { name = "a" }, { name = "g" } },
        { ignore_duplicates = true, conflict = { "name" }, returning = false }))
    end
  end)

  it("update_on_duplicate updates only the listed columns, one statement per batch", function()
    local recs = { { name = "a", coins = 10, goods = 10 }, { name = "c", coins = 3, goods = 3 },
                   { name = "b", coins = 20, goods = 20 } }
    local opts = { update_on_duplicate = { "coins" }, conflict = { "name" }, batch_size = 2 }
    if d.name == "mysql" then
      opts.returning = false
      local n = P:bulk_create(recs, opts)
      -- MySQL counts an updated row twice
      assert.are.equal(5, n)
    else
      local list = P:bulk_create(recs, opts)
      assert.are.equal(3, #list)
      for _, p in ipairs(list) do assert.are.equal(by_name(p.name).id, p.id) end
    end
    assert.are.equal(2, inserts())
    assert.are.equal(10, by_name("a").coins)
    assert.are.equal(1, by_name("a").goods)
    assert.are.equal(20, by_name("b").coins)
    assert.are.equal(2, by_name("b").goods)
    assert.are.equal(3, by_name("c").goods)
    if d.name ~= "mysql" then
      M.clear(log)
      local n = P:bulk_create({ { name = "a", coins = 11 }, { name = "h", coins = 1 } },
        { update_on_duplicate = { "coins" }, conflict = { "name" }, returning = false })
      assert.are.equal(2, n) -- inserted plus updated
      assert.are.equal(1, inserts())
      assert.are.equal(11, by_name("a").coins)
    end
  end)

  it("a batch statement cached for one set of options is not reused for another", function()
    local function run(opts, names)
      M.clear(log)
      local recs = {}
      for i, n in ipairs(names) do recs[i] = { name = n, coins = i } end
      opts.batch_size = 2
      local r = P:bulk_create(recs, opts)
      return r, M.statements(log)
    end
    local _, st = run({}, { "p1", "p2" })
    assert.is_nil(st[1]:find("CONFLICT", 1, true) or st[1]:find("IGNORE", 1, true))
    local n
    n, st = run({ ignore_duplicates = true, returning = false }, { "p1", "p3" })
    assert.are.equal(1, n)
    assert.truthy(st[1]:find("CONFLICT", 1, true) or st[1]:find("IGNORE", 1, true))
    _, st = run({ update_on_duplicate = { "coins" }, conflict = { "name" }, returning = false }, { "p1", "p4" })
    assert.truthy(st[1]:find("UPDATE", 1, true))
    assert.are.equal(1, by_name("p1").coins)
    _, st = run({ update_on_duplicate = { "goods" }, conflict = { "name" }, returning = false }, { "p1", "p5" })
    assert.truthy(st[1]:find("goods", 1, true))
    n, st = run({ returning = false }, { "p6", "p7" })
    assert.are.equal(2, n)
    assert.is_nil(st[1]:find("CONFLICT", 1, true) or st[1]:find("IGNORE", 1, true))
  end)

  it("bad options are usage errors with nothing sent", function()
    local function bad(pattern, opts, recs)
      M.clear(log)
      local _, st = M.fails(log, "usage", pattern, P.bulk_create, P, recs or { { name = "z", coins = 1 } }, opts)
      assert.are.same({}, st)
    end
    bad("not both", { ignore_duplicates = true, update_on_duplicate = { "coins" }, conflict = { "name" } })
    bad("conflict goes with", { conflict = { "name" } })
    bad("ignore_duplicates must be a boolean", { ignore_duplicates = 1 })
    bad("returning must be a boolean", { returning = "no" })
    bad("has no column 'nope'", { update_on_duplicate = { "nope" }, conflict = { "name" }, returning = false })
    bad("non-empty list", { update_on_duplicate = {}, conflict = { "name" }, returning = false })
    bad("a unique key", { update_on_duplicate = { "coins" }, conflict = { "coins" }, returning = false })
    bad("names column 'coins' twice", { update_on_duplicate = { "coins", "coins" }, conflict = { "name" },
                                         returning = false })
    bad("not given by any record", { update_on_duplicate = { "name" }, conflict = { "id" }, returning = false },
      { { coins = 1 } })
    bad("unknown option", { ignore_duplicate = true })
    if d.name == "mysql" then
      bad("pass returning = false", { update_on_duplicate = { "coins" }, conflict = { "name" } })
    else
      bad("needs conflict", { update_on_duplicate = { "coins" } })
    end
    assert.are.equal(2, P:count())
  end)

  it("two records with one conflict key: applied in order, or refused by PostgreSQL within one batch", function()
    local recs = { { name = "a", coins = 10 }, { name = "a", coins = 20 }, { name = "f", coins = 6 } }
    local opts = { update_on_duplicate = { "coins" }, conflict = { "name" }, returning = false }
    if d.name == "postgres" then
      -- both in the second batch: the server refuses that statement, and
      -- the call writes nothing, the first batch included
      local four = { { name = "f", coins = 6 }, { name = "h", coins = 8 }, recs[1], recs[2] }
      local err = H.raises_kind("database", "cannot affect row a second time", P.bulk_create, P, four,
        { update_on_duplicate = { "coins" }, conflict = { "name" }, returning = false, batch_size = 2 })
      assert.are.equal("21000", err.sqlstate)
      assert.are.equal(1, by_name("a").coins)
      assert.is_nil(by_name("f"))
      assert.is_nil(by_name("h"))
      -- in separate batches they apply in order
      opts.batch_size = 1
    end
    P:bulk_create(recs, opts)
    assert.are.equal(20, by_name("a").coins) -- the last record's values stay
    assert.are.equal(6, by_name("f").coins)
    -- ignore_duplicates keeps the first of them on every dialect
    P:bulk_create({ { name = "g", coins = 7 }, { name = "g", coins = 8 } },
      { ignore_duplicates = true, conflict = { "name" }, returning = false })
    assert.are.equal(1, P:count { where = { name = "g" } })
    assert.are.equal(7, by_name("g").coins)
  end)
end)
