"""Session logs as Claude Code and OpenAI's Codex CLI write them, generated small for the tests.

Claude Code's lines follow its transcripts (``~/.claude/projects/<dir>/<session>.jsonl``): an
answer with text and a tool call is written as one line per content block, each with the
answer's ``message.id``, ``requestId`` and ``usage``; tool results come back in ``user`` lines.
Codex's follow its rollouts: ``session_meta``, ``turn_context``, ``event_msg`` and
``response_item`` lines, with running token totals in ``token_count`` events.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

T0 = datetime(2026, 3, 9, 22, 30, tzinfo=UTC)


def ts(minutes: float, base: datetime = T0) -> str:
    moment = base + timedelta(minutes=minutes)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def usage(i: int, o: int, cw: int = 0, cr: int = 0) -> dict[str, int]:
    return {
        "input_tokens": i,
        "output_tokens": o,
        "cache_creation_input_tokens": cw,
        "cache_read_input_tokens": cr,
    }


class ClaudeSession:
    """Builds one Claude Code transcript, line by line."""

    def __init__(self, session_id: str, cwd: str, base: datetime = T0) -> None:
        self.session_id = session_id
        self.cwd = cwd
        self.base = base
        self.lines: list[dict[str, Any]] = [
            {"type": "summary", "summary": "Fix the parser", "leafUuid": f"{session_id}-leaf"}
        ]
        self._n = 0

    def _line(self, kind: str, minutes: float, message: dict[str, Any], **extra: Any) -> None:
        self._n += 1
        self.lines.append(
            {
                "parentUuid": None,
                "isSidechain": False,
                "userType": "external",
                "cwd": self.cwd,
                "sessionId": self.session_id,
                "version": "1.0.98",
                "gitBranch": "main",
                "type": kind,
                "message": message,
                "uuid": f"{self.session_id}-{self._n}",
                "timestamp": ts(minutes, self.base),
                **extra,
            }
        )

    def prompt(self, minutes: float, text: str, **extra: Any) -> None:
        self._line("user", minutes, {"role": "user", "content": text}, **extra)

    def answer(
        self,
        minutes: float,
        msg_id: str,
        request_id: str,
        model: str,
        tokens: dict[str, int],
        blocks: list[dict[str, Any]],
        **extra: Any,
    ) -> None:
        """One line per content block, each repeating the answer's usage (as Claude Code does)."""
        for block in blocks:
            message = {
                "id": msg_id,
                "type": "message",
                "role": "assistant",
                "model": model,
                "content": [block],
                "stop_reason": None,
                "usage": {**tokens, "service_tier": "standard"},
            }
            self._line("assistant", minutes, message, requestId=request_id, **extra)

    def result(
        self, minutes: float, tool_use_id: str, *, error: bool = False, result: Any = None
    ) -> None:
        block = {
            "type": "tool_result",
            "tool_use_id": tool_use_id,
            "content": "Error: no such file" if error else "ok",
            "is_error": error,
        }
        extra = {"toolUseResult": result} if result is not None else {}
        self._line("user", minutes, {"role": "user", "content": [block]}, **extra)

    def text(self) -> str:
        return "".join(json.dumps(line) + "\n" for line in self.lines)


def text_block(text: str) -> dict[str, Any]:
    return {"type": "text", "text": text}


def tool_block(tool_id: str, name: str, **tool_input: Any) -> dict[str, Any]:
    return {"type": "tool_use", "id": tool_id, "name": name, "input": tool_input}


def codex_rollout(session_id: str, cwd: str, model: str = "gpt-5-codex") -> str:
    """A short Codex session: a prompt, a shell call that succeeds and one that fails, an
    answer, and token totals (one repeated, as Codex repeats them)."""

    def line(minutes: float, kind: str, payload: dict[str, Any]) -> str:
        return json.dumps({"timestamp": ts(minutes), "type": kind, "payload": payload}) + "\n"

    def totals(i: int, cached: int, o: int) -> dict[str, Any]:
        usage = {
            "input_tokens": i,
            "cached_input_tokens": cached,
            "output_tokens": o,
            "reasoning_output_tokens": 0,
            "total_tokens": i + o,
        }
        return {"type": "token_count", "info": {"total_token_usage": usage}}

    shell = {"command": ["bash", "-lc", "pytest -q"], "workdir": cwd}
    return "".join(
        [
            line(
                0,
                "session_meta",
                {"id": session_id, "timestamp": ts(0), "cwd": cwd, "originator": "codex_cli_rs"},
            ),
            line(0.1, "turn_context", {"cwd": cwd, "model": model, "approval_policy": "never"}),
            line(0.2, "event_msg", {"type": "user_message", "message": "run the tests"}),
            line(
                0.5,
                "response_item",
                {
                    "type": "function_call",
                    "name": "shell",
                    "arguments": json.dumps(shell),
                    "call_id": "call_1",
                },
            ),
            line(
                0.6,
                "response_item",
                {
                    "type": "function_call_output",
                    "call_id": "call_1",
                    "output": json.dumps(
                        {"output": "3 passed", "metadata": {"exit_code": 0, "duration_seconds": 1}}
                    ),
                },
            ),
            line(0.7, "event_msg", totals(1000, 200, 50)),
            line(0.7, "event_msg", totals(1000, 200, 50)),  # the same total again
            line(
                1.0,
                "response_item",
                {
                    "type": "function_call",
                    "name": "shell",
                    "arguments": json.dumps({"command": ["false"]}),
                    "call_id": "call_2",
                },
            ),
            line(
                1.1,
                "response_item",
                {
                    "type": "function_call_output",
                    "call_id": "call_2",
                    "output": json.dumps({"output": "", "metadata": {"exit_code": 1}}),
                },
            ),
            line(1.5, "event_msg", {"type": "agent_message", "message": "All tests pass."}),
            line(1.6, "event_msg", totals(2500, 1200, 130)),
            "{broken\n",
        ]
    )
