-- T.JSON on every dialect: Lua tables in and out (converted in C), JSON
-- null vs nil vs "null", numbers at the int64 edges, unicode, op.json
-- filters with the path bound (never in the SQL text), and what is
-- refused before any SQL (cycles, functions, mixed keys, depth).
local sqorm = require "sqorm"
local H = require "spec.helper"
local MH = require "spec.model_helper"

local T, op = sqorm.types, sqorm.op

describe("sqorm.json_encode / json_decode", function()
  it("writes objects with sorted keys, arrays, markers and JSON null", function()
    assert.are.equal('{"a":1,"b":[1,2,3],"c":"x","d":null,"e":[],"f":{},"g":1.5}',
      sqorm.json_encode({ g = 1.5, f = {}, e = sqorm.json_array(), d = sqorm.json_null, c = "x", b = { 1, 2, 3 }, a = 1 }))
    assert.are.equal("{}", sqorm.json_encode(sqorm.json_object()))
    assert.are.equal('"caf\195\169"', sqorm.json_encode("caf\195\169"))
    assert.are.equal("1.0", sqorm.json_encode(1.0))
    assert.are.equal("9223372036854775807", sqorm.json_encode(math.maxinteger))
  end)

  it("reads arrays as marked tables, null as sqorm.json_null, numbers exactly", function()
    local v = sqorm.json_decode('{"a":[1,2.0,{"x":null}],"b":"\\u00e9\\ud83c\\udfae","e":[]}')
    assert.are.equal(1, v.a[1])
    assert.are.equal("float", math.type(v.a[2]))
    assert.are.equal(sqorm.json_null, v.a[3].x)
    assert.are.equal("\195\169\240\159\142\174", v.b)
    assert.are.equal("[]", sqorm.json_encode(v.e)) -- an empty array stays an array
    assert.are.equal(math.mininteger, sqorm.json_decode("-9223372036854775808"))
    assert.are.equal("integer", math.type(sqorm.json_decode("9223372036854775807")))
    H.raises_kind("usage", "losing digits", sqorm.json_decode, "9223372036854775809")
    H.raises_kind("usage", "losing digits", sqorm.json_decode, "0.123456789012345678")
    H.raises_kind("usage", "invalid JSON", sqorm.json_decode, "[1,]")
    H.raises_kind("usage", "invalid JSON", sqorm.json_decode, "{'a':1}")
  end)

  it("refuses what has no JSON form, naming the path", function()
    local t = {}
    t.self = t
    H.raises_kind("usage", "$.self: a cycle", sqorm.json_encode, t)
    H.raises_kind("usage", "$.a.b[1]: a function", sqorm.json_encode, { a = { b = { print } } })
    H.raises_kind("usage", "mixes list items and named keys", sqorm.json_encode, { 1, 2, x = 3 })
    H.raises_kind("usage", "holes", sqorm.json_encode, { [1] = 1, [3] = 3 })
    H.raises_kind("usage", "a key of type boolean", sqorm.json_encode, { [true] = 1 })
    H.raises_kind("usage", "not finite", sqorm.json_encode, { x = 0 / 0 })
    H.raises_kind("usage", "UTF-8", sqorm.json_encode, { x = "\255" })
    H.raises_kind("usage", "sqorm.json_null", sqorm.json_encode, { x = sqorm.null })
    H.raises_kind("usage", "metatable", sqorm.json_encode, setmetatable({}, {}))
    local deep = {}
    local cur = deep
    for _ = 1, 150 do cur.x = {}; cur = cur.x end
    H.raises_kind("usage", "nested deeper", sqorm.json_encode, deep)
    -- a shared (not cyclic) table is fine
    local shared = { 1 }
    assert.are.equal('{"a":[1],"b":[1]}', sqorm.json_encode({ a = shared, b = shared }))
  end)
end)

H.each_dialect(describe, function(d)
  local db, log, Item

  before_each(function()
    db, log = MH.connect(d)
    Item = db:define("item", {
      { "name", T.STRING(32) },
      { "stats", T.JSON },
    }, { table_name = H.tname("json_items"), timestamps = false })
    Item:sync()
  end)

  after_each(function() MH.cleanup(db, Item) end)

  local function names(w)
    local out = {}
    for _, r in ipairs(Item:find_all{ where = { stats = w }, order = { { "name", "asc" } } }) do out[#out + 1] = r.name end
    return table.concat(out, ",")
  end

  it("round-trips nested tables, arrays, unicode and int64 edges", function()
    local stats = {
      ui = { theme = "dark", langs = { "fi", "\230\151\165\230\156\172" } },
      hp = 10, ratio = 0.1, big = math.maxinteger, small = math.mininteger, neg = -2.5e-10,
      empty_list = sqorm.json_array(), empty_obj = {}, nested = { { a = { { b = true } } } },
      -- jsonb holds no \u0000 (PostgreSQL refuses it: kind database)
      quote = d.name == "postgres" and "a\"b\\c\nd" or "a\"b\\c\nd\0e",
    }
    local it = Item:create{ name = "a", stats = stats }
    local back = Item:find_by_pk(it.id).stats
    assert.are.equal(sqorm.json_encode(stats), sqorm.json_encode(back))
    assert.are.equal(math.maxinteger, back.big)
    assert.are.equal(math.mininteger, back.small)
    assert.are.equal("integer", math.type(back.hp))
    assert.are.equal("float", math.type(back.ratio))
    assert.are.equal(0.1, back.ratio)
    assert.are.equal("\230\151\165\230\156\172", back.ui.langs[2])
    assert.are.equal(stats.quote, back.quote)
    -- scalars are JSON values too
    local s = Item:create{ name = "s", stats = "just text" }
    assert.are.equal("just text", Item:find_by_pk(s.id).stats)
    local n = Item:create{ name = "n", stats = 42 }
    assert.are.equal(42, Item:find_by_pk(n.id).stats)
  end)

  it("keeps JSON null, SQL NULL (nil) and the string \"null\" apart", function()
    local a = Item:create{ name = "a", stats = sqorm.json_null }
    local b = Item:create{ name = "b" }
    local c = Item:create{ name = "c", stats = "null" }
    local e = Item:create{ name = "e", stats = { v = sqorm.json_null } }
    assert.are.equal(sqorm.json_null, Item:find_by_pk(a.id).stats)
    assert.is_nil(Item:find_by_pk(b.id).stats)
    assert.are.equal("null", Item:find_by_pk(c.id).stats)
    assert.are.equal(sqorm.json_null, Item:find_by_pk(e.id).stats.v)
    -- in filters: sequelize #5760
    Item:create{ name = "f", stats = { v = "null" } }
    Item:create{ name = "g", stats = { w = 1 } }
    assert.are.equal("e", names(op.json("v", sqorm.json_null)))
    assert.are.equal("f", names(op.json("v", "null")))
    -- no value at the path: JSON null there, the key missing, or no JSON at all
    assert.are.equal("a,b,c,e,g", names(op.json("v", sqorm.null)))
    assert.are.equal("f", names(op.json("v", op.not_null())))
  end)

  it("saves a table changed in place when it is assigned again", function()
    local it = Item:create{ name = "a", stats = { hp = 1 } }
    it.stats.hp = 2
    it.stats = it.stats
    it:save()
    assert.are.equal(2, Item:find_by_pk(it.id).stats.hp)
  end)

  it("filters with op.json on strings, numbers, booleans, lists and positions", function()
    Item:create{ name = "a", stats = { ui = { theme = "dark" }, hp = 10, tags = { "x", "y" }, flag = true } }
    Item:create{ name = "b", stats = { ui = { theme = "light" }, hp = 20, flag = false } }
    Item:create{ name = "c", stats = { hp = 2.5, ["we.ird"] = "k", n = "10" } }
    Item:create{ name = "d" }
    assert.are.equal("a", names(op.json("ui.theme", "dark")))
    assert.are.equal("a", names(op.json({ "ui", "theme" }, "dark")))
    assert.are.equal("a,b", names(op.json("hp", op.gt(5))))
    assert.are.equal("c", names(op.json("hp", op.lt(3))))
    assert.are.equal("a,c", names(op.json("hp", op.between(1, 10))))
    assert.are.equal("b,c", names(op.json("hp", op.in_(2.5, 20))))
    assert.are.equal("a", names(op.json("flag", true)))
    assert.are.equal("b", names(op.json("flag", false)))
    assert.are.equal("a", names(op.json({ "tags", 2 }, "y")))
    assert.are.equal("c", names(op.json({ "we.ird" }, "k")))
    assert.are.equal("a", names(op.json("ui.theme", op.like("%ar%"))))
    assert.are.equal("b", names(op.json("ui.theme", op.ne("dark"))))
    -- types don't mix: the string "10" is no number 10
    assert.are.equal("a", names(op.json("hp", 10)))
    assert.are.equal("c", names(op.json("n", "10")))
    assert.are.equal("", names(op.json("n", 10)))
    -- combined with other conditions
    assert.are.equal("b", #Item:find_all{ where = { name = "b", stats = op.json("hp", 20) } } == 1 and "b" or "")
  end)

  it("binds hostile paths and values, never splicing them into the SQL", function()
    Item:create{ name = "a", stats = { x = 1 } }
    local hostile = "x') OR 1=1; DROP TABLE users; --"
    local from = #log + 1
    assert.are.equal("", names(op.json(hostile, 1)))
    assert.are.equal("", names(op.json("x", hostile)))
    assert.are.equal("", names(op.json({ "a'b", "c`d", "e;f" }, 1)))
    for _, s in ipairs(MH.statements(log, from)) do
      assert.is_nil(s:find("DROP TABLE", 1, true), s)
      assert.is_nil(s:find("a'b", 1, true), s)
    end
    -- a key holding a quote: PostgreSQL addresses it, the others refuse it before SQL
    if d.name == "postgres" then
      Item:create{ name = "q", stats = { ['q"k'] = 1 } }
      assert.are.equal("q", names(op.json({ 'q"k' }, 1)))
    else
      from = #log + 1
      H.raises_kind("usage", "can't address", names, op.json({ 'q"k' }, 1))
      assert.are.same({}, MH.statements(log, from))
    end
  end)

  it("refuses bad values and bad op.json uses before any SQL", function()
    local from = #log + 1
    local t = {}
    t.self = t
    local err = H.raises_kind("validation", "$.self: a cycle", Item.create, Item, { name = "x", stats = t })
    assert.is_truthy(err.fields.stats)
    H.raises_kind("validation", "a function", Item.create, Item, { name = "x", stats = { f = print } })
    local deep = {}
    local cur = deep
    for _ = 1, 120 do cur[1] = {}; cur = cur[1] end
    H.raises_kind("validation", "nested deeper", Item.create, Item, { name = "x", stats = deep })
    H.raises_kind("usage", "needs a JSON column", Item.find_all, Item, { where = { name = op.json("a", 1) } })
    H.raises_kind("usage", "mix JSON types", names, op.json("hp", op.in_(1, "a")))
    H.raises_kind("usage", "empty key", names, op.json("a..b", 1))
    assert.has_error(function() op.json("a", {}) end)
    assert.has_error(function() op.json("a", op.or_{ { name = "x" } }) end)
    assert.are.same({}, MH.statements(log, from))
  end)

  it("sync alter leaves a JSON column alone, twice", function()
    Item:sync{ alter = true }
    local from = #log + 1
    Item:sync{ alter = true }
    for _, s in ipairs(MH.statements(log, from)) do
      assert.is_nil(s:find("ALTER", 1, true), s)
    end
  end)
end)
