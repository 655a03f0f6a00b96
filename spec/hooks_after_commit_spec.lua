-- ctx:after_commit(f) of hooks (docs/api.md, "Hooks"): f runs once after
-- the outermost COMMIT of the caller's transaction, never after a
-- rollback (nor after a rollback to a savepoint that covered it), at once
-- outside a transaction; an error in f raises kind after_commit once the
-- commit is done. On every dialect.
local sqorm = require "sqorm"
local H = require "spec.helper"
local MH = require "spec.model_helper"

H.each_dialect(describe, function(d)
  local db, seq, P

  before_each(function()
    seq = {}
    db = sqorm.connect(d.url, { logging = function(msg)
      local verb = msg:match("^Executing %(default%): (%u+)") or "?"
      if verb == "START" then verb = "BEGIN" end
      seq[#seq + 1] = "SQL " .. verb
    end })
    P = MH.players(db)
    P:sync{ force = true }
    -- every created player queues a callback naming it
    P:add_hook("after_create", function(p, ctx)
      ctx:after_commit(function() seq[#seq + 1] = "committed " .. p.name end)
    end)
    for i = #seq, 1, -1 do seq[i] = nil end
  end)

  after_each(function()
    MH.cleanup(db, P)
  end)

  local function clear() for i = #seq, 1, -1 do seq[i] = nil end end

  it("runs once, after COMMIT", function()
    db:transaction(function()
      P:create{ name = "a" }
      P:create{ name = "b" }
      seq[#seq + 1] = "fn returns"
    end)
    assert.are.same({ "SQL BEGIN", "SQL INSERT", "SQL INSERT", "fn returns", "SQL COMMIT", "committed a",
                      "committed b" }, seq)
    clear()
    db:transaction(function() end)
    assert.are.same({ "SQL BEGIN", "SQL COMMIT" }, seq) -- none left behind
  end)

  it("runs at once outside a transaction", function()
    P:create{ name = "a" }
    assert.are.same({ "SQL INSERT", "committed a" }, seq)
  end)

  it("never runs after a rollback", function()
    local ok = pcall(db.transaction, db, function()
      P:create{ name = "a" }
      error("abort")
    end)
    assert.is_false(ok)
    assert.are.same({ "SQL BEGIN", "SQL INSERT", "SQL ROLLBACK" }, seq)
    clear()
    do
      local tx <close> = db:begin()
      P:create{ name = "b" }
      tx:rollback()
    end
    db:transaction(function() end)
    for _, e in ipairs(seq) do assert.is_nil(e:match("^committed")) end
  end)

  it("with db:begin / tx:commit", function()
    local tx = db:begin()
    P:create{ name = "a" }
    assert.are.same({ "SQL BEGIN", "SQL INSERT" }, seq)
    tx:commit()
    assert.are.same({ "SQL BEGIN", "SQL INSERT", "SQL COMMIT", "committed a" }, seq)
  end)

  it("nested transactions: after the outermost COMMIT; a savepoint rolled back drops what it covered", function()
    db:transaction(function()
      P:create{ name = "a" }
      db:transaction(function() P:create{ name = "b" } end) -- released
      seq[#seq + 1] = "released"
      pcall(db.transaction, db, function()                  -- rolled back
        P:create{ name = "c" }
        db:transaction(function() P:create{ name = "d" } end)
        error("undo c and d")
      end)
      P:create{ name = "e" }
    end)
    local events = {}
    for _, e in ipairs(seq) do if not e:match("^SQL [SRI]") then events[#events + 1] = e end end
    assert.are.same({ "SQL BEGIN", "released", "SQL COMMIT", "committed a", "committed b", "committed e" }, events)
    assert.are.equal(3, P:count())
  end)

  it("an error in a callback: the others still run, the data is committed, kind after_commit", function()
    P:add_hook("after_create", function(p, ctx)
      if p.name:sub(1, 1) == "a" then ctx:after_commit(function() error("mail server down") end) end
    end)
    local err = H.raises_kind("after_commit", "mail server down", function()
      db:transaction(function()
        P:create{ name = "a" }
        P:create{ name = "b" }
      end)
    end)
    assert.is_true(err.committed)
    assert.matches("mail server down", tostring(err.cause))
    assert.matches("committed", err.message)
    assert.are.same({ "committed a", "committed b" }, { seq[#seq - 1], seq[#seq] })
    assert.are.equal(2, P:count())
    -- outside a transaction the same error comes from the write that committed
    clear()
    err = H.raises_kind("after_commit", "mail server down", P.create, P, { name = "a2" })
    assert.is_true(err.committed)
    assert.are.equal(3, P:count())
    -- a raised value other than a string is kept as the cause, unchanged
    local sentinel = {}
    P:add_hook("after_save", function(_, ctx) ctx:after_commit(function() error(sentinel) end) end)
    err = H.raises_kind("after_commit", nil, function() db:transaction(function() P:create{ name = "c" } end) end)
    assert.is_true(rawequal(sentinel, err.cause))
  end)

  it("a callback's own queries run after the commit, outside the transaction", function()
    P:add_hook("after_create", function(p, ctx)
      ctx:after_commit(function() P:update({ goods = 5 }, { where = { id = p.id } }) end)
    end)
    db:transaction(function() P:create{ name = "a" } end)
    assert.are.same({ "SQL BEGIN", "SQL INSERT", "SQL COMMIT", "committed a", "SQL UPDATE" }, seq)
    assert.are.equal(5, P:find_one{ where = { name = "a" } }.goods)
  end)
end)
