-- generate's round trips on every dialect: models with associations
-- (belongs_to, has_many, belongs_to_many through a join table, with
-- on_delete / on_update) into a migration with their foreign keys and
-- indexes; an association added or removed later; ENUM columns in
-- migration files and added enum values; and a generated down that
-- restores changed and removed columns. Each compares the live schema
-- (the server catalogs, PRAGMAs on SQLite).
local H = require "spec.helper"
local sqorm = require "sqorm"
local T = sqorm.types

local function scratch_dir()
  local d = os.tmpname()
  os.remove(d)
  assert(os.execute("mkdir -p '" .. d .. "'"))
  return d
end

local function rmdir(d) os.execute("rm -rf '" .. d .. "'") end

local function write(dir, name, text, P)
  local f = assert(io.open(dir .. "/" .. name .. ".lua", "wb"))
  f:write((text:gsub("%$P", P)))
  f:close()
end

local function slurp(path)
  local f = assert(io.open(path, "rb"))
  local s = f:read("a")
  f:close()
  return s
end

local function kinds(ops)
  local out = {}
  for _, op in ipairs(ops) do
    if op.kind ~= "note" then out[#out + 1] = op.kind end
  end
  return out
end

local function count(list, v)
  local n = 0
  for _, x in ipairs(list) do if x == v then n = n + 1 end end
  return n
end

-- ------------------------------------------------------------------
-- the live schema, read from the catalogs
-- ------------------------------------------------------------------

local RULES = { CASCADE = "cascade", ["SET NULL"] = "set_null", RESTRICT = "restrict", ["NO ACTION"] = "no_action",
  a = "no_action", r = "restrict", c = "cascade", n = "set_null" }

-- { "col>ref_table.ref_col del=... upd=...", ... } sorted
local function fks(db, d, t)
  local out = {}
  if d.name == "sqlite" then
    for _, r in ipairs(db:query('PRAGMA foreign_key_list("' .. t .. '")')) do
      out[#out + 1] = ("%s>%s.%s del=%s upd=%s"):format(r.from, r.table, r.to, RULES[r.on_delete], RULES[r.on_update])
    end
  elseif d.name == "postgres" then
    for _, r in ipairs(db:query([[
      SELECT a.attname AS col, cf.relname AS ref, af.attname AS refcol, con.confdeltype::text AS del,
             con.confupdtype::text AS upd
      FROM pg_constraint con JOIN pg_class c ON c.oid = con.conrelid JOIN pg_class cf ON cf.oid = con.confrelid
      JOIN pg_attribute a ON a.attrelid = con.conrelid AND a.attnum = con.conkey[1]
      JOIN pg_attribute af ON af.attrelid = con.confrelid AND af.attnum = con.confkey[1]
      WHERE con.contype = 'f' AND c.relname = ? AND pg_table_is_visible(c.oid)]], { t })) do
      out[#out + 1] = ("%s>%s.%s del=%s upd=%s"):format(r.col, r.ref, r.refcol, RULES[r.del], RULES[r.upd])
    end
  else
    for _, r in ipairs(db:query([[
      SELECT k.COLUMN_NAME AS col, k.REFERENCED_TABLE_NAME AS ref, k.REFERENCED_COLUMN_NAME AS refcol,
             r.DELETE_RULE AS del, r.UPDATE_RULE AS upd
      FROM information_schema.KEY_COLUMN_USAGE k JOIN information_schema.REFERENTIAL_CONSTRAINTS r
        ON r.CONSTRAINT_SCHEMA = k.CONSTRAINT_SCHEMA AND r.CONSTRAINT_NAME = k.CONSTRAINT_NAME
       AND r.TABLE_NAME = k.TABLE_NAME
      WHERE k.TABLE_SCHEMA = DATABASE() AND k.TABLE_NAME = ? AND k.REFERENCED_TABLE_NAME IS NOT NULL]], { t })) do
      out[#out + 1] = ("%s>%s.%s del=%s upd=%s"):format(r.col, r.ref, r.refcol, RULES[r.del], RULES[r.upd])
    end
  end
  table.sort(out)
  return out
end

-- { "name:col,col[:unique]", ... } sorted (primary keys left out)
local function indexes(db, d, t)
  local out = {}
  if d.name == "sqlite" then
    for _, ix in ipairs(db:query('PRAGMA index_list("' .. t .. '")')) do
      if ix.origin ~= "pk" then
        local cols = {}
        for _, c in ipairs(db:query('PRAGMA index_info("' .. ix.name .. '")')) do cols[#cols + 1] = c.name end
        -- an autoindex (a UNIQUE in the table) has no name of its own
        local name = ix.origin == "c" and ix.name or "unique"
        out[#out + 1] = name .. ":" .. table.concat(cols, ",") .. (ix.unique == 1 and ":unique" or "")
      end
    end
  elseif d.name == "postgres" then
    for _, r in ipairs(db:query([[
      SELECT ic.relname AS name, i.indisunique AS uniq,
             (SELECT string_agg(a.attname, ',' ORDER BY k.n) FROM unnest(i.indkey) WITH ORDINALITY k(attnum, n)
              JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum) AS cols
      FROM pg_index i JOIN pg_class c ON c.oid = i.indrelid JOIN pg_class ic ON ic.oid = i.indexrelid
      WHERE c.relname = ? AND NOT i.indisprimary AND pg_table_is_visible(c.oid)]], { t })) do
      local uniq = r.uniq == true or r.uniq == "t" or r.uniq == 1
      out[#out + 1] = (uniq and "unique" or r.name) .. ":" .. r.cols .. (uniq and ":unique" or "")
    end
  else
    local by, order = {}, {}
    for _, r in ipairs(db:query([[
      SELECT INDEX_NAME AS name, COLUMN_NAME AS col, NON_UNIQUE AS nu FROM information_schema.STATISTICS
      WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = ? AND INDEX_NAME <> 'PRIMARY'
      ORDER BY INDEX_NAME, SEQ_IN_INDEX]], { t })) do
      if not by[r.name] then
        by[r.name] = { cols = {}, unique = tonumber(r.nu) == 0 }
        order[#order + 1] = r.name
      end
      table.insert(by[r.name].cols, r.col)
    end
    for _, n in ipairs(order) do
      local ix = by[n]
      out[#out + 1] = (ix.unique and "unique" or n) .. ":" .. table.concat(ix.cols, ",") .. (ix.unique and ":unique" or "")
    end
  end
  table.sort(out)
  return out
end

-- { "name type null default", ... } in column order
local function columns(db, d, t)
  local out = {}
  if d.name == "sqlite" then
    for _, r in ipairs(db:query('PRAGMA table_info("' .. t .. '")')) do
      out[#out + 1] = ("%s %s %s %s"):format(r.name, r.type, r.notnull == 1 and "not-null" or "null",
        tostring(r.dflt_value))
    end
  elseif d.name == "postgres" then
    for _, r in ipairs(db:query([[
      SELECT column_name AS name, data_type AS ty, udt_name AS udt, character_maximum_length AS len,
             is_nullable AS nul, column_default AS dflt
      FROM information_schema.columns WHERE table_schema = current_schema() AND table_name = ?
      ORDER BY ordinal_position]], { t })) do
      out[#out + 1] = ("%s %s/%s(%s) %s %s"):format(r.name, r.ty, r.udt, tostring(r.len), r.nul, tostring(r.dflt))
    end
  else
    for _, r in ipairs(db:query([[
      SELECT COLUMN_NAME AS name, COLUMN_TYPE AS ty, IS_NULLABLE AS nul, COLUMN_DEFAULT AS dflt
      FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = ?
      ORDER BY ORDINAL_POSITION]], { t })) do
      out[#out + 1] = ("%s %s %s %s"):format(r.name, r.ty, r.nul, tostring(r.dflt))
    end
  end
  return out
end

-- SQLite's CHECK constraints live in the table's text
local function table_sql(db, t)
  local r = db:query("SELECT sql FROM sqlite_master WHERE type = 'table' AND name = ?", { t })
  return r[1] and r[1].sql or nil
end

local function schema(db, d, tables)
  local s = {}
  for _, t in ipairs(tables) do
    s[t] = { columns = columns(db, d, t), indexes = indexes(db, d, t), fks = fks(db, d, t) }
  end
  return s
end

local function has_table(db, t) return (pcall(db.query, db, "SELECT COUNT(*) AS n FROM " .. t)) end

-- ------------------------------------------------------------------

H.each_dialect(describe, function(d)
  local dir, P, url, dbs, sqlite_path

  local function open()
    local db = sqorm.connect(url)
    dbs[#dbs + 1] = db
    return db
  end

  local function migrator(db, opts)
    opts = opts or {}
    opts.dir, opts.table = dir, P .. "_migs"
    return sqorm.migrator(db, opts)
  end

  local function generate(db, name)
    local mg = migrator(db)
    local path, ops, notes = mg:generate(name, { models = db:models() })
    return path, ops, notes, mg
  end

  before_each(function()
    dir = scratch_dir()
    P = H.tname("gn")
    dbs = {}
    if d.name == "sqlite" then
      sqlite_path = os.tmpname()
      url = "sqlite://" .. sqlite_path
    else
      url = d.url
    end
  end)

  after_each(function()
    local db = sqorm.connect(url)
    local ok, list = pcall(db.query, db, d.name == "sqlite" and "SELECT name FROM sqlite_master WHERE type = 'table'"
      or d.name == "postgres" and "SELECT tablename AS name FROM pg_tables WHERE schemaname = current_schema()"
      or "SELECT TABLE_NAME AS name FROM information_schema.TABLES WHERE TABLE_SCHEMA = DATABASE()")
    if d.name == "mysql" then db:exec("SET FOREIGN_KEY_CHECKS = 0") end
    for _, r in ipairs(ok and list or {}) do
      if r.name:sub(1, #P) == P then
        pcall(db.exec, db, "DROP TABLE IF EXISTS " .. r.name .. (d.name == "postgres" and " CASCADE" or ""))
      end
    end
    if d.name == "mysql" then db:exec("SET FOREIGN_KEY_CHECKS = 1") end
    if d.name == "postgres" then
      for _, r in ipairs(db:query("SELECT typname FROM pg_type WHERE typname LIKE ?", { "enum_" .. P .. "%" })) do
        pcall(db.exec, db, 'DROP TYPE IF EXISTS "' .. r.typname .. '"')
      end
    end
    db:close()
    for _, x in ipairs(dbs) do if not x:is_closed() then x:close() end end
    rmdir(dir)
    if sqlite_path then os.remove(sqlite_path) end
    sqlite_path = nil
  end)

  -- guilds <- players (belongs_to, set_null / cascade), players <-> items
  -- through a join table (cascade); phase 2 adds items.maker_id -> players
  -- (an association over a column the model had already).
  local function define(db, phase)
    local Guild = db:define("guild", {
      { "id", T.INTEGER, primary_key = true, auto_increment = true },
      { "name", T.STRING(32), allow_null = false },
    }, { table_name = P .. "_guilds", timestamps = false })
    local Player = db:define("player", {
      { "id", T.INTEGER, primary_key = true, auto_increment = true },
      { "name", T.STRING(32), allow_null = false },
    }, { table_name = P .. "_players", timestamps = false })
    local Item = db:define("item", {
      { "id", T.INTEGER, primary_key = true, auto_increment = true },
      { "label", T.STRING(32) },
      { "maker_id", T.INTEGER },
    }, { table_name = P .. "_items", timestamps = false })
    Player:belongs_to(Guild, { as = "guild", foreign_key = "guild_id", on_delete = "set_null", on_update = "cascade" })
    Guild:has_many(Player, { as = "players", foreign_key = "guild_id", on_delete = "set_null", on_update = "cascade" })
    Player:belongs_to_many(Item, { as = "items", through = P .. "_player_items", foreign_key = "player_id",
      other_key = "item_id", on_delete = "cascade" })
    if phase >= 2 then
      Item:belongs_to(Player, { as = "maker", foreign_key = "maker_id", on_delete = "restrict", on_update = "cascade" })
    end
    return { Guild = Guild, Player = Player, Item = Item }
  end

  it("round-trips associations: foreign keys with their actions and indexes, added and removed later", function()
    local tables = { P .. "_guilds", P .. "_players", P .. "_items", P .. "_player_items" }
    local db = open()
    define(db, 1)
    -- from an empty database
    local path1, ops1 = generate(db, "create")
    assert.is_string(path1)
    assert.equal(4, count(kinds(ops1), "create_table"))
    local text1 = slurp(path1)
    assert.matches('on_delete = "set_null"', text1, 1, true)
    assert.matches('on_delete = "cascade"', text1, 1, true)
    local mg = migrator(db)
    assert.equal(1, #mg:up())
    -- nothing left to do, and sync agrees
    local again, left = generate(db, "again")
    assert.is_nil(again, "a second generate found: " .. table.concat(kinds(left or {}), ", "))
    db:sync { alter = true }
    local s1 = schema(db, d, tables)
    assert.same({ "guild_id>" .. P .. "_guilds.id del=set_null upd=cascade" }, s1[P .. "_players"].fks)
    local pj = s1[P .. "_player_items"].fks
    assert.same({ "item_id>" .. P .. "_items.id del=cascade upd=cascade",
      "player_id>" .. P .. "_players.id del=cascade upd=cascade" }, pj)
    assert.same({}, s1[P .. "_items"].fks)
    -- each key column is the first column of an index
    local function indexed(s, t, col)
      for _, ix in ipairs(s[t].indexes) do
        if ix:match(":" .. col .. "[,:]") or ix:match(":" .. col .. "$") then return true end
      end
      return false
    end
    assert.is_true(indexed(s1, P .. "_players", "guild_id"), table.concat(s1[P .. "_players"].indexes, " "))
    -- (player_id leads the join table's primary key: no index of its own)
    assert.is_true(indexed(s1, P .. "_player_items", "item_id"))
    -- the keys work: set_null and cascade
    db:exec("INSERT INTO " .. P .. "_guilds (name) VALUES (?)", { "g" })
    local gid = db:query("SELECT id FROM " .. P .. "_guilds")[1].id
    db:exec("INSERT INTO " .. P .. "_players (name, guild_id) VALUES (?, ?)", { "p", gid })
    db:exec("DELETE FROM " .. P .. "_guilds")
    assert.is_nil(db:query("SELECT guild_id FROM " .. P .. "_players")[1].guild_id)

    -- phase 2: an association over items.maker_id
    db:close()
    db = open()
    define(db, 2)
    local path2, ops2 = generate(db, "maker")
    assert.is_string(path2)
    local k2 = kinds(ops2)
    assert.equal(1, count(k2, "add_foreign_key"), table.concat(k2, ", "))
    assert.equal(0, count(k2, "create_table"))
    assert.equal(0, count(k2, "add_column"))
    assert.equal(1, #migrator(db):up())
    assert.is_nil((generate(db, "again2")))
    local s2 = schema(db, d, tables)
    assert.same({ "maker_id>" .. P .. "_players.id del=restrict upd=cascade" }, s2[P .. "_items"].fks)
    assert.is_true(indexed(s2, P .. "_items", "maker_id"))
    assert.same(s1[P .. "_players"], s2[P .. "_players"])

    -- phase 3: the association removed again
    db:close()
    db = open()
    define(db, 1)
    local path3, ops3 = generate(db, "no_maker")
    assert.is_string(path3)
    local k3 = kinds(ops3)
    assert.equal(1, count(k3, "remove_foreign_key"), table.concat(k3, ", "))
    assert.equal(0, count(k3, "remove_column"))
    assert.equal(1, #migrator(db):up())
    local s3 = schema(db, d, tables)
    assert.same({}, s3[P .. "_items"].fks)

    -- down, one at a time: each step gives back the schema before it
    mg = migrator(db)
    assert.equal(1, #mg:down())
    assert.same(s2[P .. "_items"].fks, schema(db, d, tables)[P .. "_items"].fks)
    assert.equal(1, #mg:down())
    local back = schema(db, d, tables)
    assert.same(s1[P .. "_items"].fks, back[P .. "_items"].fks)
    assert.same(s1[P .. "_items"].columns, back[P .. "_items"].columns)
    assert.same(s1[P .. "_players"], back[P .. "_players"])
    assert.same(s1[P .. "_player_items"], back[P .. "_player_items"])
    assert.equal(1, #mg:down())
    for _, t in ipairs(tables) do assert.is_false(has_table(db, t), t) end
  end)

  -- the values of an ENUM column as the server has them
  local function enum_of(db, t, col)
    if d.name == "mysql" then
      return db:query([[SELECT COLUMN_TYPE AS ty FROM information_schema.COLUMNS
        WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = ? AND COLUMN_NAME = ?]], { t, col })[1].ty
    elseif d.name == "postgres" then
      local out = {}
      for _, r in ipairs(db:query([[SELECT e.enumlabel AS v FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid
        JOIN pg_enum e ON e.enumtypid = a.atttypid WHERE c.relname = ? AND a.attname = ? AND pg_table_is_visible(c.oid)
        ORDER BY e.enumsortorder]], { t, col })) do out[#out + 1] = "'" .. r.v .. "'" end
      return "enum(" .. table.concat(out, ",") .. ")"
    else
      local sql = table_sql(db, t)
      local list = sql and sql:match('CHECK %("?' .. col .. '"? IN %(([^)]*)%)%)')
      return list and "enum(" .. list:gsub(", ", ",") .. ")" or nil
    end
  end

  local function enum_types(db)
    if d.name ~= "postgres" then return {} end
    local out = {}
    for _, r in ipairs(db:query("SELECT typname FROM pg_type WHERE typtype = 'e' AND typname LIKE ? ORDER BY typname",
      { "enum_" .. P .. "%" })) do out[#out + 1] = r.typname end
    return out
  end

  local function ins(db, t, cols, vals)
    local q = {}
    for i = 1, #vals do q[i] = "?" end
    return db:exec(("INSERT INTO %s (%s) VALUES (%s)"):format(t, cols, table.concat(q, ", ")), vals)
  end

  it("runs ENUM columns in migration files: create, add, change, add values; down drops what it made", function()
    write(dir, "001_create", [[
local T = require("sqorm").types
return {
  up = function(m)
    m:create_table("$P_items", {
      { "id", T.INTEGER, primary_key = true, auto_increment = true },
      { "rarity", T.ENUM{ "common", "rare" }, allow_null = false, default = "common" },
      { "kind", T.STRING(16) },
    })
  end,
  down = function(m) m:drop_table("$P_items") end,
}
]], P)
    write(dir, "002_more", [[
local T = require("sqorm").types
return {
  up = function(m)
    m:add_column("$P_items", "slot", T.ENUM{ "head", "hand" })
    m:change_column("$P_items", "kind", { T.ENUM{ "sword", "shield" } })
  end,
  down = function(m)
    m:change_column("$P_items", "kind", { T.STRING(16) })
    m:remove_column("$P_items", "slot")
  end,
}
]], P)
    write(dir, "003_values", [[
local T = require("sqorm").types
return {
  up = function(m)
    m:add_enum_values("$P_items", "rarity", { T.ENUM{ "common", "rare", "epic" }, allow_null = false,
      default = "common" })
  end,
  down = function() end,
}
]], P)
    local db = open()
    local t = P .. "_items"
    local mg = migrator(db)
    assert.same({ "001_create" }, mg:up { to = "001_create" })
    assert.equal("enum('common','rare')", enum_of(db, t, "rarity"))
    ins(db, t, "kind", { "sword" })
    ins(db, t, "rarity, kind", { "rare", "shield" })
    H.raises(function() ins(db, t, "rarity", { "legendary" }) end)
    assert.equal("common", db:query("SELECT rarity FROM " .. t .. " ORDER BY id")[1].rarity)
    local cols1 = columns(db, d, t)
    local types1 = enum_types(db)

    assert.same({ "002_more" }, mg:up { to = "002_more" })
    assert.equal("enum('head','hand')", enum_of(db, t, "slot"))
    assert.equal("enum('sword','shield')", enum_of(db, t, "kind"))
    local rows = db:query("SELECT kind, rarity FROM " .. t .. " ORDER BY id")
    assert.same({ { kind = "sword", rarity = "common" }, { kind = "shield", rarity = "rare" } }, rows)
    H.raises(function() ins(db, t, "kind", { "bow" }) end)
    ins(db, t, "slot, kind", { "head", "sword" })

    assert.same({ "003_values" }, mg:up())
    assert.equal("enum('common','rare','epic')", enum_of(db, t, "rarity"))
    ins(db, t, "rarity", { "epic" })
    assert.equal(4, #db:query("SELECT id FROM " .. t))
    if d.name == "postgres" then
      assert.same({ "enum_" .. t .. "_kind", "enum_" .. t .. "_rarity", "enum_" .. t .. "_slot" }, enum_types(db))
    end

    -- down: 002's down gives back 001's columns, and its types are gone
    assert.same({ "003_values" }, mg:down())
    assert.same({ "002_more" }, mg:down())
    if d.name == "mysql" then -- 003's down left the added value (the column's list)
      cols1[2] = cols1[2]:gsub("'rare'%)", "'rare','epic')")
    end
    assert.same(cols1, columns(db, d, t))
    assert.same(types1, enum_types(db))
    assert.same({ "001_create" }, mg:down())
    assert.is_false(has_table(db, t))
    assert.same({}, enum_types(db))
    -- and up again from nothing
    assert.equal(3, #mg:up())
    assert.equal("enum('common','rare','epic')", enum_of(db, t, "rarity"))
  end)

  it("generates ENUM columns and their added values; applying leaves no difference", function()
    local t = P .. "_chars"
    local function define_char(db, values)
      return db:define("char", {
        { "id", T.INTEGER, primary_key = true, auto_increment = true },
        { "class", T.ENUM(values), allow_null = false, default = "warrior" },
      }, { table_name = t, timestamps = false })
    end
    local db = open()
    define_char(db, { "warrior", "mage" })
    local path = generate(db, "chars")
    assert.matches('T.ENUM{ "warrior", "mage" }', slurp(path), 1, true)
    assert.equal(1, #migrator(db):up())
    assert.is_nil((generate(db, "again")))
    assert.equal("enum('warrior','mage')", enum_of(db, t, "class"))
    db:close()
    db = open()
    local Char = define_char(db, { "warrior", "mage", "rogue" })
    local path2, ops2 = generate(db, "rogue")
    assert.is_string(path2)
    assert.same({ "add_enum_values" }, kinds(ops2))
    assert.matches('m:add_enum_values("' .. t .. '", "class", { T.ENUM{ "warrior", "mage", "rogue" }', slurp(path2), 1,
      true)
    assert.equal(1, #migrator(db):up())
    assert.is_nil((generate(db, "again2")))
    assert.equal("enum('warrior','mage','rogue')", enum_of(db, t, "class"))
    Char:create { class = "rogue" }
    assert.equal(1, Char:count { where = { class = "rogue" } })
    -- down keeps the values (a comment says so), then drops the table
    local mg = migrator(db)
    assert.equal(1, #mg:down())
    assert.equal(1, #mg:down())
    assert.is_false(has_table(db, t))
    assert.same({}, enum_types(db))
  end)

  it("refuses a non-ENUM type in add_enum_values (usage, nothing sent)", function()
    write(dir, "001_bad", [[
local T = require("sqorm").types
return { up = function(m) m:add_enum_values("$P_x", "c", { T.STRING(10) }) end }
]], P)
    local db = open()
    H.raises_kind("usage", "expected a T.ENUM", function() migrator(db):up() end)
    assert.same({}, migrator(db):executed())
  end)

  it("a generated down changes columns back and re-adds removed ones; the schema is as before", function()
    local t = P .. "_hero"
    local function before(db)
      return db:define("hero", {
        { "id", T.INTEGER, primary_key = true, auto_increment = true },
        { "name", T.STRING(32), allow_null = false, default = "anon" },
        { "level", T.INTEGER, default = 5 },
        { "gold", T.DECIMAL(10, 2), allow_null = false },
        { "title", T.STRING(20), allow_null = false },
        { "class", T.ENUM{ "warrior", "mage" }, allow_null = false, default = "mage" },
        { "active", T.BOOLEAN, allow_null = false, default = true },
        { "note", T.TEXT },
        { "born", T.DATETIME },
      }, { table_name = t, timestamps = false })
    end
    local db = open()
    before(db)
    assert.is_string((generate(db, "hero")))
    assert.equal(1, #migrator(db):up())
    local cols0, ix0 = columns(db, d, t), indexes(db, d, t)
    local enum0 = enum_of(db, t, "class")
    db:exec("INSERT INTO " .. t .. " (gold, title) VALUES (?, ?)", { 1.5, "sir" })
    db:close()
    db = open()
    -- changed: name (longer, nullable, no default), level (BIGINT, no default), gold (DECIMAL(12,3));
    -- removed: title (NOT NULL, no default), class (ENUM), active, note, born
    db:define("hero", {
      { "id", T.INTEGER, primary_key = true, auto_increment = true },
      { "name", T.STRING(64) },
      { "level", T.BIGINT },
      { "gold", T.DECIMAL(12, 3), allow_null = false },
    }, { table_name = t, timestamps = false })
    -- the removed columns must hold no data for generate to drop them
    db:exec("DELETE FROM " .. t)
    local path, ops = generate(db, "slim")
    assert.is_string(path)
    local k = kinds(ops)
    assert.equal(3, count(k, "change_column"), table.concat(k, ", "))
    assert.equal(5, count(k, "remove_column"), table.concat(k, ", "))
    local text = slurp(path)
    assert.matches("its data is gone", text, 1, true)
    assert.not_matches("restore column", text, 1, true)
    assert.not_matches("back by hand", text, 1, true)
    assert.equal(1, #migrator(db):up())
    assert.is_nil((generate(db, "again")))
    db:exec("INSERT INTO " .. t .. " (name, gold) VALUES (?, ?)", { "x", 2 })
    -- down: the schema as it was (rows there get the zero of a NOT NULL column)
    assert.equal(1, #migrator(db):down())
    assert.same(cols0, columns(db, d, t))
    assert.same(ix0, indexes(db, d, t))
    assert.equal(enum0, enum_of(db, t, "class"))
    local row = db:query("SELECT name, title, class, active FROM " .. t)[1]
    assert.equal("x", row.name)
    assert.equal("", row.title)
    assert.equal("mage", row.class)
    -- and the first models find nothing to do again
    db:close()
    db = open()
    before(db)
    assert.is_nil((generate(db, "none")))
  end)
end)
