"""Reading a video file into RGB frames, sampled (OpenCV's FFmpeg backend, ``cv2.VideoCapture``).

Frames are decoded in order; skipped frames are only grabbed (demuxed and decoded, not converted),
so sampling is cheap but a 10-minute clip still costs its decoding time.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from benchmark.errors import DataError


@dataclass(frozen=True)
class Video:
    """Sampled frames of one video file.

    frames:        uint8 (T, H, W, 3) RGB.
    frame_numbers: int64 (T,) each frame's 0-based position in the file.
    fps:           frames per second the container declares (0.0 when it declares none).
    """

    frames: np.ndarray
    frame_numbers: np.ndarray
    fps: float


def read_video(path: str | os.PathLike, every: int = 1, max_frames: int | None = None) -> Video:
    """Read every ``every``-th frame of a video, at most ``max_frames`` of them.

    every:      keep frames 0, every, 2 every, ... (default 1: all).
    max_frames: when the container declares its frame count, the step grows to
                ``max(every, ceil(count / max_frames))`` so the kept frames span the whole clip;
                reading always stops after ``max_frames`` frames (default None: no limit).
    Raises DataError naming the file when it does not exist, cannot be opened as a video, or no
    frame decodes; ValueError for ``every`` < 1 or ``max_frames`` < 1.
    """
    if isinstance(every, bool) or not isinstance(every, int) or every < 1:
        raise ValueError(f"every must be an integer >= 1, got {every!r}")
    if max_frames is not None and (isinstance(max_frames, bool) or not isinstance(max_frames, int) or max_frames < 1):
        raise ValueError(f"max_frames must be None or an integer >= 1, got {max_frames!r}")
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: video file does not exist" + (" (it is a folder)" if path.is_dir() else ""))
    capture = cv2.VideoCapture(str(path))
    try:
        if not capture.isOpened():
            raise DataError(f"{path}: cannot open as a video (not a video file, or a codec OpenCV's FFmpeg lacks)")
        count = int(capture.get(cv2.CAP_PROP_FRAME_COUNT))
        fps = float(capture.get(cv2.CAP_PROP_FPS))
        step = every
        if max_frames is not None and count > 0:
            step = max(every, math.ceil(count / max_frames))
        frames, numbers = [], []
        position = 0
        while max_frames is None or len(frames) < max_frames:
            if position % step:
                ok = capture.grab()
            else:
                ok, frame = capture.read()
                if ok:
                    frames.append(cv2.cvtColor(frame, cv2.COLOR_BGR2RGB))
                    numbers.append(position)
            if not ok:
                break
            position += 1
    finally:
        capture.release()
    if not frames:
        raise DataError(f"{path}: no frame could be decoded (empty or corrupt video)")
    return Video(np.stack(frames), np.asarray(numbers, np.int64), fps)
