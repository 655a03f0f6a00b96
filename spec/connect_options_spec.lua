-- Connect options: named pools compare their extra parameters as a set
-- (issue 19), params never nest (issue 15), sqorm:connect says what to
-- write instead (issue 25).
local sqorm = require "sqorm"
local H = require "spec.helper"

-- The keys of t in the order pairs() gives them.
local function order(t)
  local ks = {}
  for k in pairs(t) do ks[#ks + 1] = k end
  return table.concat(ks, ",")
end

describe("connect options", function()
  describe("named pools", function()
    -- The same libpq parameters, inserted in different orders until pairs()
    -- walks two of the tables differently (as it may in two Lua states).
    local keys = { "application_name", "keepalives", "keepalives_idle", "options", "target_session_attrs",
      "keepalives_count", "keepalives_interval", "tcp_user_timeout" }
    local values = { application_name = "game", keepalives = 1, keepalives_idle = 30, options = "-c x=y",
      target_session_attrs = "any", keepalives_count = 3, keepalives_interval = 5, tcp_user_timeout = 1000 }

    local function params_in(perm)
      local t = {}
      for _, i in ipairs(perm) do t[keys[i]] = values[keys[i]] end
      return t
    end

    it("share a pool whatever order the params table gives its keys in", function()
      local a = params_in({ 1, 2, 3, 4, 5, 6, 7, 8 })
      local b
      for shift = 1, 7 do
        local perm = {}
        for i = 1, 8 do perm[i] = (i + shift - 1) % 8 + 1 end
        b = params_in(perm)
        if order(b) ~= order(a) then break end
      end
      local rev = {}
      for i = 8, 1, -1 do rev[#rev + 1] = i end
      if order(b) == order(a) then b = params_in(rev) end
      assert.are_not.equal(order(a), order(b)) -- the case the bug needed
      local name = H.tname("params_set")
      local cfg = { dialect = "postgres", host = "127.0.0.1", port = 1, name = name }
      local function with(params)
        local t = { params = params }
        for k, v in pairs(cfg) do t[k] = v end
        return t
      end
      local d1 = sqorm.connect(with(a))
      local d2 = sqorm.connect(with(b)) -- raised "already exists with different settings" before
      -- a real difference still conflicts
      local c = params_in({ 8, 7, 6, 5, 4, 3, 2, 1 })
      c.application_name = "other"
      H.raises_kind("usage", "different settings", function() sqorm.connect(with(c)) end)
      d1:close()
      d2:close()
    end)

    it("compare URL query parameters as a set too", function()
      local name = H.tname("params_url")
      local d1 = sqorm.connect("postgres://127.0.0.1:1/db?application_name=a&keepalives=1&options=-c%20x%3Dy",
        { name = name })
      local d2 = sqorm.connect("postgres://127.0.0.1:1/db?options=-c%20x%3Dy&keepalives=1&application_name=a",
        { name = name })
      d1:close()
      d2:close()
    end)
  end)

  describe("params", function()
    it("refuses a self-referencing table without recursing", function()
      local t = {}
      t.params = t
      H.raises_kind("usage", "params do not nest", function() sqorm.connect{ dialect = "postgres", params = t } end)
      local u = { x = "1" }
      u.self = u
      H.raises_kind("usage", "params.self", function() sqorm.connect{ dialect = "postgres", params = u } end)
    end)

    it("refuses a 100000-deep table without overflowing the stack", function()
      local root = {}
      local cur = root
      for _ = 1, 100000 do
        local nxt = {}
        cur.params = nxt
        cur = nxt
      end
      H.raises_kind("usage", "params do not nest", function() sqorm.connect{ dialect = "postgres", params = root } end)
      H.raises_kind("usage", "params do not nest",
        function() sqorm.connect("postgres://127.0.0.1:1/db", { params = root }) end)
    end)

    it("still takes strings, numbers and booleans", function()
      local db = sqorm.connect{ dialect = "postgres", host = "127.0.0.1", port = 1,
        params = { application_name = "x", keepalives = 1, keepalives_idle = 2.5 } }
      db:close()
      H.raises_kind("usage", "params.f", function()
        sqorm.connect{ dialect = "postgres", params = { f = print } }
      end)
      H.raises_kind("usage", "keys must be strings", function()
        sqorm.connect{ dialect = "postgres", params = { "x" } }
      end)
    end)
  end)

  describe("sqorm:connect", function()
    it("says to use sqorm.connect", function()
      H.raises_kind("usage", "use sqorm.connect(...), not sqorm:connect(...)",
        function() return sqorm:connect("sqlite::memory:") end)
      H.raises_kind("usage", "use sqorm.connect(...), not sqorm:connect(...)",
        function() return sqorm:connect{ dialect = "sqlite" } end)
      H.raises_kind("usage", "use sqorm.connect(...), not sqorm:connect(...)",
        function() return sqorm:connect() end)
      local core = require "sqorm.core"
      H.raises_kind("usage", "use sqorm.connect(...)", function() return core:connect("sqlite::memory:") end)
    end)

    it("sqorm.env:connect says to use sqorm.env.connect", function()
      H.raises_kind("usage", "use sqorm.env.connect(...), not sqorm.env:connect(...)",
        function() return sqorm.env:connect() end)
    end)
  end)
end)
