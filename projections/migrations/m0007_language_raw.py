"""The language each heartbeat's client sent, as it sent it (``python``, ``typescriptreact``).

``language`` holds the canonical name (``schemas.languages.canonical_language``) that stats,
boards and badges count by; ``language_raw`` keeps the client's own spelling for exports and
audits. Added at the end of the archive: rows archived before it read as NULL and hold the
client's name in ``language`` until a replay (``codetrackr replay``) writes them again.
"""

VERSION = 7
DESCRIPTION = "heartbeat raw language column"
STATEMENTS: list[str] = [
    "ALTER TABLE {db}.heartbeats ADD COLUMN IF NOT EXISTS"
    " language_raw LowCardinality(Nullable(String))",
]
