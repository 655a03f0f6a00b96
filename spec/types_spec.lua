-- Value round trips at the edges, through binds and back, on every dialect.
local sqorm = require "sqorm"
local H = require "spec.helper"

H.each_dialect(describe, function(d)
  local db, t

  before_each(function()
    db = sqorm.connect(d.url)
    t = H.tname("types")
    local bigint = "BIGINT"
    local dbl = d.name == "mysql" and "DOUBLE" or "DOUBLE PRECISION"
    db:exec(("CREATE TABLE %s (k INTEGER PRIMARY KEY, i %s, f %s, s %s, b %s, dc DECIMAL(30,10), dt %s, da DATE)")
      :format(t, bigint, dbl, H.text_type(d.name), H.blob_type(d.name),
        d.name == "postgres" and "TIMESTAMP" or "DATETIME"))
  end)

  after_each(function()
    pcall(db.exec, db, "DROP TABLE " .. t)
    db:close()
  end)

  local function roundtrip(col, v)
    db:exec(("DELETE FROM %s"):format(t))
    db:exec(("INSERT INTO %s (k, %s) VALUES (1, ?)"):format(t, col), { v })
    return db:query(("SELECT %s FROM %s WHERE k = 1"):format(col, t))[1][col]
  end

  it("keeps int64 min and max exact", function()
    assert.are.equal(math.maxinteger, roundtrip("i", math.maxinteger))
    assert.are.equal(math.mininteger, roundtrip("i", math.mininteger))
    assert.are.equal("integer", math.type(roundtrip("i", 0)))
    -- and binds compare against them
    local n = db:query(("SELECT count(*) AS n FROM %s WHERE i = ?"):format(t), { 0 })[1].n
    assert.are.equal(1, n)
  end)

  it("keeps floats, and float specials where the server allows them", function()
    assert.are.equal(0.1, roundtrip("f", 0.1))
    assert.are.equal(-1.5e300, roundtrip("f", -1.5e300))
    assert.are.equal(5e-324, roundtrip("f", 5e-324))
    if d.name == "postgres" then
      assert.are.equal(math.huge, roundtrip("f", math.huge))
      assert.are.equal(-math.huge, roundtrip("f", -math.huge))
      local nan = roundtrip("f", 0 / 0)
      assert.is_true(nan ~= nan)
    elseif d.name == "mysql" then
      H.raises(function() roundtrip("f", math.huge) end) -- MySQL has no infinity
    end
  end)

  it("tells the empty string from NULL", function()
    assert.are.equal("", roundtrip("s", ""))
    assert.is_nil(roundtrip("s", sqorm.null))
  end)

  it("keeps 4-byte UTF-8 and embedded NULs", function()
    local emoji = "player 🎮 𝄞 ünïcödé"
    assert.are.equal(emoji, roundtrip("s", emoji))
    local bin = "\0\1\2\255\0end"
    assert.are.equal(bin, roundtrip("b", bin))
    if d.name ~= "postgres" then -- PostgreSQL text cannot hold NUL (the value travels as binary)
      assert.are.equal("a\0b", roundtrip("b", "a\0b"))
    end
  end)

  it("round-trips 1 MiB strings and blobs", function()
    local big = ("0123456789abcdef"):rep(65536)
    assert.are.equal(1048576, #big)
    assert.are.equal(big, roundtrip("s", big))
    local bin = ("\0\255"):rep(524288)
    assert.are.equal(bin, roundtrip("b", bin))
  end)

  it("returns DECIMAL as an exact string", function()
    local v = roundtrip("dc", "12345678901234567890.0123456789")
    assert.are.equal("string", type(v))
    if d.name ~= "sqlite" then assert.are.equal("12345678901234567890.0123456789", v) end
  end)

  it("returns DATETIME and DATE as UTC strings", function()
    assert.are.equal("2024-02-29 23:59:58", roundtrip("dt", "2024-02-29 23:59:58"))
    assert.are.equal("2024-02-29", roundtrip("da", "2024-02-29"))
  end)

  it("binds booleans", function()
    assert.are.equal(1, db:query("SELECT count(*) AS n FROM (SELECT 1 AS x) q WHERE ? = ?", { true, true })[1].n)
  end)
end)
