"""The one timing rule both peer scripts follow: the best of several windows (a shared machine only slows one down)."""

import time


def best_window(step, steps, windows=1):
    """(seconds of the fastest of ``windows`` runs of ``steps`` calls of ``step``, the last call's result)."""
    best, result = float("inf"), None
    for _ in range(windows):
        start = time.perf_counter()
        for _ in range(steps):
            result = step()
        best = min(best, time.perf_counter() - start)
    return best, result
