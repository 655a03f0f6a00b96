-- tests/faults_async.lua - the coroutine half of the faults ledger
-- (issue 16, item 3), run by `test_faults_live async` (ctest
-- test_faults_async_live) in one Lua state, through the fault proxy, while
-- the C side kills sessions and restarts the server on a thread.
--
-- FAULTS (set by the C host): url (through the proxy), pg, accounts, seed,
-- now(), stopped() (the budget is over), next_id() (a transfer id, or nil),
-- wait(fd, seconds) (poll on sqorm.pollfd()), record(id, outcome, stage,
-- kind) and fail(message).
--
-- COROUTINES coroutines (sqorm.spawn) on one db with async = true run
-- transfers until FAULTS.stopped(): BEGIN; [PG: SET LOCAL synchronous_commit
-- = on]; two UPDATEs, lower id first; 1 in 4 a savepoint (a nested
-- db:begin) with an INSERT of ledger id 0 (unique_violation) rolled back to;
-- a savepoint, the ledger INSERT, its release; COMMIT. Nothing is retried.
-- 1 in 8 statements has a per-call timeout of 1 s; the main loop cancels
-- a random coroutine's call now and then (sqorm.cancel). After a
-- connection error a coroutine naps 50 ms (it yields to the loop, which
-- resumes it: coroutines sqorm and the host both resume). Each transfer is
-- recorded: committed (1), raised before COMMIT (2), raised at COMMIT (3),
-- or outcome unknown (4: sqlstate 08007). Returns what the C side checks:
-- coroutines left suspended, sqorm.pending(), the pool's stats, healthy.

local sqorm = require "sqorm"
local F = FAULTS

local COROUTINES = 8
local O_COMMITTED, O_RAISED, O_AT_COMMIT, O_UNKNOWN = 1, 2, 3, 4
local ST = { begin = 0, set = 1, debit = 2, credit = 3, decoy = 4, savepoint = 5, insert = 6, release = 7,
  commit = 8 }

local rng = F.seed
local function rand(n)
  rng = (rng * 1103515245 + 12345) % 2147483648
  return (rng >> 8) % n
end

local INSERT = "INSERT INTO sq_faults_ledger (id, src, dst, amount) VALUES (?, ?, ?, ?)"
local UPDATE = "UPDATE sq_faults_acct SET balance = balance + ? WHERE id = ?"

local db = sqorm.connect(F.url, { async = true })

-- An error the workload may see is a sqorm error object; anything else
-- (a plain string, a Lua error of this script) is a failure.
local function kind_of(e)
  if sqorm.is_error(e) then return e.kind end
  F.fail("not a sqorm error: " .. tostring(e))
  return "?"
end

local function opts()
  if rand(8) == 0 then return { timeout = 1 } end
  return nil
end

local function transfer(id)
  local src = 1 + rand(F.accounts)
  local dst = 1 + rand(F.accounts - 1)
  if dst >= src then dst = dst + 1 end
  local amount = 1 + rand(100)
  local decoy = rand(4) == 0
  local stage = ST.begin
  local tx
  local ok, e = pcall(function()
    tx = db:begin()
    if F.pg then
      stage = ST.set
      db:exec("SET LOCAL synchronous_commit = on")
    end
    local lo, hi = math.min(src, dst), math.max(src, dst)
    for _, a in ipairs({ lo, hi }) do
      stage = a == src and ST.debit or ST.credit
      db:exec(UPDATE, { a == src and -amount or amount, a }, opts())
    end
    if decoy then
      stage = ST.decoy
      local sp = db:begin()
      local ok2, e2 = pcall(db.exec, db, INSERT, { 0, src, dst, amount })
      if ok2 then error("the decoy insert succeeded", 0) end
      if not (sqorm.is_error(e2) and e2.kind == "unique_violation") then error(e2, 0) end
      sp:rollback()
    end
    stage = ST.savepoint
    local sp = db:begin()
    stage = ST.insert
    db:exec(INSERT, { id, src, dst, amount }, opts())
    stage = ST.release
    sp:commit()
    stage = ST.commit
    tx:commit()
  end)
  if ok then
    F.record(id, O_COMMITTED, stage)
    return
  end
  local kind = kind_of(e)
  local backoff = kind == "connection" or kind == "pool_timeout" -- the server may be down: nap
  if tx then pcall(tx.rollback, tx) end
  if stage ~= ST.commit then
    F.record(id, O_RAISED, stage, kind)
  elseif sqorm.is_error(e) and e.sqlstate == "08007" then
    F.record(id, O_UNKNOWN, stage, kind)
  else
    F.record(id, O_AT_COMMIT, stage, kind)
  end
  return backoff
end

-- A nap: the coroutine yields to the host's loop below (not to sqorm),
-- which resumes it 50 ms later, as a game server's timer would.
local napping = {}
local function nap()
  napping[coroutine.running()] = F.now() + 0.05
  coroutine.yield()
end

local function worker()
  while not F.stopped() do
    local id = F.next_id()
    if not id then break end
    if transfer(id) then nap() end
  end
end

sqorm.on_error(function(err) F.fail("an error escaped a spawned coroutine: " .. tostring(err)) end)

local cos = {}
for i = 1, COROUTINES do cos[i] = sqorm.spawn(worker) end

-- The host's loop: poll, wait on the fd, now and then cancel a call.
local fd = sqorm.pollfd()
local cancels, stopped_at = 0, nil
while true do
  local alive = 0
  for _, co in ipairs(cos) do
    if coroutine.status(co) ~= "dead" then alive = alive + 1 end
  end
  if alive == 0 and sqorm.pending() == 0 then break end
  if F.stopped() then
    stopped_at = stopped_at or F.now()
    if F.now() - stopped_at > 60 then break end -- left suspended: reported
  elseif rand(200) == 0 then
    if sqorm.cancel(cos[1 + rand(COROUTINES)]) then cancels = cancels + 1 end
  end
  local now = F.now()
  for co, t in pairs(napping) do
    if now >= t then
      napping[co] = nil
      local okr, er = coroutine.resume(co)
      if not okr then F.fail("a coroutine raised: " .. tostring(er)) end
    end
  end
  if sqorm.poll() == 0 then F.wait(fd, next(napping) and 0.01 or 0.05) end
end

local suspended = 0
for _, co in ipairs(cos) do
  if coroutine.status(co) ~= "dead" then suspended = suspended + 1 end
end
local pending = sqorm.pending()
local st = db:pool_stats()

-- the pool works again (the faults are off by now? not yet: a few tries)
local healthy = false
if pending == 0 then
  for _ = 1, 10 do
    local okq = pcall(sqorm.run, function() return db:query("SELECT 1 AS x") end)
    if okq then healthy = true break end
  end
end
sqorm.on_error(nil)
db:close()
return {
  coroutines = COROUTINES, suspended = suspended, pending = pending, cancels = cancels,
  in_use = st.in_use, waiting = st.waiting, size = st.size, created = st.created, destroyed = st.destroyed,
  timeouts = st.timeouts, healthy = healthy and 1 or 0,
}
