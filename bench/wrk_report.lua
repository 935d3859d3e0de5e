-- SPDX-License-Identifier: Apache-2.0
-- wrk_report.lua - print one machine-readable summary line when wrk is done.
-- bench/run.sh parses the line starting with "WRK "; wrk's own report is kept
-- in the run's log. Latencies are in microseconds.
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    "WRK requests=%d duration_us=%d bytes=%d connect=%d read=%d write=%d status=%d timeout=%d p50_us=%.0f p90_us=%.0f p99_us=%.0f\n",
    summary.requests, summary.duration, summary.bytes,
    e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50), latency:percentile(90), latency:percentile(99)))
end
