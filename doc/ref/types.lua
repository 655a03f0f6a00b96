--- Column types for `Db:define`. Those taking sizes are called:
-- `T.STRING(32)`, `T.DECIMAL(12, 2)`; used bare they take the defaults.
--
-- As Lua values: integers are Lua integers, FLOAT/DOUBLE floats, DECIMAL
-- exact strings, BOOLEAN booleans, DATE/DATETIME UTC strings
-- `YYYY-MM-DD[ HH:MM:SS[.ffffff]]` (epoch integers accepted on write),
-- BLOB binary-safe strings, UUID lower-case strings; NULL reads as nil.
-- @module sqorm.types
-- @usage
-- local T = sqorm.types
-- db:define("item", { { "id", T.INTEGER, primary_key = true },
--                     { "name", T.STRING(32) }, { "price", T.DECIMAL(12, 2) } })
local types = {}

--- INTEGER (MySQL INT): Lua integers.
-- @field INTEGER

--- BIGINT: 64-bit Lua integers.
-- @field BIGINT

--- SMALLINT.
-- @field SMALLINT

--- FLOAT (PostgreSQL REAL).
-- @field FLOAT

--- DOUBLE (PostgreSQL DOUBLE PRECISION).
-- @field DOUBLE

--- DECIMAL(p, s), default (10, 0): exact strings on every dialect
-- (SQLite stores the text).
-- @field DECIMAL

--- STRING(n): VARCHAR(n), default 255.
-- @field STRING

--- CHAR(n), default 1.
-- @field CHAR

--- TEXT.
-- @field TEXT

--- BOOLEAN (MySQL TINYINT(1)): booleans.
-- @field BOOLEAN

--- DATE: "YYYY-MM-DD".
-- @field DATE

--- DATETIME (PostgreSQL TIMESTAMP): UTC "YYYY-MM-DD HH:MM:SS".
-- @field DATETIME

--- BLOB (MySQL LONGBLOB, PostgreSQL BYTEA): binary-safe strings.
-- @field BLOB

--- UUID (CHAR(36); PostgreSQL UUID): a primary key without a value gets
-- a random v4.
-- @field UUID

--- JSON (PostgreSQL JSONB, MySQL JSON, SQLite TEXT with a json_valid
-- CHECK): any Lua value with a JSON form, converted in C both ways.
-- Tables with keys 1..n are arrays, with string keys objects (an empty
-- table is an object unless `sqorm.json_array()`); `sqorm.json_null` is
-- JSON null, `nil` / `sqorm.null` SQL NULL. Read back: arrays are tables
-- marked as arrays, numbers exact (an int64 stays an integer). Filter
-- with `sqorm.op.json(path, value_or_op)`. See docs/api.md "JSON".
-- @field JSON

--- ENUM{ "a", "b", ... }: one of the listed strings, checked before any
-- SQL (kind `validation` on writes, `usage` in a where). MySQL ENUM,
-- PostgreSQL a named type `enum_<table>_<column>`, SQLite TEXT with a
-- CHECK. `sync{ alter = true }` adds new values (twice without error).
-- @function ENUM
-- @tparam {string,...} values 1 to 1000 distinct strings of 1..63 bytes
-- @usage { "rarity", T.ENUM{ "common", "rare", "epic" }, default = "common" }

return types
