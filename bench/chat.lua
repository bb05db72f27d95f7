-- wrk script for bench/run.sh: POST one OpenAI-style chat completion per request.
--   BENCH_KEY     bearer token (the gateway's key or JWT; the fake upstream accepts any)
--   BENCH_MODEL   "model" field
--   BENCH_STREAM  "1" adds "stream": true
-- Counts answers by HTTP status and prints one line "BENCHRESULT k=v ..." at the end,
-- which run.sh copies into results.tsv.
local key = os.getenv("BENCH_KEY") or "sk-bench"
local model = os.getenv("BENCH_MODEL") or "fake-gpt"
local stream = os.getenv("BENCH_STREAM") == "1"

wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer " .. key
wrk.body = string.format(
  '{"model":"%s","messages":[{"role":"system","content":"Answer in one sentence."},'
    .. '{"role":"user","content":"Why does the tail latency of an LLM gateway matter?"}],'
    .. '"max_tokens":64,"temperature":0.2%s}',
  model, stream and ',"stream":true' or "")

-- Per-thread counters of non-200 answers; wrk's own "status" error counts only >= 400.
local threads = {}
function setup(thread)
  table.insert(threads, thread)
end
function init(args)
  non200 = 0
end
function response(status, headers, body)
  if status ~= 200 then non200 = non200 + 1 end
end

function done(summary, latency, requests)
  local non200_total = 0
  for _, t in ipairs(threads) do non200_total = non200_total + (t:get("non200") or 0) end
  local e = summary.errors
  io.write(string.format(
    "BENCHRESULT requests=%d duration_us=%d rps=%.1f p50_us=%d p90_us=%d p99_us=%d max_us=%d mean_us=%.1f "
      .. "non200=%d err_connect=%d err_read=%d err_write=%d err_timeout=%d\n",
    summary.requests, summary.duration, summary.requests / (summary.duration / 1e6),
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max, latency.mean,
    non200_total, e.connect, e.read, e.write, e.timeout))
end
