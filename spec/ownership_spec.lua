-- An operation owns the values it sends before any user Lua runs
-- (validators, the logging function, a binds table's __index,
-- finalisers): it never holds a pointer into a Lua string that Lua code
-- could free. These cases read freed memory before the fix (run them
-- under ASan: build-asan, see scripts/run-tests.sh); here they must also
-- store exactly the right values.
--
-- Validators may normalise: a validator gets (value, instance) and may
-- assign to the instance; what is written is the instance as the
-- validators left it, checked again by the built-in rules.
local sqorm = require "sqorm"
local H = require "spec.helper"
local M = require "spec.model_helper"
local T = sqorm.types

-- A fresh long string (never interned, so only its holders keep it).
local serial = 0
local function fresh(prefix)
  serial = serial + 1
  return prefix .. ("-%d-"):format(serial) .. ("z"):rep(60)
end

H.each_dialect(describe, function(d)
  local db, log, U

  before_each(function()
    db, log = M.connect(d)
    U = db:define("user", {
      { "id", T.INTEGER, primary_key = true, auto_increment = true },
      { "email", T.STRING(200), validate = {
        lower = function(v, inst)
          if inst then inst.email = v:lower() end -- normalise
          collectgarbage()
          collectgarbage()
          return true
        end,
      } },
      { "name", T.STRING(200) },
    }, { table_name = H.tname("users"), timestamps = false })
    U:sync{ force = true }
  end)

  after_each(function()
    M.cleanup(db, U)
  end)

  it("a validator that normalises the value (and collects garbage): the normalised value is saved", function()
    local p = U:build{}
    local raw = fresh("MiXeD@Example.COM")
    p.email = raw:sub(1) -- a copy: the instance holds the only reference
    p.name = fresh("Name")
    p:save()
    assert.are.equal(raw:lower(), p.email)
    assert.are.equal(raw:lower(), U:find_by_pk(p.id).email)
    -- an update of a loaded instance
    local q = U:find_by_pk(p.id)
    local raw2 = fresh("Second@EXAMPLE.com")
    q.email = raw2:sub(1)
    q:save()
    assert.are.equal(raw2:lower(), U:find_by_pk(p.id).email)
    assert.is_false(q:changed())
    -- create and upsert
    local r = U:create{ email = fresh("Third@X.COM") }
    assert.are.equal(r.email, U:find_by_pk(r.id).email)
    assert.are.equal(r.email:lower(), r.email)
    local up = U:upsert{ id = r.id, email = fresh("Fourth@X.COM") }
    if up ~= true then assert.are.equal(up.email:lower(), U:find_by_pk(r.id).email) end
    assert.are.equal(U:find_by_pk(r.id).email:lower(), U:find_by_pk(r.id).email)
  end)

  it("bulk_create stores what the validators left", function()
    local list = U:bulk_create{ { email = fresh("A@B.C") }, { email = fresh("D@E.F"), name = fresh("n") } }
    for _, p in ipairs(list) do
      assert.are.equal(p.email:lower(), p.email)
      assert.are.equal(p.email, U:find_by_pk(p.id).email)
    end
  end)

  it("a normalised value is checked again by the built-in rules", function()
    local V = db:define("shouty", {
      { "id", T.INTEGER, primary_key = true, auto_increment = true },
      { "word", T.STRING(5), validate = { grow = function(v, inst) inst.word = v .. v return true end } },
    }, { table_name = H.tname("shouty"), timestamps = false })
    V:sync{ force = true }
    local e = H.raises_kind("validation", "word", function() V:create{ word = "abcd" } end)
    assert.matches("at most 5", e.fields.word)
    assert.are.equal(0, V:count())
    V:drop()
  end)

  it("a validator that frees another field's string: the stored row is intact", function()
    local W = db:define("pair", {
      { "id", T.INTEGER, primary_key = true, auto_increment = true },
      { "a", T.STRING(200) },
      { "b", T.STRING(200), validate = { churn = function(_, inst)
        inst.a = nil -- drops the instance's reference to a's string
        collectgarbage()
        collectgarbage()
        inst.a = "restored-" .. ("q"):rep(50)
        return true
      end } },
    }, { table_name = H.tname("pairs"), timestamps = false })
    W:sync{ force = true }
    local p = W:build{}
    p.a = fresh("first")
    p.b = fresh("second")
    p:save()
    local row = W:find_by_pk(p.id)
    assert.are.equal("restored-" .. ("q"):rep(50), row.a)
    assert.are.equal(p.b, row.b)
    W:drop()
  end)

  it("a logging function that collects garbage and evicts cached statements", function()
    -- SQLite in a file: the logger's own statements need a second connection
    local tmp = d.name == "sqlite" and os.tmpname() or nil
    local dd = tmp and { name = d.name, url = "sqlite:" .. tmp } or d
    local hook -- runs once, from the next logged statement
    local db2 = M.connect(dd, { logging = function()
      local h = hook
      hook = nil
      if h then
        collectgarbage()
        h()
        collectgarbage()
      end
    end })
    local function model()
      local Q = db2:define("player", {
        { "id", T.INTEGER, primary_key = true, auto_increment = true },
        { "name", T.STRING(100) },
        { "coins", T.INTEGER, default = 0 },
        { "goods", T.INTEGER, default = 0 },
      }, { table_name = H.tname("players"), timestamps = false })
      Q:sync{ force = true }
      return Q
    end
    -- bulk_create batches of sizes from..to: a cached statement each
    local function bulks(Q, from, to)
      for n = from, to do
        local list = {}
        for i = 1, n do list[i] = { name = fresh("bulk"), goods = i } end
        Q:bulk_create(list)
      end
    end

    -- the INSERT of create: its cached statement is evicted by the logger
    local Q1 = model()
    Q1:create{ name = fresh("a"), goods = 1 }
    local name = fresh("b")
    hook = function()
      bulks(Q1, 1, 7)
      Q1:create{ id = 424242, name = fresh("other shape") }
    end
    local b = Q1:create{ name = name, goods = 1 }
    assert.are.equal(name, Q1:find_by_pk(b.id).name)
    Q1:drop()

    -- the UPDATE of save
    local Q2 = model()
    local a = Q2:create{ name = fresh("a"), goods = 1 }
    a.coins = 5
    a:save()
    a.coins = 6
    hook = function()
      bulks(Q2, 1, 6)
      local x = Q2:create{ name = fresh("x") }
      x.goods = 9
      x:save()
    end
    a:save()
    assert.are.equal(6, Q2:find_by_pk(a.id).coins)
    Q2:drop()

    -- a batch of bulk_create
    local Q3 = model()
    bulks(Q3, 2, 2)
    hook = function() bulks(Q3, 3, 12) end
    local rows = Q3:bulk_create{ { name = fresh("c"), goods = 1 }, { name = fresh("d"), goods = 1 } }
    assert.are.equal(rows[2].name, Q3:find_by_pk(rows[2].id).name)
    Q3:drop()

    db2:close()
    if tmp then os.remove(tmp) end
  end)

  it("a logging function that drops an instance's string and collects garbage", function()
    local victim
    local db2 = M.connect(d, { logging = function()
      if victim then
        local v = victim
        victim = nil
        rawset(v, 3, nil) -- slot 3: name; the instance's only reference
        collectgarbage()
        collectgarbage()
      end
    end })
    local V = db2:define("user", {
      { "id", T.INTEGER, primary_key = true, auto_increment = true },
      { "email", T.STRING(200) },
      { "name", T.STRING(200) },
    }, { table_name = H.tname("users"), timestamps = false })
    V:sync{ force = true }
    local p = V:create{ email = "x@y" }
    local name = fresh("logged")
    p.name = name:sub(1) -- a copy: the instance holds the only reference
    victim = p
    p:save()
    assert.are.equal(name, V:find_by_pk(p.id).name)
    V:drop()
    db2:close()
  end)

  it("a binds table whose __index makes fresh strings and collects garbage", function()
    local n = 0
    local binds = setmetatable({}, { __index = function(_, k)
      n = n + 1
      collectgarbage()
      collectgarbage()
      return k .. "-" .. n .. "-" .. ("y"):rep(60)
    end })
    local rows = db:query("SELECT :a AS a, :b AS b, :c AS c", binds)
    assert.are.equal("a-1-" .. ("y"):rep(60), rows[1].a)
    assert.are.equal("b-2-" .. ("y"):rep(60), rows[1].b)
    assert.are.equal("c-3-" .. ("y"):rep(60), rows[1].c)
    -- many binds: anchored in a table past the stack's share
    local sql, want = { "SELECT " }, {}
    for i = 1, 300 do
      sql[#sql + 1] = (i > 1 and ", " or "") .. ":k" .. i .. " AS c" .. i
      want[i] = "k" .. i
    end
    local many = setmetatable({}, { __index = function(_, k)
      if k == "k150" then collectgarbage() end
      return k .. ("w"):rep(50)
    end })
    local r = db:query(table.concat(sql), many)[1]
    assert.are.equal("k1" .. ("w"):rep(50), r.c1)
    assert.are.equal("k300" .. ("w"):rep(50), r.c300)
  end)
end)
