-- wrk script: GET the forum pages listed in $BENCH_PATHS (separated by spaces) in turn, with
-- the session cookie in $BENCH_COOKIE (a signed-in visitor). done() writes the throughput,
-- latency percentiles and error counts as JSON to $BENCH_OUT.

local paths = {}
for path in string.gmatch(os.getenv("BENCH_PATHS"), "%S+") do
  table.insert(paths, path)
end
local cookie = os.getenv("BENCH_COOKIE") or ""
local counter = 0

function request()
  counter = counter + 1
  local headers = { ["Accept"] = "text/html" }
  if cookie ~= "" then headers["Cookie"] = cookie end
  return wrk.format("GET", paths[counter % #paths + 1], headers)
end

function done(summary, latency, requests)
  local errors = summary.errors
  local out = io.open(os.getenv("BENCH_OUT"), "w")
  out:write(string.format(
    '{"requests":%d,"duration_s":%.3f,"non_2xx":%d,"socket_errors":%d,"timeouts":%d,'
      .. '"latency_ms":{"p50":%.2f,"p90":%.2f,"p99":%.2f,"max":%.2f,"mean":%.2f}}',
    summary.requests, summary.duration / 1e6, errors.status,
    errors.connect + errors.read + errors.write, errors.timeout,
    latency:percentile(50) / 1000, latency:percentile(90) / 1000, latency:percentile(99) / 1000,
    latency.max / 1000, latency.mean / 1000))
  out:close()
end
