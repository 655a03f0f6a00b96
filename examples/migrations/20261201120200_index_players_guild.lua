-- Players are listed by guild: an index on players.guild_id.
return {
  up = function(m)
    m:add_index("players", { "guild_id" })
  end,
  down = function(m)
    m:remove_index("players", { "guild_id" })
  end,
}
