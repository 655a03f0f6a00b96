-- examples/quickstart.lua - sqorm's models on embedded SQLite: the
-- getting-started flow of Sequelize (define, sync, create, find_all,
-- update where, destroy where), with every statement printed as it runs
-- (logging = print).
--
--   lua5.4 examples/quickstart.lua
--
-- Prints, besides the "Executing (default): ..." lines:
--   Jane's auto-generated ID: 1
--   All users: 3
--     1 Jane Doe / 2 John (no last name) / 3 Alice Smith
--   Set the last name of 1 user(s) without one to Doe
--   Destroyed 1 user(s) named Jane
--   Remaining: John Doe, Alice Smith
--   first_name is required -> validation error: first_name: cannot be null
local sqorm = require "sqorm"
local T = sqorm.types

local db <close> = sqorm.connect("sqlite::memory:", { logging = print })

-- A model: table "users" (the plural of "user"), an id primary key and
-- created_at / updated_at come by default.
local User = db:define("user", {
  { "first_name", T.STRING, allow_null = false },
  { "last_name", T.STRING },
})

-- CREATE TABLE (dropping it first when it exists)
User:sync{ force = true }

local jane = User:create{ first_name = "Jane", last_name = "Doe" }
print("Jane's auto-generated ID: " .. jane.id)
User:create{ first_name = "John" }
User:create{ first_name = "Alice", last_name = "Smith" }

local users = User:find_all{ order = { "id" } }
print("All users: " .. #users)
for _, u in ipairs(users) do
  print(("  %d %s %s"):format(u.id, u.first_name, u.last_name or "(no last name)"))
end

-- UPDATE ... WHERE last_name IS NULL
local n = User:update({ last_name = "Doe" }, { where = { last_name = sqorm.null } })
print(("Set the last name of %d user(s) without one to Doe"):format(n))

-- DELETE ... WHERE first_name = 'Jane'
n = User:destroy{ where = { first_name = "Jane" } }
print(("Destroyed %d user(s) named Jane"):format(n))

local names = {}
for _, u in ipairs(User:find_all{ order = { "id" } }) do names[#names + 1] = u.first_name .. " " .. u.last_name end
print("Remaining: " .. table.concat(names, ", "))

-- Validation runs before any SQL: nothing is sent for this one.
local ok, err = pcall(User.create, User, { last_name = "Nobody" })
assert(not ok)
print(("first_name is required -> %s error: %s"):format(err.kind,
  err.fields and ("first_name: " .. err.fields.first_name) or err.message))
