-- The error object and the error mapping of each driver.
local sqorm = require "sqorm"
local H = require "spec.helper"

describe("error objects", function()
  it("have kind, code, sqlstate, message and a tostring", function()
    local db = sqorm.connect("sqlite::memory:")
    db:exec("CREATE TABLE t (k INTEGER PRIMARY KEY)")
    db:exec("INSERT INTO t VALUES (1)")
    local err = H.raises(function() db:exec("INSERT INTO t VALUES (1)") end)
    assert.are.equal("unique_violation", err.kind)
    assert.is_string(err.message)
    assert.is_string(err.code)
    assert.are.equal("23505", err.sqlstate)
    local s = tostring(err)
    assert.is_truthy(s:find("^sqorm%.Error %[unique_violation%] "))
    assert.is_truthy(s:find("code SQLITE_CONSTRAINT", 1, true))
    assert.is_true(sqorm.is_error(err))
    assert.is_false(sqorm.is_error("text"))
    assert.is_false(sqorm.is_error({ kind = "usage" }))
    db:close()
  end)
end)

H.each_dialect(describe, function(d)
  if d.name == "sqlite" then return end
  local getenv = os.getenv
  local prefix = d.name == "mysql" and "SQORM_TEST_MYSQL_" or "SQORM_TEST_PG_"
  local function cfg(over)
    local t = { dialect = d.name, host = getenv(prefix .. "HOST"), port = tonumber(getenv(prefix .. "PORT")),
      user = getenv(prefix .. "USER"), password = getenv(prefix .. "PASSWORD"), database = getenv(prefix .. "DB"),
      connect_timeout = 5 }
    for k, v in pairs(over or {}) do t[k] = v end
    return t
  end

  it("maps a bad password to kind auth with the server's code", function()
    local db = sqorm.connect(cfg { password = "wrong-password" })
    local err = H.raises(function() db:authenticate() end)
    assert.are.equal("auth", err.kind)
    if d.name == "mysql" then
      assert.are.equal("1045", err.code)
      assert.are.equal("28000", err.sqlstate)
    else
      assert.are.equal("28P01", err.code)
    end
    db:close()
  end)

  it("maps a refused connection to kind connection", function()
    local db = sqorm.connect(cfg { port = 1 })
    local err = H.raises_kind("connection", nil, function() db:authenticate() end)
    assert.is_truthy(#err.message > 0)
    db:close()
  end)

  it("maps an unknown database to a clear error", function()
    local db = sqorm.connect(cfg { database = "no_such_db_sqorm" })
    local err = H.raises(function() db:authenticate() end)
    assert.is_truthy(err.kind == "connection" or err.kind == "auth" or err.kind == "database", err.kind)
    assert.is_truthy(err.message:find("no_such_db_sqorm", 1, true))
    db:close()
  end)

  it("maps syntax errors with the SQLSTATE", function()
    local db = sqorm.connect(d.url)
    local err = H.raises_kind("syntax", nil, function() db:query("SELEC 1") end)
    assert.are.equal(d.name == "mysql" and "42000" or "42601", err.sqlstate)
    if d.name == "mysql" then assert.are.equal("1064", err.code) end
    db:close()
  end)
end)
