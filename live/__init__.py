"""Live push: the channel port (:mod:`live.port`), its in-process and Redis adapters, and the
single-use tickets that open a dashboard's WebSocket (:mod:`live.tickets`). See docs/live.md.
"""
