-- wrk script of the ccgate benchmarks (bench/README.md).
--
--   wrk -t1 -cN -dD -s bench/wrk.lua URL -- HEADERS_FILE
--
-- HEADERS_FILE holds one Authorization header value per line. Requests are
-- GETs of URL's path that cycle through those values, each thread starting
-- at its own offset: one line is one caller (scenario d), 10,000 lines are
-- 10,000 callers (scenario e). Every scenario sends requests built this
-- way, so the load generator does the same work whatever is measured.
--
-- At the end one line is printed, "WRK_JSON {...}": requests, duration,
-- errors and latency percentiles in microseconds, for bench/bench.py.

local requests = {}
local next_index = 1

local thread_count = 0
function setup(thread)
  thread_count = thread_count + 1
  thread:set("offset", thread_count)
end

function init(args)
  local path = args[1]
  assert(path, "usage: wrk ... -s wrk.lua URL -- HEADERS_FILE")
  for line in io.lines(path) do
    if line ~= "" then
      requests[#requests + 1] = wrk.format("GET", nil, { Authorization = line })
    end
  end
  assert(#requests > 0, "no header in " .. path)
  -- Threads start at different callers (offset is set by setup()).
  next_index = ((tonumber(wrk.thread:get("offset")) or 1) * 7919) % #requests + 1
end

function request()
  local r = requests[next_index]
  next_index = next_index + 1
  if next_index > #requests then next_index = 1 end
  return r
end

function done(summary, latency, _)
  local e = summary.errors
  io.write(string.format(
    'WRK_JSON {"requests":%d,"duration_us":%d,"bytes":%d,' ..
    '"errors":{"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d},' ..
    '"latency_us":{"mean":%.1f,"p50":%d,"p90":%d,"p99":%d,"max":%d}}\n',
    summary.requests, summary.duration, summary.bytes,
    e.connect, e.read, e.write, e.status, e.timeout,
    latency.mean, latency:percentile(50), latency:percentile(90),
    latency:percentile(99), latency.max))
end
