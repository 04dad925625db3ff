"""Exponential backoff with jitter for an unreachable or failing homeserver.

It logs once per change of state (reachable → failing → reachable), not at every attempt.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random

log = logging.getLogger("bot.connection")


class Backoff:
    def __init__(self, initial: float = 1.0, maximum: float = 300.0, rng: random.Random | None = None):
        self.initial = initial
        self.maximum = maximum
        self.rng = rng or random.Random()
        self.failures = 0

    @property
    def failing(self) -> bool:
        return self.failures > 0

    def failed(self, reason: str) -> float:
        """Record a failure; returns the seconds to wait before the next attempt."""
        if self.failures == 0:
            log.warning(
                "homeserver not reachable (%s); retrying with backoff up to %.0f s", reason, self.maximum
            )
        ceiling = min(self.maximum, self.initial * 2 ** min(self.failures, 30))
        self.failures += 1
        return self.rng.uniform(ceiling / 2, ceiling)

    def succeeded(self) -> None:
        if self.failures:
            log.warning("homeserver reachable again after %d failed attempts", self.failures)
        self.failures = 0


async def pause(seconds: float, stop: asyncio.Event) -> None:
    """Wait ``seconds``, or less when ``stop`` is set meanwhile."""
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), seconds)
