"""One computation at a time, its answer reused for a while: ten dashboards refreshing together cost one."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable


class SharedAnswers:
    """`await answers.get(key, compute)`: the answer computed for `key` less than `seconds` ago, or a new one.

    Computations run one at a time (the same process answers the cancel flow on two cores), and a caller
    that waited for another's computation of the same key gets its answer instead of computing it again.
    """

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self._lock = asyncio.Lock()
        self._answers: dict[str, tuple[float, bytes]] = {}

    async def get(self, key: str, compute: Callable[[], Awaitable[bytes]]) -> bytes:
        async with self._lock:
            made, answer = self._answers.get(key, (float("-inf"), b""))
            if time.monotonic() - made < self.seconds:
                return answer
            answer = await compute()
            now = time.monotonic()
            for stale in [k for k, (at, _) in self._answers.items() if now - at >= self.seconds]:
                del self._answers[stale]
            self._answers[key] = (now, answer)
            return answer
