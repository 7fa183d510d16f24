"""Numbered ClickHouse migrations, applied in order at start-up.

Each module ``m<NNNN>_<name>.py`` defines ``VERSION: int`` (equal to NNNN), ``DESCRIPTION: str``
and ``STATEMENTS: list[str]`` (one SQL statement each, ``{db}`` standing for the database).
"""

from __future__ import annotations

import importlib
import pkgutil
import re
from dataclasses import dataclass

_MIGRATION_NAME = re.compile(r"m(\d{4})_[a-z0-9_]+")


class MigrationError(Exception):
    """A migration module is malformed (wrong VERSION, missing STATEMENTS, duplicates)."""


@dataclass(frozen=True, slots=True)
class Migration:
    """One numbered schema change from ``projections/migrations/m<NNNN>_<name>.py``."""

    version: int
    name: str
    description: str
    statements: tuple[str, ...]


def load_migrations() -> list[Migration]:
    """Every migration module, in version order; a file whose number and VERSION disagree fails."""
    found: list[Migration] = []
    for info in pkgutil.iter_modules(__path__):
        match = _MIGRATION_NAME.fullmatch(info.name)
        if match is None:
            continue
        module = importlib.import_module(f"{__name__}.{info.name}")
        version, description, statements = module.VERSION, module.DESCRIPTION, module.STATEMENTS
        if not isinstance(version, int) or version != int(match.group(1)):
            raise MigrationError(f"migration {info.name}: VERSION must be {match.group(1)}")
        if not isinstance(description, str) or not isinstance(statements, list):
            raise MigrationError(f"migration {info.name}: bad DESCRIPTION or STATEMENTS")
        found.append(Migration(version, info.name, description, tuple(map(str, statements))))
    found.sort(key=lambda migration: migration.version)
    versions = [migration.version for migration in found]
    if len(set(versions)) != len(versions):
        raise MigrationError(f"duplicate migration versions: {versions}")
    return found
