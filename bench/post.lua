-- wrk script: POST a fixed chat completion request (BENCH_BODY from the environment)
-- and print the run's figures as one JSON line, with exact percentiles, in done().
wrk.method = "POST"
wrk.body = os.getenv("BENCH_BODY")
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer sk-app-key-the-sidecar-drops"
-- BENCH_HEADERS: extra "Name: value" lines (a peer gateway's routing headers, its key).
for line in string.gmatch(os.getenv("BENCH_HEADERS") or "", "[^\n]+") do
  local name, value = line:match("^([^:]+):%s*(.*)$")
  if name then wrk.headers[name] = value end
end

-- BENCH_UNIQUE: every request's body differs (a counter in "user"; wrk runs one thread),
-- so none repeats one before it: with the response cache on, every request is a miss.
if os.getenv("BENCH_UNIQUE") == "1" then
  local count, rest = 0, string.sub(wrk.body, 2)
  request = function()
    count = count + 1
    return wrk.format(nil, nil, nil, '{"user":"bench-' .. count .. '",' .. rest)
  end
end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    '{"requests":%d,"duration_us":%d,"errors":%d,"non2xx":%d,' ..
    '"p50_us":%d,"p90_us":%d,"p99_us":%d,"max_us":%d,"mean_us":%.1f}\n',
    summary.requests, summary.duration, e.connect + e.read + e.write + e.timeout, e.status,
    latency:percentile(50), latency:percentile(90), latency:percentile(99),
    latency.max, latency.mean))
end
