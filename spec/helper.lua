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
