-- wrk script: one distinct firing alert per request, to Hikeshi's
-- Alertmanager webhook or to Alertmanager's own API, so that both take the
-- same load from the same client.
--
--   wrk -t2 -c16 -d60s -s alerts.lua URL -- FORMAT [TOKEN [RUN]]
--
-- FORMAT: "webhook" (POST /api/v1/signals/alertmanager, Alertmanager's
-- webhook v4 body) or "v2" (Alertmanager's POST /api/v2/alerts).
-- TOKEN: a bearer token for the hub. RUN: a tag that keeps the alerts of
-- one run apart from those of another, a number (default: the time).
-- At the end it prints one line the bench reads:
--   wrk-alerts requests=N non2xx=N errors=N seconds=S p50_ms=X p99_ms=X

local threads = {}

function setup(thread)
  thread:set("tid", #threads)
  table.insert(threads, thread)
end

function init(args)
  format = args[1] or "webhook"
  token = args[2]
  run = tonumber(args[3]) or os.time()
  n = 0
  non2xx = 0
  wrk.method = "POST"
  wrk.headers["Content-Type"] = "application/json"
  if token and token ~= "" then
    wrk.headers["Authorization"] = "Bearer " .. token
  end
end

-- Alerts come in groups of 100 (by alertname), as a flapping fleet sends
-- them; each has its own instance, so its own fingerprint.
local function alert(i)
  local g = math.floor(i / 100)
  local name = string.format("Sustained%d_%d_%d", run, tid, g)
  local inst = string.format("node-%d-%d", tid, i)
  return name, string.format(
    '{"status":"firing","labels":{"alertname":"%s","severity":"warning","service":"search","instance":"%s"},' ..
    '"annotations":{"summary":"disk almost full"},"startsAt":"2026-01-01T00:00:00Z","fingerprint":"%08x%04x%08x"}',
    name, inst, run, tid, i)
end

function request()
  n = n + 1
  local name, a = alert(n)
  local body
  if format == "v2" then
    body = "[" .. a .. "]"
  else
    body = '{"version":"4","status":"firing","receiver":"hikeshi","groupKey":"{}:{alertname=\\"' .. name ..
      '\\"}","alerts":[' .. a .. ']}'
  end
  return wrk.format(nil, nil, nil, body)
end

function response(status, headers, body)
  if status < 200 or status > 299 then
    non2xx = non2xx + 1
  end
end

function done(summary, latency, requests)
  local bad = 0
  for _, t in ipairs(threads) do
    bad = bad + (t:get("non2xx") or 0)
  end
  local e = summary.errors
  io.write(string.format("wrk-alerts requests=%d non2xx=%d errors=%d seconds=%.3f p50_ms=%.3f p99_ms=%.3f\n",
    summary.requests, bad, e.connect + e.read + e.write + e.timeout,
    summary.duration / 1e6, latency:percentile(50) / 1000, latency:percentile(99) / 1000))
end
