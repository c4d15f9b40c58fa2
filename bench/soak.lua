-- wrk script for bench/soak.sh: a mixed load from one user (TOKEN env), cycling through
-- the list pages, /user/me, a project created and deleted, and a chat with the local engine.
local token = os.getenv("TOKEN")
local n = 0
local created = {}

request = function()
  n = n + 1
  local headers = {["Authorization"] = "Bearer " .. token, ["Content-Type"] = "application/json"}
  local step = n % 10
  if step == 0 then
    return wrk.format("POST", "/api/v1/projects", headers, '{"name":"soak","repo_url":"https://github.com/acme/soak"}')
  elseif step == 1 and #created > 0 then
    return wrk.format("DELETE", "/api/v1/projects/" .. table.remove(created), headers)
  elseif step == 2 then
    return wrk.format("POST", "/api/v1/chat", headers, '{"message":"explain this","code_context":"fn main() { println!(\\"hi\\"); }","session_id":"soak-' .. (n % 7) .. '"}')
  elseif step < 5 then
    return wrk.format("GET", "/api/v1/agents", headers)
  elseif step < 7 then
    return wrk.format("GET", "/api/v1/chat?limit=50", headers)
  elseif step < 9 then
    return wrk.format("GET", "/api/v1/projects", headers)
  end
  return wrk.format("GET", "/api/v1/user/me", headers)
end

response = function(status, headers, body)
  if status == 201 then
    local id = body:match('"data":{"id":(%d+)')
    if id and body:find('"repo_url"') then table.insert(created, id) end
  end
end
