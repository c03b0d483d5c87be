"""Reading video files: sampling, colour order, and errors that name the file."""

import cv2
import numpy as np
import pytest

from benchmark.errors import DataError
from benchmark.identify.video import read_video

FRAMES = 10


@pytest.fixture(scope="module")
def clip(tmp_path_factory):
    """A 10-frame 32x24 MJPG .avi at 10 fps; frame i is a flat colour, red = 20 i, blue = 200."""
    path = tmp_path_factory.mktemp("video") / "clip.avi"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 10.0, (32, 24))
    for i in range(FRAMES):
        bgr = np.zeros((24, 32, 3), np.uint8)
        bgr[..., 0], bgr[..., 2] = 200, 20 * i
        writer.write(bgr)
    writer.release()
    return path


def test_reads_every_frame_as_rgb(clip):
    # Execute
    video = read_video(clip)
    # Assert
    assert video.frames.shape == (FRAMES, 24, 32, 3) and video.frames.dtype == np.uint8
    np.testing.assert_array_equal(video.frame_numbers, np.arange(FRAMES))
    assert video.fps == pytest.approx(10.0)
    red = video.frames[..., 0].mean(axis=(1, 2))
    np.testing.assert_allclose(red, 20 * np.arange(FRAMES), atol=4)
    assert np.all(np.abs(video.frames[..., 2].astype(int) - 200) <= 4)


@pytest.mark.parametrize(("every", "max_frames", "expected"), [
    (3, None, [0, 3, 6, 9]),
    (1, 4, [0, 3, 6, 9]),   # step grows to ceil(10 / 4) = 3
    (1, 2, [0, 5]),
    (4, 2, [0, 5]),         # the larger of every and ceil(count / max_frames)
    (2, 20, [0, 2, 4, 6, 8]),
])
def test_sampling(clip, every, max_frames, expected):
    # Execute
    video = read_video(clip, every=every, max_frames=max_frames)
    # Assert
    np.testing.assert_array_equal(video.frame_numbers, expected)
    red = video.frames[..., 0].mean(axis=(1, 2))
    np.testing.assert_allclose(red, 20 * np.asarray(expected), atol=4)


def test_missing_and_unreadable_videos_name_the_file(tmp_path):
    # Prepare
    text = tmp_path / "notes.mp4"
    text.write_text("this is not a video\n")
    empty = tmp_path / "empty.mp4"
    empty.write_bytes(b"")
    no_frames = tmp_path / "no_frames.avi"
    cv2.VideoWriter(str(no_frames), cv2.VideoWriter_fourcc(*"MJPG"), 10.0, (32, 24)).release()
    # Execute / Assert
    with pytest.raises(DataError, match="gone.mp4: video file does not exist"):
        read_video(tmp_path / "gone.mp4")
    with pytest.raises(DataError, match="does not exist \\(it is a folder\\)"):
        read_video(tmp_path)
    with pytest.raises(DataError, match="notes.mp4: cannot open as a video"):
        read_video(text)
    with pytest.raises(DataError, match="empty.mp4: cannot open as a video"):
        read_video(empty)
    with pytest.raises(DataError, match="no_frames.avi: no frame could be decoded"):
        read_video(no_frames)


def test_bad_sampling_arguments(clip):
    # Execute / Assert
    with pytest.raises(ValueError, match="every must be an integer >= 1, got 0"):
        read_video(clip, every=0)
    with pytest.raises(ValueError, match="max_frames must be None or an integer >= 1, got 0"):
        read_video(clip, max_frames=0)
