-- The leaderboard lists players by coins: an index on players.coins.
-- (Not on guild_id: MySQL replaces the index of a foreign key with an
-- index that starts with its column, and then refuses to drop that one.)
return {
  up = function(m)
    m:add_index("players", { "coins" })
  end,
  down = function(m)
    m:remove_index("players", { "coins" })
  end,
}
