-- wrk script shared by bench/ drivers (bench/lib/benchlib.py `wrk`): one request shape from
-- the environment, every reply checked. done() prints one "RESULT ..." line for the driver.
--
--   CHECK_METHOD  GET, PUT, ...            CHECK_PATH  the path; "{n}" becomes a fresh number
--   CHECK_STATUS  expected status          CHECK_EXPECT  a substring every body must hold
--   CHECK_BODY    request body (may be "") CHECK_TOKEN   X-Consul-Token (omitted when "")

local METHOD = os.getenv("CHECK_METHOD") or error("CHECK_METHOD is not set")
local PATH = os.getenv("CHECK_PATH") or error("CHECK_PATH is not set")
local STATUS = tonumber(os.getenv("CHECK_STATUS") or "200")
local EXPECT = os.getenv("CHECK_EXPECT") or ""
local BODY = os.getenv("CHECK_BODY") or ""
local TOKEN = os.getenv("CHECK_TOKEN") or ""
local STRIDE = 64 -- more threads than wrk is ever given here

local threads = {}
local next_id = 1

function setup(thread)
  thread:set("tid", next_id)
  next_id = next_id + 1
  table.insert(threads, thread)
end

bad = 0
sample = ""
local counter = 0
local headers = {}
local fixed

function init(args)
  if TOKEN ~= "" then headers["X-Consul-Token"] = TOKEN end
  if not PATH:find("{n}", 1, true) then
    fixed = wrk.format(METHOD, PATH, headers, BODY ~= "" and BODY or nil)
  end
end

function request()
  if fixed then return fixed end
  counter = counter + 1
  local path = PATH:gsub("{n}", tostring(counter * STRIDE + tid))
  return wrk.format(METHOD, path, headers, BODY ~= "" and BODY or nil)
end

function response(status, hdrs, body)
  if status ~= STATUS or (EXPECT ~= "" and not (body and body:find(EXPECT, 1, true))) then
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
