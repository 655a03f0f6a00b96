-- SQL injection corpus (issue 16, item 5): every payload of
-- spec/injection_corpus.lua goes through every input that reaches SQL -
-- values (create, where, raw binds, BLOBs), where keys, operators as they
-- come from decoded JSON, identifiers (model, table, column and index
-- names in define, aliases in attributes, order directions, group and
-- having keys, fn columns) - on every dialect. Each is either stored and
-- read back exactly as data, or refused with kind usage before any SQL
-- is sent (a value that is no text for a text column - a NUL byte,
-- invalid UTF-8 - is kind validation, also before any SQL; one the
-- server's encoding refuses would be a refused value, never run). A sentinel table
-- that the payloads aim at proves nothing executed. Prints the figures.
-- Also: include names and include items' `as`, association names used
-- as include aliases end to end (a to-one JOIN and a to-many batch),
-- JSON paths of op.json (strings and lists; the SQL must be the same
-- text whatever the path: the path is always bound) and JSON keys and
-- values, and the names migration operations take (create_table,
-- add_column, rename_column, add_index, rename_table through a migrator).
local sqorm = require "sqorm"
local H = require "spec.helper"
local T, fn, op = sqorm.types, sqorm.fn, sqorm.op

local corpus = dofile("spec/injection_corpus.lua")

local totals = { tried = 0, data = 0, usage = 0, validation = 0, value_refused = 0, executed = 0 }

H.each_dialect(describe, function(d)
  describe("injection corpus", function()
    it("stores each payload as data or refuses it with kind usage; nothing executes", function()
      local db = sqorm.connect(d.url)
      local f = { tried = 0, data = 0, usage = 0, validation = 0, value_refused = 0, executed = 0 }
      local problems = {}
      local function problem(p, path, msg)
        problems[#problems + 1] = ("%s %q: %s"):format(path, p, msg)
      end

      db:exec("DROP TABLE IF EXISTS sentinel")
      db:exec("CREATE TABLE sentinel (v INTEGER)")
      db:exec("INSERT INTO sentinel (v) VALUES (42)")
      local function sentinel_intact()
        local ok, rows = pcall(db.query, db, "SELECT count(*) AS n, sum(v) AS s FROM sentinel")
        return ok and rows[1].n == 1 and tonumber(rows[1].s) == 42
      end

      local Item = db:define("inj_item", {
        { "id", T.INTEGER, primary_key = true, auto_increment = true },
        { "s", T.TEXT },
        { "b", T.BLOB },
      }, { table_name = H.tname("inj_items"), timestamps = false })
      Item:sync{ force = true }

      -- JSON: a db whose logging keeps the SQL text (binds are not logged)
      local logged = {}
      local jdb = sqorm.connect(d.url, { logging = function(m) logged[#logged + 1] = m end })
      local JItem = jdb:define("inj_json", {
        { "id", T.INTEGER, primary_key = true, auto_increment = true },
        { "j", T.JSON },
      }, { table_name = H.tname("inj_json"), timestamps = false })
      JItem:sync{ force = true }
      -- the SELECT text op.json renders for a neutral path
      local function json_sql(path)
        logged = {}
        JItem:find_all{ where = { j = op.json(path, "v") } }
        return logged[#logged]
      end
      local neutral_sql, neutral_list_sql = json_sql("k"), json_sql({ "k", 1 })

      -- include: a parent with an association "kids"
      local Par = db:define("inj_par", { { "id", T.INTEGER, primary_key = true }, { "name", T.STRING(20) } },
        { table_name = H.tname("inj_par"), timestamps = false })
      local Kid = db:define("inj_kid", { { "id", T.INTEGER, primary_key = true }, { "name", T.STRING(20) } },
        { table_name = H.tname("inj_kid"), timestamps = false })
      Par:has_many(Kid, { as = "kids", foreign_key = "par_id" })
      db:sync{ force = true }

      -- migrations: one file whose up / down run what INJ says
      local mdir = os.tmpname()
      os.remove(mdir)
      os.execute("mkdir -p '" .. mdir .. "'")
      do
        local fh = assert(io.open(mdir .. "/001_inj.lua", "w"))
        fh:write("return { up = function(m) return INJ.up(m) end, down = function(m) return INJ.down(m) end }\n")
        fh:close()
      end
      local mg = sqorm.migrator(db, { dir = mdir, table = "sqorm_inj_migrations" })
      local mb1, mb2, mb3 = H.tname("inj_mb1"), H.tname("inj_mb2"), H.tname("inj_mb3")
      local function migration_tables()
        for _, t in ipairs({ mb1, mb2, mb3 }) do db:exec(("DROP TABLE IF EXISTS %s"):format(t)) end
        db:exec(("CREATE TABLE %s (id INTEGER PRIMARY KEY, c INTEGER)"):format(mb1))
        db:exec(("CREATE TABLE %s (id INTEGER PRIMARY KEY, c INTEGER)"):format(mb2))
      end
      migration_tables()
      -- One migration per payload takes it as every name: create_table(p),
      -- add_column(mb1, p), rename_column(mb2, "c", p), rename_table(p,
      -- mb3) (the table it made: p as the old name; the down renames it
      -- back: p as the new one), add_index(mb1, { "c" }, { name = p }) -
      -- each under pcall, so one refusal leaves the others running - and a
      -- down that undoes what worked (remove_index, rename_table,
      -- drop_table, rename_column, remove_column with p). Returns per
      -- operation true or its error, and per operation whether the
      -- names worked end to end in between.
      local MIG_OPS = { "create_table", "add_column", "rename_column", "rename_table", "add_index" }
      local function migrate(p)
        local res, checks = {}, {}
        local function try(name, op_fn)
          local ok, e = pcall(op_fn)
          res[name] = ok or e
          return ok
        end
        INJ = { -- luacheck: ignore
          up = function(m)
            local made = try("create_table", function()
              m:create_table(p, { { "id", T.INTEGER, primary_key = true }, { "v", T.INTEGER } })
            end)
            try("add_column", function() m:add_column(mb1, p, T.STRING(20)) end)
            try("rename_column", function() m:rename_column(mb2, "c", p) end)
            if made then try("rename_table", function() m:rename_table(p, mb3) end)
            else res.rename_table = res.create_table end
            try("add_index", function() m:add_index(mb1, { "c" }, { name = p }) end)
          end,
          down = function(m)
            if res.add_index == true then m:remove_index(mb1, p) end
            if res.rename_table == true then m:rename_table(mb3, p) end
            if res.create_table == true then m:drop_table(p) end
            if res.rename_column == true then m:rename_column(mb2, p, "c") end
            if res.add_column == true then m:remove_column(mb1, p) end
          end,
        }
        local okup, eup = pcall(mg.up, mg)
        if not okup then
          for _, o in ipairs(MIG_OPS) do res[o] = eup end
        end
        local function check(name, check_fn)
          local ok, e = pcall(check_fn)
          checks[name] = ok or e
        end
        if res.rename_table == true then
          check("rename_table", function()
            local M = db:define("inj_mt", { { "id", T.INTEGER, primary_key = true }, { "v", T.INTEGER } },
              { table_name = mb3, timestamps = false })
            M:create{ id = 3, v = 4 }
            assert(M:find_by_pk(3).v == 4, "the table did not round-trip")
            M:destroy{ where = { id = 3 } }
          end)
          checks.create_table = checks.rename_table
        end
        if res.add_column == true then
          check("add_column", function()
            local M = db:define("inj_mc", { { "id", T.INTEGER, primary_key = true }, { "c", T.INTEGER },
              { p, T.STRING(20) } }, { table_name = mb1, timestamps = false })
            M:create{ id = 5, [p] = "w" }
            assert(M:find_all{ raw = true, where = { [p] = "w" } }[1][p] == "w", "the column did not round-trip")
            M:destroy{ where = { id = 5 } }
          end)
        end
        if res.rename_column == true then
          check("rename_column", function()
            local M = db:define("inj_mr", { { "id", T.INTEGER, primary_key = true }, { p, T.INTEGER } },
              { table_name = mb2, timestamps = false })
            M:create{ id = 6, [p] = 7 }
            assert(M:find_all{ raw = true, where = { [p] = 7 } }[1][p] == 7, "the renamed column did not round-trip")
            M:destroy{ where = { id = 6 } }
          end)
        end
        checks.add_index = true
        local okd, ed = pcall(mg.down, mg)
        INJ = nil -- luacheck: ignore
        if okup and not okd then
          -- start again from scratch for the next payload
          pcall(db.exec, db, "DELETE FROM sqorm_inj_migrations")
          migration_tables()
          for _, o in ipairs(MIG_OPS) do if res[o] == true then checks[o] = ed end end
        end
        return res, checks
      end

      -- A refusal of a value by the server's encoding (not by sqorm):
      -- invalid UTF-8 in text (MySQL utf8mb4, PostgreSQL), NUL in text
      -- (PostgreSQL). It is a refused value, not SQL.
      local function value_refused(e)
        return e.kind == "database"
      end

      -- Runs one path: fn returns true when the payload came back as data.
      -- want_usage: only a usage refusal is right (names, keys, operators).
      local function path(p, name, want_usage, run)
        f.tried = f.tried + 1
        local ok, r = pcall(run)
        if ok then
          if want_usage then
            problem(p, name, "accepted where only a refusal is right")
          elseif r == true then
            f.data = f.data + 1
          else
            problem(p, name, "did not read back as data: " .. tostring(r))
          end
        elseif not sqorm.is_error(r) then
          problem(p, name, "raised a non-sqorm error: " .. tostring(r))
        elseif r.kind == "usage" then
          f.usage = f.usage + 1
        elseif not want_usage and r.kind == "validation" then
          -- a value that is no text for a text column (NUL, invalid UTF-8): refused before any SQL
          f.validation = f.validation + 1
        elseif not want_usage and value_refused(r) then
          f.value_refused = f.value_refused + 1
          if os.getenv("SQORM_INJECTION_VERBOSE") then print(("%s %q: %s %s"):format(name, p, r.kind, r.message)) end
        else
          problem(p, name, "refused with kind " .. r.kind .. ": " .. r.message)
        end
      end

      -- An identifier path: either it works end to end (the name round
      -- trips) or it is refused with kind usage.
      local function ident(p, name, run)
        path(p, name, false, function()
          local ok, r = pcall(run)
          if ok then return r end
          if sqorm.is_error(r) and r.kind ~= "usage" then
            error(sqorm.error("internal", ("kind %s: %s"):format(r.kind, r.message)))
          end
          error(r)
        end)
      end

      for _, p in ipairs(corpus) do
        -- values
        path(p, "create value", false, function()
          local it = Item:create{ s = p, b = p }
          local back = Item:find_by_pk(it.id)
          return back.s == p and back.b == p or ("s=%q b=%q"):format(tostring(back.s), tostring(back.b))
        end)
        path(p, "blob value", false, function()
          local it = Item:create{ b = p }
          return Item:find_by_pk(it.id).b == p
        end)
        path(p, "where value", false, function()
          for _, row in ipairs(Item:find_all{ where = { s = p } }) do
            if row.s ~= p then return "found " .. tostring(row.s) end
          end
          return true
        end)
        path(p, "where IN list", false, function()
          Item:find_all{ where = { s = { p, "x" } } }
          return true
        end)
        path(p, "raw bind", false, function()
          local rows = db:query("SELECT ? AS x", { p })
          return rows[1].x == p or ("x=%q"):format(tostring(rows[1].x))
        end)
        path(p, "named bind", false, function()
          local rows = db:query("SELECT :v AS x", { v = p })
          return rows[1].x == p
        end)
        -- keys and operators from decoded data
        path(p, "where key", true, function() return Item:find_all{ where = { [p] = 1 } } end)
        path(p, "operator key", true, function() return Item:find_all{ where = { s = { [p] = 1 } } } end)
        path(p, "$gt with payload", true, function() return Item:find_all{ where = { s = { ["$gt"] = p } } } end)
        path(p, "update key", true, function() return Item:update({ [p] = 1 }, { where = { id = 1 } }) end)
        -- identifiers that must name a column
        path(p, "attribute", true, function() return Item:find_all{ attributes = { p } } end)
        path(p, "order column", true, function() return Item:find_all{ order = { p } } end)
        path(p, "order direction", true, function() return Item:find_all{ order = { { "s", p } } } end)
        path(p, "group", true, function() return Item:count{ group = { p } } end)
        path(p, "having key", true, function() return Item:count{ group = { "s" }, having = { [p] = 1 } } end)
        path(p, "fn column", true, function() return Item:find_all{ attributes = { fn.sum(p) } } end)
        path(p, "aggregate column", true, function() return Item:sum(p) end)
        -- identifiers sqorm quotes: work end to end, or usage
        ident(p, "alias", function()
          local rows = Item:find_all{ attributes = { fn.count("id", p) }, raw = true }
          return rows[1][p] ~= nil
        end)
        ident(p, "column name", function()
          local M = db:define("inj_col", { { "id", T.INTEGER, primary_key = true }, { p, T.STRING(80) } },
            { table_name = H.tname("inj_c"), timestamps = false })
          M:sync{ force = true }
          local okc, e = pcall(function()
            M:create{ id = 1, [p] = "v" }
            local row = M:find_all{ raw = true, where = { [p] = "v" } }[1]
            assert(row and row[p] == "v", "the column did not round-trip")
          end)
          M:drop()
          if not okc then error(e) end
          return true
        end)
        ident(p, "table name", function()
          local M = db:define("inj_tab", { { "id", T.INTEGER, primary_key = true } },
            { table_name = p, timestamps = false })
          M:sync{ force = true }
          local okc, e = pcall(function()
            M:create{ id = 7 }
            assert(M:count() == 1 and M:find_by_pk(7), "the table did not round-trip")
          end)
          M:drop()
          if not okc then error(e) end
          return true
        end)
        ident(p, "model name", function()
          local M = db:define(p, { { "id", T.INTEGER, primary_key = true } },
            { table_name = H.tname("inj_m"), timestamps = false })
          return db:model(p) == M
        end)
        ident(p, "index name", function()
          local M = db:define("inj_idx", { { "id", T.INTEGER, primary_key = true }, { "s", T.STRING(20) } },
            { table_name = H.tname("inj_i"), timestamps = false, indexes = { { fields = { "s" }, name = p } } })
          M:sync{ force = true }
          M:drop()
          return true
        end)
        -- include names and aliases
        path(p, "include name", true, function() return Par:find_all{ include = { p } } end)
        path(p, "include item as", true, function() return Par:find_all{ include = { { as = p } } } end)
        path(p, "include item name", true, function() return Par:find_all{ include = { { p, limit = 1 } } } end)
        path(p, "op.has name", true, function() return Par:find_all{ where = { op.has(p) } } end)
        ident(p, "association alias", function()
          local P2 = db:define("inj_ap", { { "id", T.INTEGER, primary_key = true }, { "name", T.STRING(20) } },
            { table_name = H.tname("inj_ap"), timestamps = false })
          local K2 = db:define("inj_ak", { { "id", T.INTEGER, primary_key = true }, { "name", T.STRING(20) } },
            { table_name = H.tname("inj_ak"), timestamps = false })
          K2:belongs_to(P2, { as = p, foreign_key = "par_id", constraints = false })
          P2:has_many(K2, { as = p, foreign_key = "par_id", constraints = false })
          P2:sync{ force = true }
          K2:sync{ force = true }
          local okc, e = pcall(function()
            P2:create{ id = 1, name = "par" }
            K2:create{ id = 2, name = "kid", par_id = 1 }
            local k = K2:find_all{ include = { p } }[1]          -- to-one: a JOIN under the alias
            assert(k and k[p] and k[p].name == "par", "the to-one include did not round-trip")
            local kr = K2:find_all{ include = { p }, raw = true }[1]
            assert(kr and kr[p] and kr[p].name == "par", "the raw to-one include did not round-trip")
            local par = P2:find_all{ include = { { p, where = { name = "kid" } } } }[1]  -- to-many: a batch
            assert(par and #par[p] == 1 and par[p][1].name == "kid", "the to-many include did not round-trip")
            assert(#K2:find_all{ order = { { p .. ".name", "desc" } }, include = { p } } == 1)
          end)
          K2:drop()
          P2:drop()
          if not okc then error(e, 0) end
          return true
        end)
        -- JSON paths (values, always bound: the SQL text is the same for any path), keys and values
        path(p, "json path", false, function()
          local sql = json_sql(p)
          return sql == neutral_sql or ("the SQL changed with the path: " .. tostring(sql))
        end)
        path(p, "json path list", false, function()
          local sql = json_sql({ p, 1 })
          return sql == neutral_list_sql or ("the SQL changed with the path: " .. tostring(sql))
        end)
        path(p, "json value", false, function()
          local it = JItem:create{ j = { k = p } }
          local back = JItem:find_by_pk(it.id)
          local found = JItem:find_all{ where = { j = op.json("k", p) } }
          local hit = false
          for _, r in ipairs(found) do hit = hit or r.id == it.id end
          -- SQLite's json_extract cuts a string at U+0000: stored and read
          -- back exactly, but op.json can't find it there (docs/api.md)
          if d.name == "sqlite" and p:find("\0", 1, true) then hit = true end
          return (back.j.k == p and hit) or ("j.k=%q, found %s"):format(tostring(back.j.k), tostring(hit))
        end)
        path(p, "json key", false, function()
          local it = JItem:create{ j = { [p] = "v" } }
          return JItem:find_by_pk(it.id).j[p] == "v"
        end)
        -- migration operation names: they work end to end (and are undone by the down), or usage
        local mres, mchecks = migrate(p)
        for _, o in ipairs(MIG_OPS) do
          ident(p, "migration " .. o, function()
            if mres[o] ~= true then error(mres[o], 0) end
            if mchecks[o] ~= true then error(mchecks[o], 0) end
            return true
          end)
        end
        if not sentinel_intact() then
          f.executed = f.executed + 1
          problem(p, "sentinel", "the sentinel table changed: a payload executed")
          db:exec("DROP TABLE IF EXISTS sentinel")
          db:exec("CREATE TABLE sentinel (v INTEGER)")
          db:exec("INSERT INTO sentinel (v) VALUES (42)")
        end
      end
      assert.is_true(sentinel_intact())
      Item:drop()
      JItem:drop()
      jdb:close()
      Kid:drop()
      Par:drop()
      for _, t in ipairs({ mb1, mb2, mb3 }) do db:exec(("DROP TABLE IF EXISTS %s"):format(t)) end
      db:exec("DROP TABLE IF EXISTS sqorm_inj_migrations")
      os.execute("rm -rf '" .. mdir .. "'")
      db:exec("DROP TABLE sentinel")
      db:close()
      print(("\ninjection corpus [%s]: %d payloads, %d tries: %d stored and read back as data, %d refused with kind usage, "
        .. "%d values refused with kind validation, %d values refused by the server, %d executed"):format(d.name, #corpus,
        f.tried, f.data, f.usage, f.validation, f.value_refused, f.executed))
      for k, v in pairs(f) do totals[k] = totals[k] + v end
      assert(#problems == 0, table.concat(problems, "\n"))
      assert.are.equal(0, f.executed)
    end)
  end)
end)

-- One statement per call (issue 16, item 6; spec/raw_sql_statements_spec.lua
-- has the general cases): the dialects' own ways of hiding a second
-- statement - backslash escapes, MySQL's executable comments and '#',
-- PostgreSQL's dollar quotes and E'' strings - inside and outside
-- transactions and through a transaction-mode pooler.
H.each_dialect(describe, function(d)
  describe("one statement per call, dialect tricks", function()
    local function check(db)
      db:exec("DROP TABLE IF EXISTS sentinel2")
      db:exec("CREATE TABLE sentinel2 (v INTEGER)")
      db:exec("INSERT INTO sentinel2 (v) VALUES (42)")
      local function intact()
        local r = db:query("SELECT count(*) AS n, sum(v) AS s FROM sentinel2")
        return r[1].n == 1 and tonumber(r[1].s) == 42
      end
      local refused = {
        "SELECT 1; DELETE FROM sentinel2",
        "SELECT 1;DELETE FROM sentinel2;",
        "SELECT 1 -- x\n; DELETE FROM sentinel2",
        "SELECT 1 /* ; */; DELETE FROM sentinel2",
        "SELECT ?; DELETE FROM sentinel2",
        "UPDATE sentinel2 SET v = 0; SELECT 1",
      }
      local data = {}
      if d.name == "mysql" then
        refused[#refused + 1] = "SELECT 1 /*! ; DELETE FROM sentinel2 */"
        refused[#refused + 1] = "SELECT 1 # x\n; DELETE FROM sentinel2"
        data[#data + 1] = { "SELECT 'a\\'; DELETE FROM sentinel2' AS x", "a'; DELETE FROM sentinel2" }
        data[#data + 1] = { "SELECT 'a'';DELETE FROM sentinel2' AS x", "a';DELETE FROM sentinel2" }
      elseif d.name == "postgres" then
        refused[#refused + 1] = "SELECT $1; DELETE FROM sentinel2"
        data[#data + 1] = { "SELECT $$;DELETE FROM sentinel2$$ AS x", ";DELETE FROM sentinel2" }
        data[#data + 1] = { "SELECT $q$ $$; DELETE FROM sentinel2 $q$ AS x", " $$; DELETE FROM sentinel2 " }
        data[#data + 1] = { "SELECT E'\\'; DELETE FROM sentinel2' AS x", "'; DELETE FROM sentinel2" }
      else
        refused[#refused + 1] = "SELECT 'a\\'; DELETE FROM sentinel2; --'"
        data[#data + 1] = { "SELECT 'a'';DELETE FROM sentinel2' AS x", "a';DELETE FROM sentinel2" }
      end
      local n = 0
      for _, sql in ipairs(refused) do
        for _, call in ipairs({ db.exec, db.query }) do
          H.raises_kind("usage", "statements", call, db, sql, sql:find("?", 1, true) and { 1 } or nil)
          n = n + 1
          db:transaction(function()
            H.raises_kind("usage", "statements", call, db, sql, sql:find("?", 1, true) and { 1 } or nil)
          end)
          local tx = db:begin()
          H.raises_kind("usage", "statements", call, db, sql, sql:find("?", 1, true) and { 1 } or nil)
          tx:rollback()
          assert(intact(), "ran: " .. sql)
        end
      end
      for _, c in ipairs(data) do
        assert.are.equal(c[2], db:query(c[1])[1].x)
        assert(intact(), "ran: " .. c[1])
      end
      db:exec("DROP TABLE sentinel2")
      return n
    end

    it("refuses a hidden second statement with kind usage and runs nothing", function()
      local db = sqorm.connect(d.url)
      check(db)
      db:close()
    end)

    if d.name == "postgres" then
      it("also in pooler mode (prepare = false) and through PgBouncer", function()
        local db = sqorm.connect(d.url, { prepare = false })
        check(db)
        db:close()
        local url = H.pgbouncer_url()
        if url then
          db = sqorm.connect(url, { prepare = false })
          check(db)
          db:close()
        elseif H.has_servers("pgbouncer") then
          error("SQORM_TEST_PGBOUNCER_URL missing")
        end
      end)
    end
  end)
end)
