"""The event log and its adapters: the durable, ordered source of truth everything is built from."""
