"""Folder-per-identity and LFW loaders: layout, unusable files, errors, detection rule, real data."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from benchmark.data.detect import FaceDetector, NoFaceError
from benchmark.data.faceset import Unusable
from benchmark.data.folder import AUTO_DETECT_MIN_SIDE, load_folder, load_lfw
from benchmark.errors import DataError

REAL = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "real"
ALLOWED = ".pgm, .png, .jpg, .jpeg, .gif"


def _write(path: Path, shape=(20, 16), seed=0, fmt=None) -> np.ndarray:
    """Write a noise image (grayscale for a 2-tuple shape) and return its pixels."""
    path.parent.mkdir(parents=True, exist_ok=True)
    pixels = np.random.default_rng(seed).integers(0, 256, size=shape, dtype=np.uint8)
    Image.fromarray(pixels).save(path, format=fmt)
    return pixels


def _real(name: str) -> Path:
    path = REAL / name
    if not path.is_dir():
        pytest.skip(f"real data not found: {path}")
    return path


@pytest.fixture
def people(tmp_path) -> Path:
    """alice: 2 good + 4 unusable files; bob: 1 good (single-image identity); carol: nothing usable."""
    root = tmp_path / "people"
    _write(root / "alice" / "a1.png", (20, 16, 3), seed=1)
    _write(root / "alice" / "a2.gif", (16, 16), seed=2, fmt="GIF")
    (root / "alice" / "notes.txt").write_text("not a face")
    (root / "alice" / "broken.png").write_bytes(np.random.default_rng(3).bytes(300))
    jpeg = root / "alice" / "half.jpg"
    _write(jpeg, (32, 32, 3), seed=4)
    jpeg.write_bytes(jpeg.read_bytes()[: jpeg.stat().st_size // 2])
    (root / "alice" / "nested").mkdir()
    (root / "alice" / ".DS_Store").write_bytes(b"\0\1")
    _write(root / "bob" / "b1.pgm", (24, 24), seed=5, fmt="PPM")
    (root / "carol").mkdir()
    (root / "carol" / "face.bmp").write_bytes(b"BM" + bytes(64))
    (root / "README.md").write_text("people")
    return root


def test_folder_layout_labels_and_sources(people):
    faces = load_folder(people, 8, detect=False)

    assert faces.identities == ["alice", "bob"]  # carol has no usable image: dropped
    assert faces.sources == ["people/alice/a1.png", "people/alice/a2.gif", "people/bob/b1.pgm"]
    assert faces.labels.tolist() == [0, 0, 1]  # bob, a single-image identity, is kept
    assert faces.images.shape == (3, 8, 8, 3) and faces.images.dtype == np.uint8
    gray = faces.images[2]
    assert (gray[..., 0] == gray[..., 1]).all() and (gray[..., 1] == gray[..., 2]).all()


def test_every_skipped_file_is_listed_with_its_reason(people):
    faces = load_folder(people, 8, detect=False)

    reasons = {u.path: u.reason for u in faces.unusable}
    assert set(reasons) == {"people/README.md", "people/alice/notes.txt", "people/alice/broken.png",
                            "people/alice/half.jpg", "people/alice/nested/", "people/carol/face.bmp"}
    assert reasons["people/README.md"].startswith("not in an identity sub-folder")
    assert reasons["people/alice/notes.txt"] == f"unsupported file type '.txt' (allowed: {ALLOWED})"
    assert reasons["people/carol/face.bmp"] == f"unsupported file type '.bmp' (allowed: {ALLOWED})"
    assert reasons["people/alice/broken.png"].startswith("corrupt or truncated image")
    assert reasons["people/alice/half.jpg"].startswith("corrupt or truncated image")
    assert "folder inside an identity folder" in reasons["people/alice/nested/"]
    assert not any(str(people) in u.path for u in faces.unusable)  # no machine paths


def test_missing_path_is_an_error(tmp_path):
    with pytest.raises(DataError, match=r"absent: dataset folder does not exist \(expected <root>/<identity>"):
        load_folder(tmp_path / "absent", 8)


def test_file_instead_of_folder_is_an_error(tmp_path):
    _write(tmp_path / "face.png")
    with pytest.raises(DataError, match=rf"face\.png: is a file, not a folder .*{ALLOWED}"):
        load_folder(tmp_path / "face.png", 8)


def test_folder_without_identity_folders_is_an_error(tmp_path):
    _write(tmp_path / "loose.png")
    with pytest.raises(DataError, match=r"empty folder: no identity sub-folders"):
        load_folder(tmp_path, 8)


def test_folder_without_usable_images_is_an_error(tmp_path):
    (tmp_path / "dave").mkdir()
    (tmp_path / "dave" / "x.bmp").write_bytes(b"BM")
    (tmp_path / "erin").mkdir()
    with pytest.raises(DataError, match=r"empty folder: no usable images in 2 identity sub-folders "
                                        r"\(1 files skipped; first: .*/dave/x\.bmp: unsupported file type"):
        load_folder(tmp_path, 8)


@pytest.mark.parametrize("kw,match", [({"detect": "yes"}, "detect must be"), ({"detect": 1}, "detect must be"),
                                      ({"size": 0}, "size must be"),
                                      ({"detector": FaceDetector(), "min_confidence": 0.5}, "not both")])
def test_bad_arguments_are_rejected(people, kw, match):
    with pytest.raises(ValueError, match=match):
        load_folder(people, **{"size": 8, **kw})


def _mkdir(path: Path) -> Path:
    path.mkdir(parents=True)
    return path


class _RecordingDetector:
    """Stands in for FaceDetector: records which image sizes it was asked about."""

    def __init__(self) -> None:
        self.seen: list[tuple[int, int]] = []

    def main_face(self, img):
        self.seen.append(img.shape[:2])
        return None

    def crop(self, img, face, size):
        return np.full((size, size, 3), 7, dtype=np.uint8)


def test_auto_detects_only_images_at_least_the_threshold_side(tmp_path):
    side = AUTO_DETECT_MIN_SIDE
    _write(tmp_path / "big" / "photo.jpg", (side, side + 50, 3))
    _write(tmp_path / "small" / "crop.png", (side + 50, side - 1, 3))
    recorder = _RecordingDetector()

    auto = load_folder(tmp_path, 16, detect="auto", detector=recorder)
    forced = load_folder(tmp_path, 16, detect=True, detector=_RecordingDetector())

    assert recorder.seen == [(side, side + 50)]
    assert (auto.images[0] == 7).all() and not (auto.images[1] == 7).all()
    assert (forced.images == 7).all()


class _PickyDetector(_RecordingDetector):
    """Finds a face only in images whose top-left pixel is bright."""

    def main_face(self, img):
        if img[0, 0, 0] < 128:
            raise NoFaceError("no face found (best confidence 0.42 < 0.90)")
        return None


def test_image_without_a_face_is_listed_with_the_detector_reason(tmp_path):
    bright, dark = np.full((30, 30, 3), 200, np.uint8), np.full((30, 30, 3), 20, np.uint8)
    Image.fromarray(bright).save(_mkdir(tmp_path / "zoe") / "bright.png")
    Image.fromarray(dark).save(tmp_path / "zoe" / "dark.png")

    faces = load_folder(tmp_path, 16, detect=True, detector=_PickyDetector())

    assert faces.sources == [f"{tmp_path.name}/zoe/bright.png"]
    reason = "no face found (best confidence 0.42 < 0.90)"
    assert faces.unusable == [Unusable(f"{tmp_path.name}/zoe/dark.png", reason)]


def test_mtcnn_finds_no_face_in_noise(tmp_path):
    _write(tmp_path / "nobody" / "noise1.png", (40, 40, 3))
    _write(tmp_path / "nobody" / "noise2.png", (40, 40, 3), seed=9)

    with pytest.raises(DataError, match=r"\(2 files skipped; first: .*noise1\.png: no face found \("):
        load_folder(tmp_path, 16, detect=True, min_confidence=0.8)


def _lfw(tmp_path: Path, pairs: str) -> tuple[Path, Path]:
    """A tiny LFW layout: ann (3 images), ben (2), cy (1); noise JPEGs; pairs.txt as given."""
    root = tmp_path / "lfw"
    for seed, (name, count) in enumerate([("ann", 3), ("ben", 2), ("cy", 1)]):
        for k in range(1, count + 1):
            _write(root / name / f"{name}_{k:04d}.jpg", (30, 30, 3), seed=10 * seed + k)
    (tmp_path / "pairs.txt").write_text(pairs)
    return root, tmp_path / "pairs.txt"


GOOD_PAIRS = "2\t1\nann\t1\t2\nann\t1\tben\t1\nben\t1\t2\nann\t3\tcy\t1\n"


def test_lfw_pairs_index_into_the_faceset(tmp_path):
    root, pairs_path = _lfw(tmp_path, GOOD_PAIRS)

    faces, pairs, is_same, folds = load_lfw(root, pairs_path, 12, detect=False)

    named = [(faces.sources[a].split("/")[-1], faces.sources[b].split("/")[-1]) for a, b in pairs]
    assert named == [("ann_0001.jpg", "ann_0002.jpg"), ("ann_0001.jpg", "ben_0001.jpg"),
                     ("ben_0001.jpg", "ben_0002.jpg"), ("ann_0003.jpg", "cy_0001.jpg")]
    assert is_same.tolist() == [True, False, True, False] and folds.tolist() == [0, 0, 1, 1]
    assert faces.identities == ["ann", "ben", "cy"] and len(faces.sources) == 6
    assert all(faces.identities[faces.labels[i]] == s.split("/")[1] for i, s in enumerate(faces.sources))
    assert faces.sources[0] == "lfw/ann/ann_0001.jpg" and faces.images.shape == (6, 12, 12, 3)


def test_lfw_pair_with_an_unusable_image_is_dropped_and_listed(tmp_path):
    root, pairs_path = _lfw(tmp_path, GOOD_PAIRS)
    (root / "cy" / "cy_0001.jpg").write_bytes(b"\xff\xd8 not really a jpeg")

    faces, pairs, is_same, folds = load_lfw(root, pairs_path, 12, detect=False)

    assert len(pairs) == 3 and folds.tolist() == [0, 0, 1]
    assert [u.path for u in faces.unusable] == ["lfw/cy/cy_0001.jpg"]
    assert faces.unusable[0].reason.startswith("corrupt or truncated image")
    assert faces.identities == ["ann", "ben"]


@pytest.mark.parametrize("text,match", [
    ("", r"empty pairs file"),
    ("ten 300\n", r"line 1: expected a header '<folds> <pairs per class>' .* got 'ten 300'"),
    ("1 1\nann 1 2\nann 1 ben\n",
     r"line 3: expected 'name i j' \(genuine\) or 'name1 i name2 j' .* got 'ann 1 ben'"),
    ("1 1\nann 1 2\nann 0 ben 1\n", r"line 3: .* got 'ann 0 ben 1'"),
    ("2 1\nann 1 2\nann 1 ben 1\n", r"header says 2 folds x 2 pairs = 4 pair lines, found 2"),
    ("1 1\nann 1 2\nben 1 2\n", r"fold 1 has 2 genuine and 0 impostor pairs, expected 1 of each"),
    ("1 1\nann 1 2\nann 1 ben 7\n", r"pairs\.txt, line 3: pair refers to a missing image .*ben_0007\.jpg"),
])
def test_lfw_malformed_pairs_are_reported(tmp_path, text, match):
    root, pairs_path = _lfw(tmp_path, text)
    with pytest.raises(DataError, match=match):
        load_lfw(root, pairs_path, 12, detect=False)


def test_lfw_missing_pairs_file(tmp_path):
    root, _ = _lfw(tmp_path, GOOD_PAIRS)
    with pytest.raises(DataError, match=r"absent\.txt: cannot read the LFW pairs file"):
        load_lfw(root, tmp_path / "absent.txt", 12)


@pytest.fixture(scope="module")
def detector() -> FaceDetector:
    return FaceDetector()


@pytest.mark.real_data
def test_orl_is_loaded_as_crops_without_detection():
    root = _real("orl")

    faces = load_folder(root, 32)  # auto: 92x112 is below the detection threshold

    assert len(faces.identities) == 40 and faces.images.shape == (400, 32, 32, 3)
    assert np.bincount(faces.labels).tolist() == [10] * 40
    assert sorted(u.path for u in faces.unusable) == ["orl/README.orig", "orl/SOURCE.txt"]


@pytest.mark.real_data
def test_yale_with_detection(detector):
    root = _real("yale")

    faces = load_folder(root, 64, detect=True, detector=detector)

    image_failures = [u for u in faces.unusable if u.path.count("/") == 2]
    assert len(faces.identities) == 15
    assert len(faces.sources) + len(image_failures) == 164
    assert len(image_failures) <= 5, image_failures  # measured: 0
    assert all(u.reason.startswith("no face found") for u in image_failures)


@pytest.mark.real_data
def test_photos_are_cropped_or_listed(detector):
    root = _real("photos")
    files = sorted(f"photos/{p.relative_to(root).as_posix()}" for p in root.glob("*/*") if p.is_file())

    faces = load_folder(root, 112, detect="auto", detector=detector)

    listed = [u.path for u in faces.unusable if u.path.count("/") == 2]
    assert sorted(faces.sources + listed) == files
    assert len(files) == 15 and len(faces.identities) == 6
    assert len(faces.sources) >= 13  # measured: all 15
    for crop, source in zip(faces.images, faces.sources):
        found = detector.detect(crop)
        assert found and found[0].confidence > 0.95, source
        x1, y1, x2, y2 = found[0].box
        assert x2 - x1 > 112 / 2, source  # the face fills the crop
