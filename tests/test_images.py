"""Reading image files (every supported format, every failure) and resizing face crops."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from benchmark.data.images import SUPPORTED_SUFFIXES, ImageReadError, read_image, resize_face
from benchmark.errors import DataError


def _noise(shape, seed=0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, size=shape, dtype=np.uint8)


def _encoded(array: np.ndarray, fmt: str, **kw) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, format=fmt, **kw)
    return buffer.getvalue()


def test_grayscale_pgm_is_replicated_to_three_channels(tmp_path):
    gray = _noise((12, 9))
    path = tmp_path / "face.pgm"
    path.write_bytes(_encoded(gray, "PPM"))

    rgb = read_image(path)

    assert rgb.dtype == np.uint8 and rgb.shape == (12, 9, 3)
    for channel in range(3):
        np.testing.assert_array_equal(rgb[:, :, channel], gray)


@pytest.mark.parametrize("suffix,fmt", [(".png", "PNG"), (".PNG", "PNG"), (".jpg", "JPEG"), (".jpeg", "JPEG")])
def test_colour_formats_round_trip(tmp_path, suffix, fmt):
    rows, cols = np.mgrid[0:10, 0:14]
    colour = np.stack([rows * 20 + 30, cols * 15, np.full_like(rows, 90)], axis=2).astype(np.uint8)
    path = tmp_path / f"face{suffix}"
    path.write_bytes(_encoded(colour, fmt, **({"quality": 100, "subsampling": 0} if fmt == "JPEG" else {})))

    rgb = read_image(path)

    assert rgb.shape == (10, 14, 3) and rgb.dtype == np.uint8
    tolerance = 0 if fmt == "PNG" else 3  # JPEG is lossy; channel order must survive either way
    assert np.abs(rgb.astype(int) - colour).max() <= tolerance


def test_gif_gives_the_first_frame(tmp_path):
    first = np.full((8, 8, 3), (200, 30, 30), dtype=np.uint8)
    second = np.full((8, 8, 3), (30, 30, 200), dtype=np.uint8)
    frames = [Image.fromarray(first), Image.fromarray(second)]
    path = tmp_path / "face.gif"
    frames[0].save(path, save_all=True, append_images=frames[1:], duration=100)

    rgb = read_image(path)

    assert rgb.shape == (8, 8, 3)
    assert rgb[..., 0].mean() > 150 and rgb[..., 2].mean() < 80


def test_transparency_becomes_white_and_16_bit_is_scaled(tmp_path):
    rgba = np.zeros((4, 4, 4), dtype=np.uint8)
    rgba[:2, :, :3], rgba[:2, :, 3] = 50, 255
    Image.fromarray(rgba, "RGBA").save(tmp_path / "a.png")
    deep = np.full((4, 4), 65535, dtype=np.uint16)
    deep[0, 0] = 257 * 10
    Image.fromarray(deep).save(tmp_path / "b.png")

    transparent = read_image(tmp_path / "a.png")
    sixteen = read_image(tmp_path / "b.png")

    assert (transparent[:2] == 50).all() and (transparent[2:] == 255).all()
    assert sixteen[0, 0, 0] == 10 and (sixteen[1:] == 255).all()


def test_exif_orientation_is_applied(tmp_path):
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 degrees clockwise to display"
    path = tmp_path / "phone.jpg"
    Image.fromarray(_noise((10, 20, 3))).save(path, exif=exif.tobytes())

    assert read_image(path).shape == (20, 10, 3)


@pytest.mark.parametrize("name", ["face.bmp", "notes.txt", "noext"])
def test_unsupported_file_type_names_file_and_allowed_types(tmp_path, name):
    path = tmp_path / name
    path.write_bytes(b"BM" + bytes(100))

    with pytest.raises(ImageReadError) as info:
        read_image(path)

    message = str(info.value)
    assert name in message and "unsupported file type" in message
    assert "allowed: " + ", ".join(SUPPORTED_SUFFIXES) in message
    assert isinstance(info.value, DataError) and info.value.path == str(path)


def test_random_bytes_are_reported_as_corrupt(tmp_path):
    path = tmp_path / "noise.png"
    path.write_bytes(_noise((500,), seed=3).tobytes())

    with pytest.raises(DataError, match=r"noise\.png: corrupt or truncated image"):
        read_image(path)


@pytest.mark.parametrize("suffix,fmt", [(".png", "PNG"), (".jpg", "JPEG")])
def test_truncated_file_fails_at_read_time(tmp_path, suffix, fmt):
    data = _encoded(_noise((64, 64, 3), seed=4), fmt)
    path = tmp_path / f"half{suffix}"
    path.write_bytes(data[: len(data) // 2])

    with pytest.raises(ImageReadError) as info:
        read_image(path)

    assert f"half{suffix}" in str(info.value)
    assert info.value.reason.startswith("corrupt or truncated image")


def test_missing_file_cannot_be_read(tmp_path):
    with pytest.raises(DataError, match=r"absent\.png: cannot read"):
        read_image(tmp_path / "absent.png")


def test_resize_face_centre_crops_a_non_square_input():
    img = np.zeros((6, 4, 3), dtype=np.uint8)
    img[1:5] = 100  # the centred 4x4 square; rows 0 and 5 must be cut
    img[0], img[5] = 255, 7

    same = resize_face(img, 4)
    half = resize_face(img, 2)

    assert same.shape == (4, 4, 3) and (same == 100).all()
    assert half.shape == (2, 2, 3) and (half == 100).all()


def test_resize_face_averages_areas_when_shrinking():
    img = np.zeros((4, 4, 3), dtype=np.uint8)
    img[::2, ::2] = 200  # one pixel in four is bright: area average is 50

    small = resize_face(img, 2)

    np.testing.assert_array_equal(small, np.full((2, 2, 3), 50, dtype=np.uint8))


@pytest.mark.parametrize("img,size", [(np.zeros((4, 4), np.uint8), 2), (np.zeros((4, 4, 3), np.float32), 2),
                                      (np.zeros((4, 4, 3), np.uint8), 0)])
def test_resize_face_rejects_bad_input(img, size):
    with pytest.raises(ValueError, match="must be"):
        resize_face(img, size)
