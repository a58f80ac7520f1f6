-- wrk script: every request registers a new supplier with a fresh, valid organisationsnummer.
-- done() writes the throughput, latency percentiles and error counts as JSON to $BENCH_OUT.

local threads = {}

function setup(thread)
  thread:set("id", #threads)
  table.insert(threads, thread)
end

local function luhn(digits)
  local sum = 0
  for i = 1, #digits do
    local d = tonumber(digits:sub(i, i))
    if i % 2 == 1 then
      d = d * 2
      if d > 9 then d = d - 9 end
    end
    sum = sum + d
  end
  return (10 - sum % 10) % 10
end

local next_number
local regions = { "SE11", "SE12", "SE21", "SE22", "SE23", "SE31", "SE32", "SE33", "SE" }
local cpv = { "31158100", "34144900", "45233000", "33100000", "72000000", "90400000", "71300000" }

function init(args)
  math.randomseed(os.time() + (id or 0) * 7919)
  -- "55" then a digit of 2-9 (a legal person) then six digits: 8 million numbers to start from.
  next_number = math.random(0, 7999999)
end

function request()
  next_number = (next_number + 1) % 8000000
  local first9 = string.format("55%d%06d", 2 + math.floor(next_number / 1000000), next_number % 1000000)
  local org = first9:sub(1, 6) .. "-" .. first9:sub(7, 9) .. luhn(first9)
  local body = string.format(
    '{"org_number":"%s","name":"Bench %s AB","size":"small","company_type":"industrial",'
      .. '"founded_year":2019,"contact_email":"bench@example.se","capabilities":{"cpv_codes":["%s"],'
      .. '"focus_areas":["transport"],"keywords":["laddstolpar","elbussar"],'
      .. '"description":"Laddinfrastruktur för elbussar och depåer.","regions":["%s"],"trl":7},'
      .. '"alerts":{"language":"sv","mode":"instant","min_score":0.5}}',
    org, org, cpv[next_number % #cpv + 1], regions[next_number % #regions + 1])
  return wrk.format("POST", "/v1/suppliers", { ["Content-Type"] = "application/json" }, body)
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
