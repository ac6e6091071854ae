-- wrk script for every benchmark: with arguments after "--" (a file of JSON request bodies, one a line,
-- and the Authorization header) each request POSTs a random body to the URL's path; without, it GETs
-- the URL. At the end it prints the run's figures as one JSON line.
local bodies = {}
local headers = {}

function init(args)
  if args[1] then
    for line in io.lines(args[1]) do
      if #line > 0 then bodies[#bodies + 1] = line end
    end
    headers["Content-Type"] = "application/json"
    headers["Authorization"] = args[2]
  end
  -- a different sequence per thread
  math.randomseed(os.time() + tonumber(tostring(bodies):match("0x(%x+)") or "0", 16) % 1000003)
end

function request()
  if #bodies == 0 then
    return wrk.format("GET", wrk.path)
  end
  return wrk.format("POST", wrk.path, headers, bodies[math.random(#bodies)])
end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'BENCH_JSON {"requests":%d,"duration_us":%d,"errors_status":%d,"errors_connect":%d,' ..
    '"errors_read":%d,"errors_write":%d,"errors_timeout":%d,"p50_us":%d,"p90_us":%d,"p99_us":%d,"mean_us":%.1f}\n',
    summary.requests, summary.duration, e.status, e.connect, e.read, e.write, e.timeout,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.mean))
end
