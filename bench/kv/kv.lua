-- wrk script for bench/kv/run.sh: one file, four workloads, chosen by $WORKLOAD.
--
--   meridian-put  PUT  /v1/kv/bench/<n>      body: 128 bytes
--   etcd-put      POST /v3/kv/put            {"key":b64("bench/<n>"),"value":b64(same 128 bytes)}
--   meridian-get  GET  /v1/kv/bench/1        default consistency
--   meridian-get-consistent  GET /v1/kv/bench/1?consistent   (leadership confirmed per read)
--   etcd-range    POST /v3/kv/range          {"key":b64("bench/1")}, linearizable (etcd default)
--
-- <n> = counter * STRIDE + thread id, so every write in the run hits a fresh key and no two
-- threads collide. response() checks every reply (status and body); done() prints one
-- machine-readable "RESULT ..." line, which run.sh parses and uses to fail the run on errors:
-- a benchmark that measures error replies measures nothing.

local WORKLOAD = os.getenv("WORKLOAD") or error("WORKLOAD is not set")
local STRIDE = 64 -- more threads than wrk will ever be given here

-- Thread bookkeeping (main Lua state): give each thread an id, keep them for done().
local threads = {}
local next_id = 1

function setup(thread)
  thread:set("tid", next_id)
  next_id = next_id + 1
  table.insert(threads, thread)
end

-- Base64 (RFC 4648, with padding) for the etcd grpc-gateway's bytes fields.
local B64 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"

local function b64(s)
  local out = {}
  for i = 1, #s, 3 do
    local a, b, c = s:byte(i, i + 2)
    local n = a * 65536 + (b or 0) * 256 + (c or 0)
    local c1 = math.floor(n / 262144) % 64
    local c2 = math.floor(n / 4096) % 64
    local c3 = math.floor(n / 64) % 64
    local c4 = n % 64
    out[#out + 1] = B64:sub(c1 + 1, c1 + 1) .. B64:sub(c2 + 1, c2 + 1)
      .. (b and B64:sub(c3 + 1, c3 + 1) or "=") .. (c and B64:sub(c4 + 1, c4 + 1) or "=")
  end
  return table.concat(out)
end

-- 128-byte value, identical for both systems.
local VALUE = string.rep("0123456789abcdef", 8)
local VALUE_B64 = b64(VALUE)

-- Per-thread state (each wrk thread has its own Lua state).
counter = 0
bad = 0
sample = ""

local static_req -- prebuilt request for the read workloads
local ok_body    -- body pattern a successful reply must contain

function init(args)
  if WORKLOAD == "meridian-get" then
    static_req = wrk.format("GET", "/v1/kv/bench/1")
    ok_body = '"Key":"bench/1"'
  elseif WORKLOAD == "meridian-get-consistent" then
    static_req = wrk.format("GET", "/v1/kv/bench/1?consistent")
    ok_body = '"Key":"bench/1"'
  elseif WORKLOAD == "etcd-range" then
    static_req = wrk.format("POST", "/v3/kv/range", { ["Content-Type"] = "application/json" },
      '{"key":"' .. b64("bench/1") .. '"}')
    ok_body = '"kvs"'
  elseif WORKLOAD == "meridian-put" then
    ok_body = "true"
  elseif WORKLOAD == "etcd-put" then
    ok_body = '"header"'
  else
    error("unknown WORKLOAD " .. WORKLOAD)
  end
end

local function next_key()
  counter = counter + 1
  return "bench/" .. (counter * STRIDE + tid)
end

function request()
  if static_req then
    return static_req
  end
  local key = next_key()
  if WORKLOAD == "meridian-put" then
    return wrk.format("PUT", "/v1/kv/" .. key, nil, VALUE)
  end
  return wrk.format("POST", "/v3/kv/put", { ["Content-Type"] = "application/json" },
    '{"key":"' .. b64(key) .. '","value":"' .. VALUE_B64 .. '"}')
end

function response(status, headers, body)
  if status < 200 or status > 299 or not (body and body:find(ok_body, 1, true)) then
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
    "RESULT requests=%d duration_us=%d rps=%.1f p50_us=%d p99_us=%d mean_us=%.1f bad=%d"
      .. " connect=%d read=%d write=%d status=%d timeout=%d\n",
    summary.requests, summary.duration, summary.requests / (summary.duration / 1e6),
    latency:percentile(50), latency:percentile(99), latency.mean, total_bad,
    e.connect, e.read, e.write, e.status, e.timeout))
  if first_sample ~= "" then
    io.write("BAD_SAMPLE " .. first_sample .. "\n")
  end
end
