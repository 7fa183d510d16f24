"""``make bench``: CodeTrackr's performance figures, each next to a same-run baseline.

Performance targets live here, never in timed unit tests. Every figure is printed with the
baseline it should be read against and the ratio of the two, so a number from a slow laptop and
one from a fast server can be compared as ratios. Figures (per mode: embedded, kafka):

1. Bulk ingest over HTTP (WakaTime ``heartbeats.bulk``, batches of 25 and 500, N concurrent
   clients on real sockets to a ``codetrackr serve`` child process) vs the raw append rate of the
   SAME event log adapter, same record sizes, same concurrency.
2. Freshness: seconds from a 2xx on one heartbeat to that heartbeat counted by
   ``/api/v1/stats/summary``, vs the round trip of ``/stats/summary`` itself (and ``/healthz``).
3. Stats latency for a user with 1M heartbeats vs a user with 100, plus the end-to-end load rate.

``CODETRACKR_BENCH_SCALE`` (float, default 1.0) scales every sample size; ``--mode`` picks the
deployments. Results go to stdout as a table and to ``bench-out/results.json``. Everything runs on
127.0.0.1; child processes (server, broker) are stopped on exit, Ctrl-C and errors.
"""
