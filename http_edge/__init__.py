"""HTTP plumbing shared by ingest and api: the error envelope, authentication, body limits, and
rate limiting (the client address, the limit classes, the in-process and Redis counters)."""
