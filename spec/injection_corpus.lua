-- spec/injection_corpus.lua - SQL injection payloads for
-- spec/injection_spec.lua (issue 16, item 5). Each is tried as a value,
-- a where key, an operator, an identifier (model, table, column, alias,
-- order direction, group, fn column) on every dialect. The sentinel
-- table they all aim at is "sentinel".
return {
  -- quotes and terminators
  "'", "''", "\"", "`", "\\", "\\'", "'--", "' OR '1'='1", "' OR 1=1 --", "\" OR \"\"=\"", "') OR ('a'='a",
  "admin'--", "1' AND 1=(SELECT COUNT(*) FROM sentinel) --", "x' AND sleep(5) AND 'x'='x",
  "';SELECT pg_sleep(5);--",
  -- stacked queries
  "1; DROP TABLE sentinel", "'; DROP TABLE sentinel; --", "\"; DROP TABLE sentinel; --",
  "`; DROP TABLE sentinel; --", "1); DELETE FROM sentinel; --", "x'); DELETE FROM sentinel; --",
  "'; INSERT INTO sentinel (v) VALUES (666); --", "; UPDATE sentinel SET v = 0",
  "\\'; DROP TABLE sentinel; -- ", "\\\"; DROP TABLE sentinel; --",
  -- comments
  "--", "-- x", "/*", "*/", "/**/", "/*! DROP TABLE sentinel */", "#", "# DROP TABLE sentinel",
  "x/*' OR 1=1 --*/", "/*!50000 UNION SELECT 1 */",
  -- union / subquery
  "' UNION SELECT v FROM sentinel --", "1 UNION ALL SELECT NULL, NULL --", "(SELECT v FROM sentinel)",
  -- placeholders and parameter syntax
  "?", "??", ":name", ":1", "@v", "$1", "$$", "$tag$ DROP TABLE sentinel $tag$", "%s", "%d", "{}", "${x}",
  -- dollar quoting, E-strings, unicode escapes (PostgreSQL)
  "$$; DROP TABLE sentinel; $$", "E'\\x27'", "U&'\\0027'", "U&\"\\0022\"",
  -- NUL bytes and control characters
  "\0", "a\0b", "'\0; DROP TABLE sentinel; --", "\0'; DROP TABLE sentinel; --", "\r\n", "\t'\n--",
  "\x1a", "\x08\x7f",
  -- unicode look-alikes of quotes, semicolons and dashes
  "\u{2019} OR 1=1 --", "\u{02BC}; DROP TABLE sentinel; --", "\u{FF07}; DROP TABLE sentinel; --",
  "\u{FF02}", "\u{FF1B} DROP TABLE sentinel", "\u{2014}\u{2014} x", "\u{FE63}\u{FE63}", "\u{037E} DROP TABLE sentinel",
  "\u{201C}x\u{201D}", "\u{FF40}",
  -- overlong and invalid UTF-8 forms of a quote, a lone continuation byte
  "\xc0\xa7", "\xc0\x27", "\xe0\x80\xa7", "\xbf'", "\xed\xa0\x80",
  -- operator keys as they arrive in decoded JSON (as values and keys)
  "$gt", "$ne", "$where", "$or", "__proto__", "constructor",
  -- long
  string.rep("'", 70), string.rep("a", 64) .. "'; DROP TABLE sentinel; --",
}
