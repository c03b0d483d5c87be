"""Face detection throughput: photos/s the data stage prepares (MTCNN detection, main face, aligned crop) with one
worker process and with several, on real photos. A benchmark, not a test: the figures depend on the machine."""

from __future__ import annotations

import os
import time
from pathlib import Path

from benchmark.data.align import Geometry
from benchmark.data.folder import FacePreparer, photo_files


def detect_throughput(folder: str | os.PathLike, geometry: Geometry, images: int = 200, workers: int = 2) -> dict:
    """Prepare the first ``images`` photos of ``folder`` (one sub-folder per identity) with 1 worker, then with
    ``workers`` (process start-up included), without a detection cache.
    Returns {"images_per_second" (with ``workers``), "one_worker_images_per_second", "speedup", "workers", "images",
    "usable" (photos with a face)}."""
    files = photo_files(Path(folder))[:images]
    if not files:
        raise ValueError(f"{folder}: no photos in identity sub-folders to detect")
    seconds, usable = {}, 0
    for n in (1, workers):
        start = time.perf_counter()
        results = list(FacePreparer(geometry, "auto", workers=n).prepare_all(files))
        seconds[n] = time.perf_counter() - start
        usable = sum(not isinstance(r, str) for r in results)
    return {"images_per_second": len(files) / seconds[workers], "one_worker_images_per_second": len(files) / seconds[1],
            "speedup": seconds[1] / seconds[workers], "workers": workers, "images": len(files), "usable": usable}
