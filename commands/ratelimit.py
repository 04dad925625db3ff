"""Per-user command rate limit: a sliding window, one polite warning, then silence."""

from __future__ import annotations

from collections import deque
from enum import Enum


class Verdict(Enum):
    ALLOW = "allow"
    WARN = "warn"  # the first refused command in a window: answer once, politely
    DROP = "drop"  # later ones: stay quiet until the window passes


class RateLimiter:
    def __init__(self, limit: int, window_seconds: float, max_users: int = 50_000):
        self.limit = limit
        self.window = window_seconds
        self.max_users = max_users
        self._hits: dict[str, deque[float]] = {}
        self._warned: dict[str, float] = {}

    def check(self, user: str, now: float) -> Verdict:
        hits = self._hits.get(user)
        if hits is None:
            if len(self._hits) >= self.max_users:
                self._evict(now)
            hits = self._hits[user] = deque()
        while hits and hits[0] <= now - self.window:
            hits.popleft()
        if len(hits) < self.limit:
            hits.append(now)
            self._warned.pop(user, None)
            return Verdict.ALLOW
        warned_at = self._warned.get(user)
        if warned_at is not None and warned_at > now - self.window:
            return Verdict.DROP
        self._warned[user] = now
        return Verdict.WARN

    def retry_after(self, user: str, now: float) -> float:
        hits = self._hits.get(user)
        return max(0.0, hits[0] + self.window - now) if hits else 0.0

    def _evict(self, now: float) -> None:
        for user in [u for u, h in self._hits.items() if not h or h[-1] <= now - self.window]:
            del self._hits[user]
            self._warned.pop(user, None)
