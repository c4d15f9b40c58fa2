-- The search rotation of bench/codebase.sh and bench/side_by_side.sh: queries from rare
-- identifiers to very common words, one per request.
local queries = {"poll_next", "HashMap", "fn new", "impl Default", "unwrap_or_else",
  "deserialize_any", "as_ref", "Result<", "#[inline]", "memchr", "from_utf8", "self",
  "ParseError", "fn drop", "Vec::with_capacity", "assert_eq!"}
local i = 0
request = function()
  i = i + 1
  local q = queries[(i % #queries) + 1]
  q = q:gsub("[^%w_]", function(c) return string.format("%%%02X", string.byte(c)) end)
  return wrk.format("GET", wrk.path .. "?q=" .. q .. "&limit=20")
end
