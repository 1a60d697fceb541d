-- wrk script for kvgate/etcd KV benchmarks.
-- MODE (env): "put"  -> POST /v3/kv/put, distinct keys, 256-byte values
--             "range" -> POST /v3/kv/range, serializable single-key reads of
--                        keys the put phase (or the preload) wrote
-- KEYS (env): how many distinct keys (default 10000)
local b64chars = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/'
local function b64(data)
  return ((data:gsub('.', function(x)
    local r, b = '', x:byte()
    for i = 8, 1, -1 do r = r .. (b % 2 ^ i - b % 2 ^ (i - 1) > 0 and '1' or '0') end
    return r
  end) .. '0000'):gsub('%d%d%d?%d?%d?%d?', function(x)
    if #x < 6 then return '' end
    local c = 0
    for i = 1, 6 do c = c + (x:sub(i, i) == '1' and 2 ^ (6 - i) or 0) end
    return b64chars:sub(c + 1, c + 1)
  end) .. ({ '', '==', '=' })[#data % 3 + 1])
end

local mode = os.getenv("MODE") or "put"
local nkeys = tonumber(os.getenv("KEYS") or "10000")
local bodies = {}
local counter = 0

function init(args)
  local value = b64(string.rep("v", 256))
  -- a per-thread stride so threads don't all start on the same key
  counter = math.random(0, nkeys - 1)
  for i = 0, 999 do
    local k = b64(string.format("bench/%08d", (i * 7919) % nkeys))
    if mode == "put" then
      bodies[i] = '{"key":"' .. k .. '","value":"' .. value .. '"}'
    else
      bodies[i] = '{"key":"' .. k .. '","serializable":true}'
    end
  end
end

function request()
  counter = counter + 1
  local path = mode == "put" and "/v3/kv/put" or "/v3/kv/range"
  return wrk.format("POST", path, {["Content-Type"] = "application/json"}, bodies[counter % 1000])
end

-- machine-readable summary for run.sh
function done(summary, latency, requests)
  local errs = summary.errors.connect + summary.errors.read + summary.errors.write
             + summary.errors.status + summary.errors.timeout
  io.write(string.format("RESULT rps=%.1f p50_us=%d p99_us=%d errors=%d requests=%d\n",
    summary.requests / (summary.duration / 1e6), latency:percentile(50),
    latency:percentile(99), errs, summary.requests))
end
