-- bulk_create with update_on_duplicate and hooks (docs/api.md, "Hooks"):
-- the columns that before_bulk_create or, with individual_hooks, the
-- per-record create hooks set join the update list, in the same one
-- statement per batch. On every dialect.
local sqorm = require "sqorm"
local H = require "spec.helper"
local MH = require "spec.model_helper"

H.each_dialect(describe, function(d)
  local db, log, P

  before_each(function()
    db, log = MH.connect(d)
    P = MH.players(db)
    P:sync{ force = true }
    P:bulk_create{ { name = "a", coins = 1 }, { name = "b", coins = 1 } }
    MH.clear(log)
  end)

  after_each(function()
    MH.cleanup(db, P)
  end)

  local opts = { update_on_duplicate = { "coins" }, conflict = { "name" }, returning = false }

  local function row(name)
    local p = P:find_one{ where = { name = name } }
    return { p.coins, p.goods }
  end

  it("a column before_bulk_create sets is updated on a duplicate too", function()
    P:add_hook("before_bulk_create", function(ctx)
      for _, r in ipairs(ctx.records) do r.goods = 7 end
    end)
    P:bulk_create({ { name = "a", coins = 5 }, { name = "c", coins = 6 } }, opts)
    assert.are.equal(1, #MH.statements(log)) -- one INSERT
    assert.are.same({ 5, 7 }, row("a"))
    assert.are.same({ 6, 7 }, row("c"))
    assert.are.same({ 1, 0 }, row("b"))
    assert.are.same({ "coins" }, opts.update_on_duplicate) -- the caller's options are left alone
  end)

  it("with individual_hooks, a column a create hook sets is updated on a duplicate too", function()
    P:add_hook("before_create", function(p) p.goods = #p.name + 8 end)
    P:bulk_create({ { name = "a", coins = 5 }, { name = "cc", coins = 6 } },
                  { update_on_duplicate = { "coins" }, conflict = { "name" }, returning = false,
                    individual_hooks = true })
    assert.are.equal(1, #MH.statements(log))
    assert.are.same({ 5, 9 }, row("a"))
    assert.are.same({ 6, 10 }, row("cc"))
  end)

  it("columns no hook set stay out of the update list", function()
    P:add_hook("before_bulk_create", function(ctx)
      for _, r in ipairs(ctx.records) do r.coins = r.coins * 2 end -- already in the list
    end)
    P:bulk_create({ { name = "a", coins = 5, goods = 3 } }, opts)
    assert.are.same({ 10, 0 }, row("a")) -- goods given by the record, not by a hook: not updated
  end)
end)
