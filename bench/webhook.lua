-- wrk script: signed GitHub `pull_request` deliveries, each with its own X-GitHub-Delivery.
-- BODY is the JSON payload, SIGNATURE its `sha256=` HMAC (the signature covers the body
-- only, so one body serves every delivery).
wrk.method = "POST"
wrk.body = os.getenv("BODY")
wrk.headers["Content-Type"] = "application/json"
wrk.headers["X-GitHub-Event"] = "pull_request"
wrk.headers["X-Hub-Signature-256"] = os.getenv("SIGNATURE")
local counter = 0

function setup(thread)
  thread:set("prefix", os.time() .. "-" .. math.random(1, 1000000000))
end

function request()
  counter = counter + 1
  wrk.headers["X-GitHub-Delivery"] = prefix .. "-" .. counter
  return wrk.format()
end
