"""The editor plugin of each heartbeat (``vscode-wakatime``), parsed from its User-Agent.

Added at the end of the archive; rows written before it read as NULL.
"""

VERSION = 4
DESCRIPTION = "heartbeat plugin column"
STATEMENTS: list[str] = [
    "ALTER TABLE {db}.heartbeats ADD COLUMN IF NOT EXISTS plugin LowCardinality(Nullable(String))",
]
