-- sqorm.cli: the `sqorm` command (bin/sqorm runs cli.main(arg)).
--
--   sqorm migrate up [--to NAME]
--   sqorm migrate down [--step N | --to NAME|0]
--   sqorm migrate status
--   sqorm migrate create NAME
--   sqorm migrate generate NAME --models MODULE
-- options: --url URL (else DATABASE_URL, else the TIDB_* variables),
--          --dir DIR (migrations), --table NAME (sqorm_migrations),
--          --allow-out-of-order, --lock-timeout SECONDS, --quiet, --help
-- Exit codes: 0 ok, 1 failure, 2 bad arguments.
local cli = {}

local USAGE = [[
usage: sqorm migrate up [--to NAME]
       sqorm migrate down [--step N | --to NAME|0]
       sqorm migrate status
       sqorm migrate create NAME
       sqorm migrate generate NAME --models MODULE
options:
  --url URL             the database (else DATABASE_URL, else the TIDB_* variables)
  --dir DIR             the migrations directory (default: migrations)
  --table NAME          the bookkeeping table (default: sqorm_migrations)
  --allow-out-of-order  apply pending migrations older than the newest applied one
  --lock-timeout SECS   how long to wait for another run's lock (default: 60)
  --quiet               no progress lines
  --help                this text
exit codes: 0 ok, 1 failure, 2 bad arguments]]

local VALUED = { ["--url"] = "url", ["--dir"] = "dir", ["--table"] = "table", ["--to"] = "to", ["--step"] = "step",
  ["--models"] = "models", ["--lock-timeout"] = "lock_timeout" }
local FLAGS = { ["--allow-out-of-order"] = "allow_out_of_order", ["--quiet"] = "quiet", ["--help"] = "help",
  ["-h"] = "help" }

-- Parses argv into { words..., opts }; returns nil, message on bad input.
function cli.parse(argv)
  local words, o = {}, {}
  local i = 1
  while i <= #argv do
    local a = argv[i]
    local k, v = a:match("^(%-%-[%w%-]+)=(.*)$")
    if k then a = k end
    if VALUED[a] then
      if not v then
        i = i + 1
        v = argv[i]
        if v == nil then return nil, a .. " needs a value" end
      end
      o[VALUED[a]] = v
    elseif FLAGS[a] then
      if v then return nil, a .. " takes no value" end
      o[FLAGS[a]] = true
    elseif a:sub(1, 1) == "-" and a ~= "-" then
      return nil, "unknown option " .. a
    else
      words[#words + 1] = a
    end
    i = i + 1
  end
  return words, o
end

local function connect(sqorm, o, getenv)
  if o.url then return sqorm.connect(o.url) end
  local url = getenv("DATABASE_URL")
  if url and url ~= "" then return sqorm.connect(url) end
  if getenv("TIDB_HOST") then return sqorm.connect(sqorm.env.tidb()) end
  return nil
end

-- cli.main(argv, out, err, getenv) -> exit code
function cli.main(argv, out, errout, getenv)
  out = out or io.stdout
  errout = errout or io.stderr
  getenv = getenv or os.getenv
  local function say(s) out:write(s, "\n") out:flush() end
  local function bad(msg)
    errout:write("sqorm: ", msg, "\n", USAGE, "\n")
    return 2
  end
  local words, o = cli.parse(argv)
  if not words then return bad(o) end
  if o.help then
    say(USAGE)
    return 0
  end
  if words[1] ~= "migrate" then return bad(words[1] and ("unknown command " .. words[1]) or "no command") end
  local verb = words[2]
  local arity = { up = 2, down = 2, status = 2, create = 3, generate = 3 }
  if not verb or not arity[verb] then return bad(verb and ("unknown migrate command " .. verb) or "migrate what?") end
  if #words ~= arity[verb] then
    return bad(verb .. ": " .. (#words < arity[verb] and "needs a NAME" or "too many arguments"))
  end
  -- which options go with which verb
  local allowed = {
    up = { to = true }, down = { to = true, step = true }, status = {}, create = {}, generate = { models = true },
  }
  for _, k in ipairs { "to", "step", "models" } do
    if o[k] and not allowed[verb][k] then return bad(("--%s does not go with %s"):format(k, verb)) end
  end
  local step
  if o.step then
    step = math.tointeger(tonumber(o.step))
    if not step or step < 1 then return bad("--step must be a positive integer") end
    if o.to then return bad("--step and --to exclude each other") end
  end
  local lock_timeout
  if o.lock_timeout then
    lock_timeout = tonumber(o.lock_timeout)
    if not lock_timeout or lock_timeout < 0 then return bad("--lock-timeout must be a number of seconds") end
  end
  if verb == "generate" and not o.models then return bad("generate needs --models MODULE") end
  local name = words[3]
  if (verb == "create" or verb == "generate") and not name:match("^[%w_]+$") then
    return bad("NAME must be letters, digits and _")
  end
  if o.to and not (o.to == "0" and verb == "down") and not o.to:match("^[%w_][%w_%-%.]*$") then
    return bad("--to must be a migration name" .. (verb == "down" and " or 0" or ""))
  end

  local sqorm = require "sqorm"
  local ok, res = pcall(function()
    local db
    if verb ~= "create" then
      db = connect(sqorm, o, getenv)
      if not db then error({ usage2 = "no database: give --url, or set DATABASE_URL or TIDB_HOST" }) end
    end
    local mg = sqorm.migrator(db or sqorm.connect("sqlite::memory:"), { dir = o.dir, table = o.table,
      allow_out_of_order = o.allow_out_of_order, lock_timeout = lock_timeout,
      log = not o.quiet and say or nil })
    if verb == "up" then
      local done = mg:up { to = o.to }
      say(#done == 0 and "nothing to migrate" or ("applied %d migration%s"):format(#done, #done == 1 and "" or "s"))
    elseif verb == "down" then
      local done = mg:down { step = step, to = o.to == "0" and 0 or o.to }
      say(#done == 0 and "nothing to revert" or ("reverted %d migration%s"):format(#done, #done == 1 and "" or "s"))
    elseif verb == "status" then
      local list = mg:status()
      for _, s in ipairs(list) do
        say(("%-8s %s%s"):format(s.state, s.name, s.batch and ("  (batch %d, %s)"):format(s.batch, s.applied_at) or ""))
      end
      if #list == 0 then say("no migrations in " .. (o.dir or "migrations")) end
    elseif verb == "create" then
      say("created " .. mg:create(name))
    else
      local path, _, notes = mg:generate(name, { models = o.models })
      if path then
        say("generated " .. path)
      else
        say("the models match the database: nothing generated")
      end
      for _, n in ipairs(notes or {}) do say("note: " .. n) end
    end
    if db then db:close() end
  end)
  if ok then return 0 end
  if type(res) == "table" and res.usage2 then return bad(res.usage2) end
  errout:write("sqorm: ", type(res) == "table" and ((res.kind and res.kind .. ": " or "") .. tostring(res.message))
    or tostring(res), "\n")
  return 1
end

return cli
