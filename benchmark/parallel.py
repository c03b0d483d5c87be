"""Work spread over processes: :func:`ordered_map` runs a picklable function over items in spawned worker
processes (one per CPU core this process may use, by default) and returns the results in input order, with a
progress bar. Meant for pure, CPU-bound work (rendering synthetic faces): the results do not depend on the
number of workers. Like any spawned pool, it re-imports the calling script in each worker: a script needs the
``if __name__ == "__main__":`` guard."""

from __future__ import annotations

import multiprocessing
import os
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import Any

from tqdm.auto import tqdm


def cpu_count() -> int:
    """CPU cores this process may use."""
    return len(os.sched_getaffinity(0))


def ordered_map(fn: Callable[[Any], Any], items: Sequence, desc: str, unit: str, workers: int | None = None,
                progress: bool = True) -> list:
    """``[fn(item) for item in items]``, computed in ``workers`` spawned processes (default: :func:`cpu_count`;
    1 or a single item: in this process)."""
    workers = min(cpu_count() if workers is None else workers, len(items))
    bar = {"total": len(items), "desc": desc, "unit": unit, "disable": not progress}
    if workers <= 1:
        return [fn(item) for item in tqdm(items, **bar)]
    try:
        with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn")) as pool:
            return list(tqdm(pool.map(fn, items, chunksize=max(1, len(items) // (8 * workers))), **bar))
    except BrokenProcessPool as exc:
        raise RuntimeError(f"{desc}: a worker process died before finishing; a script that starts this work must run "
                           "it under `if __name__ == \"__main__\":` (each spawned worker imports the script again), and "
                           "standard input cannot be such a script") from exc
