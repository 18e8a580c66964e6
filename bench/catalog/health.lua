-- wrk script for bench/catalog: GET /v1/health/service/svc-<random>?passing, every reply
-- checked (status 200 and exactly $INSTANCES entries); done() prints one "RESULT ..." line.

local SERVICES = tonumber(os.getenv("SERVICES") or "1000")
local INSTANCES = tonumber(os.getenv("INSTANCES") or "5")

local threads = {}
local next_id = 1

function setup(thread)
  thread:set("tid", next_id)
  next_id = next_id + 1
  table.insert(threads, thread)
end

bad = 0
sample = ""

function init(args)
  math.randomseed(os.time() * 100 + tid)
end

function request()
  -- svc-0 is left out: the watcher phase adds an instance to it.
  local i = math.random(1, SERVICES - 1)
  return wrk.format("GET", "/v1/health/service/svc-" .. i .. "?passing")
end

function response(status, headers, body)
  local n = 0
  if status == 200 and body then
    local _, c = body:gsub('"Checks":', "")
    n = c
  end
  if n ~= INSTANCES then
    bad = bad + 1
    if sample == "" then
      sample = "status=" .. status .. " entries=" .. n .. " body=" .. string.sub(body or "", 1, 200)
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
    "RESULT requests=%d rps=%.1f p50_us=%d p99_us=%d bad=%d connect=%d read=%d write=%d timeout=%d\n",
    summary.requests, summary.requests / (summary.duration / 1e6),
    latency:percentile(50), latency:percentile(99), total_bad,
    e.connect, e.read, e.write, e.timeout))
  if first_sample ~= "" then
    io.write("BAD_SAMPLE " .. first_sample .. "\n")
  end
end
