-- sqorm-0.1.0-1.rockspec: `luarocks make` in a checkout builds the C module
-- (CMake, against the system's client libraries: libsqlite3, libmariadb,
-- libpq, OpenSSL) and installs it with the Lua files.
--   luarocks --lua-version=5.4 make            (add --tree DIR or --local)
-- The version is SQORM_VERSION of src/sqorm.h (CMake refuses a mismatch).
rockspec_format = "3.0"
package = "sqorm"
version = "0.1.0-1"
source = {
  -- Only `luarocks install` of a published rock reads this; `luarocks make`
  -- builds the checkout it runs in. Set it when publishing a release.
  url = "git+https://example.invalid/sqorm.git",
  tag = "v0.1.0",
}
description = {
  summary = "An ORM for Lua 5.4 with a C engine: SQLite, MySQL/MariaDB/TiDB, PostgreSQL",
  detailed = [[
sqorm is an ORM for Lua 5.4 whose engine is a C library: a thread-safe
connection pool, models, a SQL query builder and drivers for SQLite
(embedded), MySQL-family servers (MySQL, MariaDB, TiDB) and PostgreSQL
(Neon and other TLS-only hosts included). Values always travel as bound
parameters; identifiers are validated and quoted.
]],
  license = "MIT",
  labels = { "database", "orm", "sql", "sqlite", "mysql", "postgresql" },
}
dependencies = {
  "lua >= 5.4, < 5.5",
}
external_dependencies = {
  -- found by CMake through pkg-config (Debian: libsqlite3-dev libmariadb-dev
  -- libpq-dev libssl-dev pkg-config cmake)
}
build = {
  type = "cmake",
  variables = {
    CMAKE_INSTALL_PREFIX = "$(PREFIX)",
    CMAKE_BUILD_TYPE = "Release",
    SQORM_LUA_INCDIR = "$(LUA_INCDIR)",
    SQORM_LUA_CMOD_DIR = "$(LIBDIR)",  -- sqorm/core.so
    SQORM_LUA_LMOD_DIR = "$(LUADIR)",  -- sqorm/init.lua, sqorm/env.lua
    SQORM_BUILD_TESTS = "OFF",
    SQORM_BUILD_EXAMPLES = "OFF",
    SQORM_BUILD_BENCH = "OFF",
    SQORM_INSTALL_C = "OFF",           -- C hosts: cmake --install (README.md, "Install")
  },
  -- The `sqorm` command (migrations) will be installed from here too:
  -- install = { bin = { sqorm = "bin/sqorm" } },
}
