-- spec/helper.lua - what every spec shares: the dialects to run on and a
-- fresh db per test.
--
-- sqlite always runs. mysql and postgres run when the test servers are up
-- (scripts/with-test-servers.sh exports SQORM_TEST_*). With
-- SQORM_TEST_REQUIRE_SERVERS=1 (the test command sets it) a missing
-- server is an error, not a skip.
local sqorm = require "sqorm"
local assert = require "luassert"

local H = {}

local getenv = os.getenv

local function mysql_url()
  local port = getenv("SQORM_TEST_MYSQL_PORT")
  if not port then return nil end
  return ("mysql://%s:%s@%s:%s/%s"):format(getenv("SQORM_TEST_MYSQL_USER"), getenv("SQORM_TEST_MYSQL_PASSWORD"),
    getenv("SQORM_TEST_MYSQL_HOST"), port, getenv("SQORM_TEST_MYSQL_DB"))
end

local function pg_url()
  local port = getenv("SQORM_TEST_PG_PORT")
  if not port then return nil end
  return ("postgres://%s:%s@%s:%s/%s"):format(getenv("SQORM_TEST_PG_USER"), getenv("SQORM_TEST_PG_PASSWORD"),
    getenv("SQORM_TEST_PG_HOST"), port, getenv("SQORM_TEST_PG_DB"))
end

H.mysql_url, H.pg_url = mysql_url, pg_url

-- The scale-out servers (scripts/test-servers.sh families pgbouncer,
-- mysql-replica, postgres-standby, galera). Each URL helper returns nil when
-- its family was not started. The URLs carry no TLS options; add
-- H.tls_query("mysql"|"postgres") for verification against the test CA.

-- H.has_servers(family): the family was started (SQORM_TEST_SERVERS).
function H.has_servers(family)
  return ("," .. (getenv("SQORM_TEST_SERVERS") or "") .. ","):find("," .. family .. ",", 1, true) ~= nil
end

-- H.need_servers(family): true when the family is up; false (skip) when it
-- is not, or an error with SQORM_TEST_REQUIRE_SERVERS=1.
function H.need_servers(family)
  if H.has_servers(family) then return true end
  if getenv("SQORM_TEST_REQUIRE_SERVERS") == "1" then
    error("SQORM_TEST_REQUIRE_SERVERS=1 but the " .. family .. " test servers are not configured")
  end
  return false
end

-- "?sslmode=...&sslrootcert=<test CA>" (full verification) for a URL.
function H.tls_query(dialect)
  local mode = dialect == "postgres" and "verify-full" or "verify_identity"
  return ("?sslmode=%s&sslrootcert=%s"):format(mode, getenv("SQORM_TEST_CA"))
end

-- PostgreSQL through PgBouncer (pool_mode = transaction, PgBouncer 1.18,
-- no max_prepared_statements, DISCARD ALL after every transaction).
function H.pgbouncer_url()
  return getenv("SQORM_TEST_PGBOUNCER_URL")
end

-- The MariaDB replica of H.mysql_url() (read_only; the test user cannot
-- write there: error 1290).
function H.mysql_replica_url()
  return getenv("SQORM_TEST_MYSQL_REPLICA_URL")
end

-- The admin account (all privileges, READ ONLY ADMIN included) on the
-- MariaDB primary (which = "primary", default) or replica ("replica").
function H.mysql_admin_url(which)
  local port = which == "replica" and getenv("SQORM_TEST_MYSQL_REPLICA_PORT") or getenv("SQORM_TEST_MYSQL_PORT")
  if not port or not getenv("SQORM_TEST_MYSQL_ADMIN_USER") then return nil end
  return ("mysql://%s:%s@%s:%s/%s"):format(getenv("SQORM_TEST_MYSQL_ADMIN_USER"),
    getenv("SQORM_TEST_MYSQL_ADMIN_PASSWORD"), getenv("SQORM_TEST_MYSQL_HOST"), port, getenv("SQORM_TEST_MYSQL_DB"))
end

-- The PostgreSQL streaming standby of H.pg_url() (writes: SQLSTATE 25006).
-- The test user is a superuser there too (pg_wal_replay_pause/resume).
function H.pg_standby_url()
  return getenv("SQORM_TEST_PG_STANDBY_URL")
end

-- The Galera nodes' client ports, { p1, p2, p3 } (integers), or nil.
function H.galera_ports()
  local list = getenv("SQORM_TEST_GALERA_PORTS")
  if not list then return nil end
  local ports = {}
  for p in list:gmatch("%d+") do ports[#ports + 1] = math.tointeger(tonumber(p)) end
  return ports
end

-- H.galera_url(i): one node (1..3); H.galera_url(): all three nodes in the
-- multi-host form mysql://u:p@h:p1,h:p2,h:p3/db.
function H.galera_url(i)
  if not i then return getenv("SQORM_TEST_GALERA_URL") end
  local ports = H.galera_ports()
  if not ports or not ports[i] then return nil end
  return ("mysql://%s:%s@127.0.0.1:%d/%s"):format(getenv("SQORM_TEST_GALERA_USER"),
    getenv("SQORM_TEST_GALERA_PASSWORD"), ports[i], getenv("SQORM_TEST_GALERA_DB"))
end

local function shell_words(...)
  local script = getenv("SQORM_TEST_SCRIPT")
  if not script or not getenv("SQORM_TEST_DIR") then
    error("SQORM_TEST_SCRIPT/SQORM_TEST_DIR not set (run under scripts/with-test-servers.sh)")
  end
  -- Without the sanitizer runtime the ASan run preloads (psql hangs with it).
  local words = { "env", "-u", "LD_PRELOAD", "bash", script, ... }
  for i, w in ipairs(words) do
    if i > 5 and not tostring(w):match("^[%w_%-]+$") then error("bad test-servers.sh argument: " .. tostring(w)) end
    words[i] = "'" .. tostring(w):gsub("'", "'\\''") .. "'"
  end
  return table.concat(words, " ")
end

-- H.test_servers(...): runs scripts/test-servers.sh with these arguments
-- against this run's servers and returns its output; raises when it fails.
--   H.test_servers("kill", "galera2")       SIGKILL a server
--   H.test_servers("restart", "galera2")    start it again (a Galera node
--                                           rejoins and is Synced on return)
--   H.test_servers("replication", "pause"|"resume"|"sync"|"status",
--                  "mysql"|"postgres")      the replica / standby
function H.test_servers(...)
  local f = assert(io.popen(shell_words(...) .. " 2>&1"))
  local out = f:read("a")
  local ok = f:close()
  if not ok then error(("test-servers.sh %s failed:\n%s"):format(table.concat({ ... }, " "), out)) end
  return out
end

-- H.test_servers_bg(...): the same, in the background (e.g. a restart while
-- a load keeps running in this process). Returns a handle: h:done() is true
-- once it has finished (does not block); h:wait() blocks until then and
-- returns the output, or raises as H.test_servers does.
function H.test_servers_bg(...)
  local what = table.concat({ ... }, " ")
  local out = os.tmpname()
  local rc = out .. ".rc"
  local cmd = ("( %s >'%s' 2>&1; echo $? >'%s.tmp' && mv '%s.tmp' '%s' ) </dev/null >/dev/null 2>&1 &")
    :format(shell_words(...), out, rc, rc, rc)
  assert(os.execute(cmd), "could not start test-servers.sh " .. what)
  local h = {}
  function h:done()
    local f = io.open(rc)
    if f then f:close() end
    return f ~= nil
  end
  function h:wait()
    while not self:done() do os.execute("sleep 0.1") end
    local f = assert(io.open(rc))
    local status = f:read("l")
    f:close()
    f = assert(io.open(out))
    local text = f:read("a")
    f:close()
    os.remove(out)
    os.remove(rc)
    if status ~= "0" then error(("test-servers.sh %s failed (exit %s):\n%s"):format(what, status, text)) end
    return text
  end
  return h
end

-- Every dialect this run covers: { name = "sqlite", url = ... }.
function H.dialects()
  local list = { { name = "sqlite", url = "sqlite::memory:" } }
  local want = getenv("SQORM_TEST_DIALECTS") -- e.g. "sqlite,postgres"
  local require_all = getenv("SQORM_TEST_REQUIRE_SERVERS") == "1"
  local m, p = mysql_url(), pg_url()
  if m then list[#list + 1] = { name = "mysql", url = m }
  elseif require_all then error("SQORM_TEST_REQUIRE_SERVERS=1 but the MySQL test server is not configured") end
  if p then list[#list + 1] = { name = "postgres", url = p }
  elseif require_all then error("SQORM_TEST_REQUIRE_SERVERS=1 but the PostgreSQL test server is not configured") end
  if want then
    local keep = {}
    for _, d in ipairs(list) do
      if ("," .. want .. ","):find("," .. d.name .. ",", 1, true) then keep[#keep + 1] = d end
    end
    list = keep
  end
  return list
end

-- The same, with SQLite on a temporary file (several connections, as
-- async mode needs): its entry has `path`, for the caller to remove.
function H.file_dialects()
  local list = {}
  for _, d in ipairs(H.dialects()) do
    if d.name == "sqlite" then
      local path = os.tmpname()
      list[#list + 1] = { name = "sqlite", url = "sqlite://" .. path, path = path }
    else
      list[#list + 1] = d
    end
  end
  return list
end

-- Async mode: polls until nothing is pending (fails after `limit`
-- seconds, default 30); returns how many coroutines poll resumed.
function H.drain(limit)
  local n, t0 = 0, os.time()
  while sqorm.pending() > 0 do
    n = n + sqorm.poll()
    assert(os.time() - t0 <= (limit or 30), "ops still pending after " .. (limit or 30) .. " s")
  end
  return n
end

-- Runs body(d) inside describe("[<dialect>]") for each dialect. Pass the
-- spec file's own `describe` (busted gives each spec file its own globals).
function H.each_dialect(describe, body)
  for _, d in ipairs(H.dialects()) do
    describe("[" .. d.name .. "]", function() body(d) end)
  end
end

-- Calls fn and returns the error object it raised (fails when it did not).
function H.raises(fn, ...)
  local ok, err = pcall(fn, ...)
  assert(not ok, "expected an error, but the call succeeded")
  assert(sqorm.is_error(err), "expected a sqorm error object, got: " .. tostring(err))
  return err
end

-- Asserts fn raises a sqorm error of `kind` whose message contains `pattern` (plain).
function H.raises_kind(kind, pattern, fn, ...)
  local err = H.raises(fn, ...)
  assert.are.equal(kind, err.kind, "error kind for: " .. tostring(err))
  if pattern then
    assert(tostring(err.message):find(pattern, 1, true),
      ("message %q does not contain %q"):format(tostring(err.message), pattern))
  end
  return err
end

-- A unique table name per call, so dialects with shared servers never clash.
local counter = 0
function H.tname(base)
  counter = counter + 1
  return ("%s_%d_%d"):format(base or "t", counter, math.random(1, 1e6))
end

-- SQL that differs per dialect.
function H.autoinc_pk(dialect)
  if dialect == "sqlite" then return "INTEGER PRIMARY KEY AUTOINCREMENT"
  elseif dialect == "mysql" then return "BIGINT AUTO_INCREMENT PRIMARY KEY"
  else return "BIGSERIAL PRIMARY KEY" end
end

function H.blob_type(dialect)
  if dialect == "postgres" then return "BYTEA" elseif dialect == "mysql" then return "LONGBLOB" else return "BLOB" end
end

function H.text_type(dialect)
  if dialect == "mysql" then return "LONGTEXT" else return "TEXT" end
end

return H
