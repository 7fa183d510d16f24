"""Pure vocabulary: the canonical heartbeat, dialect inputs, events on the log and API shapes.

Imports only the standard library and pydantic.
"""
