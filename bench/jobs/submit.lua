-- wrk script: POST /api/v1/jobs with a valid job body and the admin token.
-- TOKEN comes from the environment; every response status is counted so that the
-- run can check that all were 202.
local token = os.getenv("TOKEN")
wrk.method = "POST"
wrk.path = "/api/v1/jobs"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer " .. token
local tag = os.getenv("TAG") or "bench"
wrk.body = '{"image":"image:bb:1","command":["sh","-c","true"],"tags":["' .. tag .. '"]}'

local threads = {}
function setup(thread)
  table.insert(threads, thread)
end

function init(args)
  codes = {}
end

function response(status, headers, body)
  codes[status] = (codes[status] or 0) + 1
end

function done(summary, latency, requests)
  local total = {}
  for _, t in ipairs(threads) do
    local c = t:get("codes")
    for k, v in pairs(c) do total[k] = (total[k] or 0) + v end
  end
  for k, v in pairs(total) do io.write(string.format("status %d %d\n", k, v)) end
  io.write(string.format("p50_ms %.3f\np90_ms %.3f\np99_ms %.3f\n", latency:percentile(50) / 1000,
    latency:percentile(90) / 1000, latency:percentile(99) / 1000))
  -- Socket errors and timeouts (non-2xx answers are in the status lines above).
  io.write(string.format("requests %d\nsocket_errors %d\n", summary.requests,
    summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout))
end
