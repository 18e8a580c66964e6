-- wrk script for bench/federation: GET $FED_PATH on every request, every reply checked
-- (status 200 and the body holds $FED_EXPECT, the base64 value of the key in the datacenter
-- asked). done() prints one "RESULT ..." line that fed.py parses; any bad reply fails the run.

local PATH = os.getenv("FED_PATH") or error("FED_PATH is not set")
local EXPECT = os.getenv("FED_EXPECT") or error("FED_EXPECT is not set")

local threads = {}

function setup(thread)
  table.insert(threads, thread)
end

bad = 0
sample = ""
local req

function init(args)
  req = wrk.format("GET", PATH)
end

function request()
  return req
end

function response(status, headers, body)
  if status ~= 200 or not body or not body:find(EXPECT, 1, true) then
    bad = bad + 1
    if sample == "" then
      sample = "status=" .. status .. " body=" .. string.sub(body or "", 1, 200)
    end
  end
end

function done(summary, latency, requests)
  local total_bad, first_sample = 0, ""
  for _, t in ipairs(threads) do
    total_bad = total_bad + (t:get("bad") or 0)
    local s = t:get("sample") or ""
    if first_sample == "" then first_sample = s end
  end
  local e = summary.errors
  io.write(string.format(
    "RESULT requests=%d seconds=%.3f rps=%.1f p50_us=%d p90_us=%d p99_us=%d bad=%d connect=%d read=%d write=%d timeout=%d\n",
    summary.requests, summary.duration / 1e6, summary.requests / (summary.duration / 1e6),
    latency:percentile(50), latency:percentile(90), latency:percentile(99), total_bad,
    e.connect, e.read, e.write, e.timeout))
  if first_sample ~= "" then
    io.write("BAD_SAMPLE " .. first_sample .. "\n")
  end
end
