"""HTTP plumbing shared by ingest and api: the error envelope, authentication, body limits."""
