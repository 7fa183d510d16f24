"""What a coding assistant's tools did: the file a file tool changed and its lines added and
removed, and a tool's input cut to a size worth keeping.

Stdlib only: ``codetrackr claude-hook`` (run by Claude Code at every tool use, so its start-up
must stay short) and the transcript import (:mod:`api.rules.ai_transcripts`) share it.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any, Literal

# The longest file path kept (the AI records' limit too).
MAX_PATH = 4096

# Claude Code's tools that write files: their input names the file and the text before/after.
FILE_TOOLS = frozenset({"Write", "Edit", "MultiEdit", "NotebookEdit"})


def line_count(text: Any) -> int:
    """Lines of a tool's text (0 for anything but a non-empty string)."""
    return len(text.splitlines()) if isinstance(text, str) and text else 0


def file_change(
    tool: str, tool_input: Any, result: Any
) -> tuple[str, Literal["created", "modified"], int, int] | None:
    """``(file_path, action, lines_added, lines_removed)`` a file tool did, if any."""
    if tool not in FILE_TOOLS or not isinstance(tool_input, dict):
        return None
    path = tool_input.get("file_path") or tool_input.get("notebook_path")
    if not isinstance(path, str) or not path or len(path) > MAX_PATH:
        return None
    if tool == "Write":
        kind = result.get("type") if isinstance(result, dict) else None
        action: Literal["created", "modified"] = "modified" if kind == "update" else "created"
        return path, action, line_count(tool_input.get("content")), 0
    if tool == "Edit":
        return (
            path,
            "modified",
            line_count(tool_input.get("new_string")),
            line_count(tool_input.get("old_string")),
        )
    if tool == "MultiEdit":
        edits = [e for e in tool_input.get("edits") or [] if isinstance(e, dict)]
        added = sum(line_count(e.get("new_string")) for e in edits)
        return path, "modified", added, sum(line_count(e.get("old_string")) for e in edits)
    return path, "modified", line_count(tool_input.get("new_source")), 0


MAX_PARAMETER_TEXT = 2000  # characters of one string of a tool's input kept


def bounded_input(tool_input: Mapping[str, Any]) -> dict[str, Any]:
    """A tool's input with long strings cut and large lists or objects summarised (a ``Write``'s
    whole file is not kept)."""
    out: dict[str, Any] = {}
    for name, value in tool_input.items():
        if isinstance(value, str) and len(value) > MAX_PARAMETER_TEXT:
            value = value[:MAX_PARAMETER_TEXT] + "…"
        elif (
            isinstance(value, list | dict)
            and len(json.dumps(value, default=str)) > 4 * MAX_PARAMETER_TEXT
        ):
            value = f"<{type(value).__name__} of {len(value)} items>"
        out[str(name)] = value
    return out
