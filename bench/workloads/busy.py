"""A pure-Python busy loop and its calibration (no framework imports).

The driver calibrates once per benchmark invocation, with the workspace's
interpreter, and passes the iteration count to every ``parallel`` measurement
so that both frameworks burn exactly the same work.
"""

from __future__ import annotations

import time


def burn(iterations: int) -> int:
    """Spin for ``iterations`` loop turns; holds the GIL throughout."""
    x = 0
    for i in range(iterations):
        x = (x + i * 7) & 0xFFFF
    return x


def calibrate(seconds: float, probe: int = 500_000, tries: int = 5) -> int:
    """The iteration count that makes :func:`burn` last about ``seconds``."""
    best = min(_time(probe) for _ in range(tries))
    return max(1, int(probe * seconds / best))


def _time(iterations: int) -> float:
    start = time.perf_counter()
    burn(iterations)
    return time.perf_counter() - start
