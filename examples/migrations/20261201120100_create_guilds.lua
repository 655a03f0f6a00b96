-- Guilds, and each player's guild (a foreign key that empties itself when
-- the guild goes).
local T = require("sqorm").types

return {
  up = function(m)
    m:create_table("guilds", {
      { "id", T.INTEGER, primary_key = true, auto_increment = true },
      { "name", T.STRING(32), allow_null = false, unique = true },
    })
    m:add_column("players", "guild_id", { T.INTEGER, references = { "guilds", "id" }, on_delete = "set_null" })
  end,
  down = function(m)
    -- the key first: MySQL won't drop a column its foreign key uses
    m:remove_foreign_key("players", { "guild_id" })
    m:remove_column("players", "guild_id")
    m:drop_table("guilds")
  end,
}
