"""Whether a leaderboard member's profile shows languages (``profile_show_languages``).

Language boards rank only members who show their languages, and no board names the top language
of one who does not. Rows written before this column read as false (hidden) until the account's
next profile event or a replay folds them again: privacy errs on the side of hiding.
"""

VERSION = 8
DESCRIPTION = "leaderboard member languages flag"
STATEMENTS: list[str] = [
    "ALTER TABLE {db}.leaderboard_members"
    " ADD COLUMN IF NOT EXISTS languages_public Bool DEFAULT false",
]
