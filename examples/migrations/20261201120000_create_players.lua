-- The players table of the game.
local T = require("sqorm").types

return {
  up = function(m)
    m:create_table("players", {
      { "id", T.INTEGER, primary_key = true, auto_increment = true },
      { "name", T.STRING(32), allow_null = false, unique = true },
      { "coins", T.INTEGER, allow_null = false, default = 0 },
    })
  end,
  down = function(m)
    m:drop_table("players")
  end,
}
