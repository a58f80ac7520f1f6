-- wrk script: every request publishes a new need for the buyer group in $BENCH_GROUP_ID,
-- with the group's token from $BENCH_TOKEN. done() writes the throughput, latency
-- percentiles and error counts as JSON to $BENCH_OUT.

local group_id = os.getenv("BENCH_GROUP_ID")
local token = os.getenv("BENCH_TOKEN")
local counter = 0
local regions = { "SE11", "SE12", "SE21", "SE22", "SE23", "SE31", "SE32", "SE33", "SE" }
local cpv = { "31158100", "34144900", "45233000", "33100000", "72000000", "90400000", "71300000" }
local areas = { "transport", "health_care", "community_building", "industry_4_0" }
local procedures = { "market_dialogue", "innovation_partnership", "pre_commercial" }

function request()
  counter = counter + 1
  local body = string.format(
    '{"title":"Behov %d: laddinfrastruktur för elbussar","description":"Vi söker lösningar för '
      .. 'snabbladdning av elbussar vid depåer och ändhållplatser, nummer %d.","cpv_codes":["%s"],'
      .. '"focus_area":"%s","regions":["%s"],"min_trl":6,"preferred_supplier_types":["sme"],'
      .. '"procedure":"%s","respond_by":"2099-06-30","budget_sek":5000000}',
    counter, counter, cpv[counter % #cpv + 1], areas[counter % #areas + 1],
    regions[counter % #regions + 1], procedures[counter % #procedures + 1])
  return wrk.format("POST", "/v1/buyer-groups/" .. group_id .. "/needs",
    { ["Content-Type"] = "application/json", ["Authorization"] = "Bearer " .. token }, body)
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
