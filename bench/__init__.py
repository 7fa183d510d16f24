"""``make bench``: CodeTrackr's performance figures, each next to a same-run baseline.

Performance targets live here, never in timed unit tests. Every figure is printed with the
baseline it should be read against and the ratio of the two, so a number from a slow laptop and
one from a fast server can be compared as ratios.

Modes ``embedded`` and ``kafka`` (one ``codetrackr serve``, on SQLite or on a noida-db broker):

1. Bulk ingest over HTTP (WakaTime ``heartbeats.bulk``, batches of 25 and 500, N concurrent
   clients on real sockets) vs the raw append rate of the SAME event log adapter, same record
   sizes, same concurrency.
2. Freshness: seconds from a 2xx on one heartbeat to that heartbeat counted by
   ``/api/v1/stats/summary``, vs the round trip of ``/stats/summary`` itself (and ``/healthz``).
3. Stats latency for a user with 1M heartbeats vs a user with 100, plus the end-to-end load rate.
4. (embedded only) Heartbeat-to-WebSocket: seconds from a 2xx on one heartbeat to its
   ``heartbeat.accepted`` frame on the user's live socket, vs the same heartbeat found by polling
   ``/stats/summary`` (figure 2's freshness), interleaved (``bench.live_push``).
5. (embedded only) Leaderboard queries with 100,000 ranked users (populated over HTTP) vs a week
   with 100, and figure 4 again for a heartbeat landing on either week (``bench.leaderboard``).
6. (embedded only, in-process) One plugin execution in a fresh QuickJS context vs the event loop
   to worker thread round trip it rides on (``bench.plugin_sandbox``).

Mode ``distributed`` (``bench.topology``: a Tansu or noida-db broker, ClickHouse over HTTP, and
the ``ingest``, ``api`` and two ``worker`` processes):

1. Figure 1 against the ``ingest`` process, vs ``KafkaEventLog.append`` on the same broker.
2. Freshness (ingest 2xx -> counted by the ``api`` process) while ingest takes a sustained,
   open-loop 1,000 heartbeats/s, vs the summary round trip under that load; plus the load's
   achieved rate vs its target (``bench.load``).
3. ``codetrackr replay`` of every heartbeat in the log into empty projections vs inserting the
   same heartbeats with ``ClickHouseProjectionStore.insert_heartbeats`` (``bench.replay``).

``CODETRACKR_BENCH_SCALE`` (float, default 1.0) scales every sample size; ``--mode`` picks the
deployments. Results go to stdout as a table and to ``bench-out/results.json``. Everything runs on
127.0.0.1; child processes (services, brokers, ClickHouse) are stopped on exit, Ctrl-C and errors.
"""
