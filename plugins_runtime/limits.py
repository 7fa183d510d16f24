"""The limits one plugin execution runs under; defaults are the product's, tests pass small ones."""

from __future__ import annotations

from dataclasses import dataclass

MIB = 1024 * 1024


@dataclass(frozen=True, slots=True)
class SandboxLimits:
    """Per-execution caps. CPU and wall clock are cumulative over the whole host loop.

    ``cpu_s`` counts the CPU of the thread that drives the context (script compile, the hook, every
    settled promise and pending job), not the time spent waiting for host I/O; ``wall_s`` counts
    everything from the start of the execution, host I/O included.
    """

    memory_bytes: int = 16 * MIB
    stack_bytes: int = 512 * 1024
    wall_s: float = 15.0
    cpu_s: float = 15.0
    # ctx.db.query / ctx.redis.* requests in one execution; one more fails the execution.
    max_host_calls: int = 1_000
    # Captured log(): lines kept, and characters kept per line before the truncation marker.
    max_log_lines: int = 200
    max_log_chars: int = 2_000
    # The JSON text of a hook's return value (an RPC response body).
    max_result_bytes: int = 1 * MIB

    def __post_init__(self) -> None:
        if self.memory_bytes < 1 * MIB:
            raise ValueError("memory_bytes below 1 MiB leaves no room for the runtime itself")
        if self.stack_bytes < 64 * 1024:
            raise ValueError("stack_bytes below 64 KiB leaves no room for the prelude")
        if self.wall_s <= 0 or self.cpu_s <= 0:
            raise ValueError("wall_s and cpu_s must be positive")
        if self.max_host_calls < 0 or self.max_log_lines < 0 or self.max_log_chars < 1:
            raise ValueError("host call and log caps must not be negative")
        if self.max_result_bytes < 1:
            raise ValueError("max_result_bytes must be positive")
