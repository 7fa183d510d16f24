"""The projections the processors keep, one module per family, and the seam after a batch.

``heartbeats`` (the archive, its tombstones, the day and week rows), ``erasure`` (erasures and
their durable ledger), ``members`` (account events into leaderboard members) write through
:class:`projections.ports.ProjectionWriter`; ``boards`` reads the weekly boards around a write for
whoever listens; ``batches`` holds what a batch produced and the :class:`BatchSubscriber` protocol
called once it is written (``live`` is the live-push subscriber). The dispatcher that cuts a batch
into segments and calls them is :class:`processors.handlers.HeartbeatProjector`.
"""
