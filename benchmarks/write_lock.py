"""Wait of a single write behind back-to-back writers: ``threading.RLock`` against the service's
``FairLock`` (``immunotox.service.db``), in one process, no database.

    .venv/bin/python benchmarks/write_lock.py [--seconds S] [--repeat N]

Two "hog" threads model the background regrader's passes and a client streaming batches: each
takes the lock, works 15 ms / 10 ms on the CPU under it (holding the GIL, as grading does), and
asks for it again at once. A "single" thread asks for it every 20 ms and holds it 2 ms (one
bedside write). With an unfair lock, a hog that releases and re-acquires at once usually wins
against the waiting single, so the single can wait for many passes in a row; the fair lock
hands it over in arrival order, so a single waits at most for the writes queued before it. The
rounds alternate the two locks; every round is printed (wait p50, p99, max of the single).
"""

from __future__ import annotations

import argparse
import os
import threading
import time
from typing import Any

from immunotox.service.db import FairLock


def round_(lock: Any, seconds: float) -> list[float]:
    stop = time.perf_counter() + seconds
    waits: list[float] = []

    def hog(hold: float) -> None:
        while time.perf_counter() < stop:
            with lock:
                t = time.perf_counter()
                while time.perf_counter() - t < hold:
                    pass

    def single() -> None:
        while time.perf_counter() < stop:
            t = time.perf_counter()
            with lock:
                waits.append(time.perf_counter() - t)
                time.sleep(0.002)
            time.sleep(0.02)

    threads = [threading.Thread(target=hog, args=(h,)) for h in (0.015, 0.010)]
    threads.append(threading.Thread(target=single))
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return sorted(waits)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    ap.add_argument("--seconds", type=float, default=6.0)
    ap.add_argument("--repeat", type=int, default=3)
    a = ap.parse_args()
    worst: dict[str, float] = {}
    for r in range(a.repeat):
        for name, lock in (("RLock", threading.RLock()), ("FairLock", FairLock())):
            w = round_(lock, a.seconds)
            p50, p99, mx = (w[len(w) // 2] * 1e3, w[int(len(w) * 0.99)] * 1e3, w[-1] * 1e3)
            worst[name] = max(worst.get(name, 0.0), mx)
            print(
                f"round {r + 1} {name:<8} singles={len(w):4d} wait p50={p50:7.1f} ms p99={p99:7.1f} ms "
                f"max={mx:7.1f} ms load={os.getloadavg()[0]:.2f}",
                flush=True,
            )
    print(f"rlock_max_ms={worst['RLock']:.1f} fairlock_max_ms={worst['FairLock']:.1f}")


if __name__ == "__main__":
    main()
