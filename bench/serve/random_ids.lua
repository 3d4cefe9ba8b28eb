-- bench/serve/random_ids.lua: wrk script for bench/serve/run.sh.
-- Each request is GET /v1/customers/<id>/prediction for an id drawn uniformly from [0, N),
-- the ids of the synthetic predictions table (make_predictions.cc writes i::VARCHAR).
-- Environment: BENCH_CUSTOMERS (N), BENCH_TOKEN (sent as a bearer token when set),
-- BENCH_COUNT_STATUS=1 to count answers per HTTP status (slower: a Lua call per response).
local customers = tonumber(os.getenv("BENCH_CUSTOMERS") or "1000000")
local token = os.getenv("BENCH_TOKEN") or ""
local count_status = os.getenv("BENCH_COUNT_STATUS") == "1"

local threads = {}
local next_thread = 1

function setup(thread)
  thread:set("thread_index", next_thread)
  next_thread = next_thread + 1
  table.insert(threads, thread)
end

local headers = {}

function init(args)
  -- Different threads draw different ids.
  math.randomseed(os.time() * 1000 + (thread_index or 0) * 7919)
  if token ~= "" then headers["Authorization"] = "Bearer " .. token end
end

request = function()
  local id = math.random(0, customers - 1)
  return wrk.format("GET", "/v1/customers/" .. id .. "/prediction", headers)
end

statuses = {}

if count_status then
  response = function(status, headers, body)
    statuses[status] = (statuses[status] or 0) + 1
  end
end

function done(summary, latency, requests)
  if not count_status then return end
  local total = {}
  for _, t in ipairs(threads) do
    local s = t:get("statuses")
    for code, n in pairs(s) do total[code] = (total[code] or 0) + n end
  end
  local parts = {}
  for code, n in pairs(total) do table.insert(parts, '"' .. code .. '":' .. n) end
  io.write("STATUS_COUNTS {" .. table.concat(parts, ",") .. "}\n")
end
