-- wrk script: GET /traces/t<k> with k drawn from a Zipf distribution over 1..TRACES
-- (P(k) proportional to 1/k^ZIPF_S), the way a few traces are read far more than the rest.
-- Each wrk thread of each run draws its own sequence (seeded by the time and its number), so
-- a run does not replay the ids of the warm-up before it.

local n = tonumber(os.getenv("TRACES") or "10000")
local s = tonumber(os.getenv("ZIPF_S") or "1.0")
local cdf = {}
local threads = {}

function setup(thread)
  thread:set("id", #threads + 1)
  table.insert(threads, thread)
end

function init(args)
  local total = 0
  for k = 1, n do
    total = total + 1 / k ^ s
    cdf[k] = total
  end
  for k = 1, n do
    cdf[k] = cdf[k] / total
  end
  math.randomseed(os.time() * 1000 + (id or 0))
end

function request()
  local u = math.random()
  local lo, hi = 1, n
  while lo < hi do
    local mid = math.floor((lo + hi) / 2)
    if cdf[mid] < u then lo = mid + 1 else hi = mid end
  end
  return wrk.format("GET", "/traces/t" .. lo)
end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    "requests=%d duration_us=%d p50_us=%d p99_us=%d errors=%d non2xx=%d\n",
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(99),
    e.connect + e.read + e.write + e.timeout, e.status))
end
