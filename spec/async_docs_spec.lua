-- docs/api.md's "Async" examples must run as written: the plain tick
-- loop, the fd watched by an event loop (luv's API, here over a real
-- select(2) on sqorm.pollfd() through luasocket), and host-owned
-- coroutines (skynet's API, here a small scheduler of the same shape).
local sqorm = require "sqorm"
local H = require "spec.helper"

local function example(name)
  local f = assert(io.open("docs/api.md", "rb"))
  local text = f:read("a")
  f:close()
  local code = text:match("<!%-%- async%-example: " .. name .. " %-%->\n```lua\n(.-)```")
  assert.is_string(code, "docs/api.md lost its async example " .. name)
  return code
end

-- luv's poll handles and loop, waiting for real on the fds.
local function fake_uv()
  local socket = require "socket"
  local handles, uv = {}, {}
  function uv.new_poll(fd)
    local h = { fd = fd }
    function h.start(self, _, cb)
      self.cb = cb
      handles[self] = true
    end
    function h.stop(self) handles[self] = nil end
    return h
  end
  function uv.run()
    local turns = 0
    while next(handles) do
      local watch = {}
      for h in pairs(handles) do
        watch[#watch + 1] = { getfd = function() return h.fd end, dirty = function() return false end, h = h }
      end
      local ready = socket.select(watch, nil, 5)
      assert(#ready > 0, "the fd never became readable")
      for _, w in ipairs(ready) do
        if handles[w.h] then w.h.cb() end
      end
      turns = turns + 1
      assert(turns < 10000)
    end
  end
  return uv
end

-- skynet's fork / wait / wakeup / timeout, with its loop.
local function fake_skynet()
  local sk, ready, timers, forked = {}, {}, {}, {}
  local now = 0
  function sk.fork(fn, ...)
    local co = coroutine.create(fn)
    forked[#forked + 1] = co
    ready[#ready + 1] = { co, table.pack(...) }
  end
  function sk.timeout(ticks, fn) timers[#timers + 1] = { at = now + ticks, fn = fn } end
  function sk.wait() coroutine.yield() end
  function sk.wakeup(co) ready[#ready + 1] = { co, table.pack() } end
  function sk.loop()
    for _ = 1, 100000 do
      now = now + 1
      local due = {}
      for i = #timers, 1, -1 do
        if timers[i].at <= now then
          due[#due + 1] = timers[i]
          table.remove(timers, i)
        end
      end
      for _, t in ipairs(due) do assert(coroutine.resume(coroutine.create(t.fn))) end
      local run = ready
      ready = {}
      for _, r in ipairs(run) do
        if coroutine.status(r[1]) == "suspended" then assert(coroutine.resume(r[1], table.unpack(r[2], 1, r[2].n))) end
      end
      local alive = false
      for _, co in ipairs(forked) do alive = alive or coroutine.status(co) ~= "dead" end
      if not alive and sqorm.pending() == 0 then return now end
    end
    error("the skynet loop never finished")
  end
  return sk
end

local function run_example(name, url, extra)
  local printed = {}
  local env = setmetatable({
    url = url, sqorm = sqorm,
    print = function(...) printed[#printed + 1] = table.concat({ ... }, "\t") end,
  }, { __index = _G })
  for k, v in pairs(extra or {}) do env[k] = v end
  local chunk = assert(load(example(name), "=docs/api.md async example " .. name, "t", env))
  chunk()
  return printed
end

H.each_dialect(describe, function(d)
  local url, path
  before_each(function()
    url = d.url
    if d.name == "sqlite" then
      path = os.tmpname()
      url = "sqlite://" .. path
    end
    sqorm.scheduler(nil)
    sqorm.on_error(nil)
  end)
  after_each(function()
    sqorm.scheduler(nil)
    if path then
      for _, s in ipairs { "", "-wal", "-shm" } do os.remove(path .. s) end
    end
  end)

  it("docs/api.md async example: a plain tick loop", function()
    local printed = run_example("tick", url)
    assert.are.same({ "sum\t55" }, printed)
  end)

  it("docs/api.md async example: an event loop watching sqorm.pollfd()", function()
    local printed = run_example("fd", url, { uv = fake_uv() })
    assert.are.same({ "from the loop" }, printed)
  end)

  it("docs/api.md async example: host-owned coroutines (skynet)", function()
    local sk = fake_skynet()
    local printed = run_example("skynet", url, { skynet = sk })
    sk.loop()
    assert.are.same({ "answer\t42" }, printed)
  end)
end)
