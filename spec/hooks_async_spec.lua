-- Hooks in async mode (docs/api.md, "Hooks"): a hook runs in the caller's
-- coroutine, so its own queries suspend that coroutine like any call and
-- join its transaction; after_commit callbacks may query too. On a SQLite
-- file, MariaDB and PostgreSQL.
local sqorm = require "sqorm"
local H = require "spec.helper"
local MH = require "spec.model_helper"

local T = sqorm.types
local drain = H.drain

-- Runs fn in a coroutine the way a host does: resume, then poll.
local function run(fn)
  local co = coroutine.create(fn)
  assert(coroutine.resume(co))
  local resumes = drain()
  assert.are.equal("dead", coroutine.status(co))
  return resumes
end

for _, d in ipairs(H.file_dialects()) do
  describe("hooks async [" .. d.name .. "]", function()
    local db, P, A, log

    before_each(function()
      log = {}
      db = sqorm.connect(d.url, { async = true, pool = { max = 3 },
                                  logging = function(m) log[#log + 1] = m end })
      sqorm.on_error(nil)
      P = MH.players(db)
      A = db:define("audit", { { "id", T.INTEGER, primary_key = true, auto_increment = true },
                               { "what", T.STRING(64) } }, { table_name = H.tname("audits"), timestamps = false })
      run(function()
        P:sync{ force = true }
        A:sync{ force = true }
      end)
    end)

    after_each(function()
      drain()
      run(function()
        P:drop()
        A:drop()
      end)
      db:close()
      if d.path then
        for _, suffix in ipairs { "", "-wal", "-shm" } do os.remove(d.path .. suffix) end
      end
    end)

    it("a hook's query suspends the caller's coroutine like any call", function()
      P:add_hook("before_create", function(p)
        p.goods = A:count() + 10 -- one operation: one suspension
      end)
      local made
      local resumes = run(function() made = P:create{ name = "a" } end)
      assert.are.equal(2, resumes) -- the hook's SELECT, then the INSERT
      assert.are.equal(10, made.goods)
    end)

    it("a hook's rows join the caller's transaction; after_commit queries after COMMIT", function()
      P:add_hook("after_create", function(p, ctx)
        A:create{ what = "create " .. p.name }
        ctx:after_commit(function() A:create{ what = "committed " .. p.name } end)
      end)
      local counts = {}
      run(function()
        local ok = pcall(db.transaction, db, function()
          P:create{ name = "a" }
          counts[1] = A:count()
          error("abort")
        end)
        assert(not ok)
        counts[2] = A:count()
        db:transaction(function() P:create{ name = "b" } end)
        counts[3] = A:count()
      end)
      assert.are.same({ 1, 0, 2 }, counts)
      local whats = {}
      run(function()
        for _, a in ipairs(A:find_all{ order = { "id" } }) do whats[#whats + 1] = a.what end
      end)
      assert.are.same({ "create b", "committed b" }, whats)
    end)

    it("individual_hooks run their transaction and per-row hooks in the coroutine", function()
      run(function() P:bulk_create{ { name = "a" }, { name = "b" } } end)
      P:add_hook("before_update", function(p) p.goods = A:count() + #p.name end)
      local n
      local resumes = run(function()
        n = P:update({ coins = 3 }, { where = { name = { "a", "b" } }, individual_hooks = true })
      end)
      assert.are.equal(2, n)
      -- BEGIN, SELECT, per row: the hook's count and the UPDATE, COMMIT
      assert.are.equal(7, resumes)
      local c
      run(function() c = P:count{ where = { coins = 3, goods = 1 } } end)
      assert.are.equal(2, c)
    end)
  end)
end
