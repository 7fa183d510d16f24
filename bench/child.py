"""Figures measured in a child process of their own (the embedded engine serves one process per
data directory, and the bench's own process may hold one already)."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any


async def run_child(module: str, args: list[str], *, what: str, dir_name: str) -> Any:
    """Run ``python -m <module> <args> --dir <tmp>/<dir_name>`` in a fresh temporary directory
    and return the JSON its last line of output holds; a failure raises with its stderr."""
    with tempfile.TemporaryDirectory(prefix=f"bench-{module.rsplit('.', 1)[-1]}-") as tmp:
        argv = [sys.executable, "-m", module, *args, "--dir", str(Path(tmp) / dir_name)]
        done = await asyncio.to_thread(
            subprocess.run, argv, capture_output=True, text=True, timeout=3600, check=False
        )
    if done.returncode != 0:
        raise RuntimeError(f"the {what} benchmark failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])
