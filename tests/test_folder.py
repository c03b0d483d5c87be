"""Folder-per-identity and LFW loaders: layout, unusable files, errors, detection rule, real data."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image

from benchmark.data.align import Geometry, template
from benchmark.data.detect import Detection, FaceDetector
from benchmark.data.detection_cache import DetectionCache
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
    assert faces.detected.tolist() == [False] * 3 and np.isnan(faces.confidence).all()
    assert faces.boxes.shape == (3, 4) and faces.landmarks.shape == (3, 5, 2)


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


class _ContentDetector:
    """Stands in for FaceDetector: "finds" one face filling the non-black part of the image it is given (black
    is the padding auto mode adds around small images), landmarks on the ArcFace template scaled to that box;
    records the (H, W) of every image it is asked about."""

    min_confidence = 0.9

    def __init__(self, settings: str = "content v1") -> None:
        self.settings = settings
        self.seen: list[tuple[int, int]] = []

    def detect(self, img, min_confidence=None):
        self.seen.append(img.shape[:2])
        ys, xs = np.nonzero(img.max(axis=2))
        x1, y1, x2, y2 = float(xs.min()), float(ys.min()), float(xs.max() + 1), float(ys.max() + 1)
        landmarks = template(112) / 112.0 * (x2 - x1, y2 - y1) + (x1, y1)
        return [Detection((x1, y1, x2, y2), 0.99, landmarks)]


def test_auto_detects_every_image_and_frames_small_ones(tmp_path):
    # Prepare: a photo at the threshold side, and a 40x50 crop below it.
    side = AUTO_DETECT_MIN_SIDE
    _write(tmp_path / "big" / "photo.jpg", (side, side + 50, 3))
    _write(tmp_path / "small" / "crop.png", (50, 40, 3))
    auto, always, never = _ContentDetector(), _ContentDetector(), _ContentDetector()

    # Execute
    auto_faces = load_folder(tmp_path, 16, detect="auto", detector=auto)
    always_faces = load_folder(tmp_path, 16, detect="always", detector=always)
    never_faces = load_folder(tmp_path, 16, detect="never", detector=never)

    # Assert: auto enlarges the crop 4x (shorter side 160 px) and pads it by a quarter of its longer side (50 px)
    # before detection, and maps the detection back into the file's pixels; always detects as is; never not at all.
    assert auto.seen == [(side, side + 50), (200 + 100, 160 + 100)]
    assert always.seen == [(side, side + 50), (50, 40)] and never.seen == []
    for faces in (auto_faces, always_faces):
        np.testing.assert_allclose(faces.boxes, [[0, 0, side + 50, side], [0, 0, 40, 50]], atol=0.5)
        assert faces.detected.tolist() == [True, True] and faces.confidence.tolist() == pytest.approx([0.99, 0.99])
    np.testing.assert_allclose(auto_faces.landmarks[1], template(112) / 112.0 * (40, 50), atol=0.5)
    assert never_faces.detected.tolist() == [False, False] and np.isnan(never_faces.boxes).all()
    assert auto_faces.images.shape == never_faces.images.shape == (2, 16, 16, 3)


class _PickyDetector(_ContentDetector):
    """Finds a face (0.99) only in bright images; in dark ones its best candidate has confidence 0.42."""

    def detect(self, img, min_confidence=None):
        found = super().detect(img, min_confidence)
        if img.mean() < 128:
            return [Detection(found[0].box, 0.42, found[0].landmarks)]
        return found


def test_image_without_a_face_is_listed_with_the_detector_reason(tmp_path):
    rng = np.random.default_rng(0)
    bright, dark = rng.integers(180, 256, (30, 30, 3), np.uint8), rng.integers(1, 60, (30, 30, 3), np.uint8)
    Image.fromarray(bright).save(_mkdir(tmp_path / "zoe") / "bright.png")
    Image.fromarray(dark).save(tmp_path / "zoe" / "dark.png")

    faces = load_folder(tmp_path, 16, detect="always", detector=_PickyDetector())

    assert faces.sources == [f"{tmp_path.name}/zoe/bright.png"]
    reason = "no face found (best confidence 0.42 < 0.90)"
    assert faces.unusable == [Unusable(f"{tmp_path.name}/zoe/dark.png", reason)]


@pytest.mark.parametrize("mode", ["auto", "never"])
def test_tiny_sliver_and_flat_small_images_are_no_face_crops(tmp_path, mode):
    # Prepare: one good crop and four small images that cannot be faces.
    _write(tmp_path / "ok" / "face.png", (50, 40, 3))
    _write(tmp_path / "bad" / "dot.png", (1, 1, 3))
    _write(tmp_path / "bad" / "line.png", (1, 500, 3))
    _write(tmp_path / "bad" / "sliver.png", (20, 120, 3))
    Image.fromarray(np.full((60, 60, 3), 90, np.uint8)).save(tmp_path / "bad" / "flat.png")
    detector = _ContentDetector()

    # Execute
    faces = load_folder(tmp_path, 16, detect=mode, detector=detector)

    # Assert: each is listed with its reason, and none reaches the detector.
    too_small = "px is too small (a face crop needs at least 16 px a side)"
    assert {u.path.split("/")[-1]: u.reason for u in faces.unusable} == {
        "dot.png": f"not a face: 1x1 {too_small}",
        "line.png": f"not a face: 500x1 {too_small}",
        "sliver.png": "not a face: 120x20 px is a sliver (aspect ratio above 2.5)",
        "flat.png": "not a face: a flat colour (grey-level spread below 2.0)",
    }
    assert faces.sources == [f"{tmp_path.name}/ok/face.png"]
    assert len(detector.seen) == (1 if mode == "auto" else 0)


def test_a_corrupt_image_gets_the_same_reason_on_every_run(people):
    first = load_folder(people, 8, detect=False)
    second = load_folder(people, 8, detect=False)

    assert first.unusable == second.unusable
    assert not any("0x" in u.reason for u in first.unusable)  # no object addresses
    reasons = {u.path: u.reason for u in first.unusable}
    assert reasons["people/alice/broken.png"] == "corrupt or truncated image: cannot identify image file"


def test_detection_cache_detects_each_file_once_per_detector_settings(tmp_path):
    # Prepare: a photo (detected as is) and a small crop (detected framed), and a cache file.
    root = tmp_path / "faces"
    _write(root / "ann" / "photo.png", (220, 260, 3), seed=1)
    _write(root / "ben" / "crop.png", (50, 40, 3), seed=2)
    first_detector, second_detector = _ContentDetector(), _ContentDetector()

    # Execute
    with DetectionCache(tmp_path / "cache" / "detections.sqlite") as cache:
        first = load_folder(root, 24, detector=first_detector, cache=cache)
        second = load_folder(root, 24, detector=second_detector, cache=cache)
        boxed = load_folder(root, Geometry(24, "box", 4), detector=second_detector, cache=cache)
        other = _ContentDetector(settings="content v2")
        load_folder(root, 24, detector=other, cache=cache)
        entries = len(cache)

    # Assert: the second load (and another geometry) detects nothing and gives the same crops and detections;
    # other detector settings are a miss.
    assert len(first_detector.seen) == 2 and second_detector.seen == [] and len(other.seen) == 2
    np.testing.assert_array_equal(second.images, first.images)
    for name in ("boxes", "landmarks", "confidence"):
        np.testing.assert_array_equal(getattr(second, name), getattr(first, name))
        np.testing.assert_array_equal(getattr(boxed, name), getattr(first, name))
    assert not np.array_equal(boxed.images, first.images)
    assert entries == 4


def test_mtcnn_finds_no_face_in_a_small_landscape_or_noise(tmp_path):
    # Prepare: a 160x120 "landscape" (smooth random colour blobs) and 40x40 noise, both below the auto side.
    rng = np.random.default_rng(0)
    landscape = cv2.resize(rng.integers(0, 256, (6, 8, 3), dtype=np.uint8), (160, 120), interpolation=cv2.INTER_CUBIC)
    Image.fromarray(landscape).save(_mkdir(tmp_path / "nobody") / "landscape1.png")
    _write(tmp_path / "nobody" / "noise2.png", (40, 40, 3), seed=9)

    # Execute, Assert: under auto neither becomes a face.
    with pytest.raises(DataError, match=r"\(2 files skipped; first: .*landscape1\.png: no face found \("):
        load_folder(tmp_path, 16, detect="auto", min_confidence=0.8)


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
    ("\ufeff1 1\nann 1 2\nann 1 ben 1\n", r"pairs\.txt: starts with a UTF-8 byte-order mark"),
    ("1 1\nann 2 2\nann 1 ben 1\n", r"pairs\.txt, line 2: pairs image ann 2 with itself"),
    ("1 1\nann 1 2\nben 1 ben 1\n", r"pairs\.txt, line 3: pairs image ben 1 with itself"),
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
def test_orl_crops_are_detected_and_aligned_under_auto(detector):
    root = _real("orl")

    faces = load_folder(root, 32, detector=detector)  # auto: 92x112 crops are framed, then detected

    assert len(faces.identities) == 40 and faces.images.shape == (400, 32, 32, 3)
    assert np.bincount(faces.labels).tolist() == [10] * 40  # measured: MTCNN finds all 400 faces
    assert faces.detected.all() and (faces.confidence >= 0.9).all()
    eyes = faces.landmarks[:, :2]  # in the file's pixels: both eyes inside the 92x112 image, left of right
    assert (eyes >= 0).all() and (eyes[..., 0] < 92).all() and (eyes[..., 1] < 112).all()
    assert (eyes[:, 0, 0] < eyes[:, 1, 0]).all()
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


def test_two_detection_workers_give_the_one_worker_result_and_fill_one_cache(real_data_dir, tmp_path):
    # Prepare: real photos (detected at full size) and a real face-crop set (small images: enlarged and padded)

    folder = real_data_dir / "photos"
    # Execute
    with DetectionCache(tmp_path / "one.sqlite") as cache:
        one = load_folder(folder, 112, cache=cache)
    with DetectionCache(tmp_path / "two.sqlite") as cache:
        two = load_folder(folder, 112, cache=cache, workers=2)
        cached = len(cache)
    # Assert: the same crops, detections, order and unusable files; every image detected went into the cache
    assert np.array_equal(one.images, two.images) and np.array_equal(one.labels, two.labels)
    assert one.sources == two.sources and one.unusable == two.unusable and one.identities == two.identities
    assert cached == len(one.sources) + sum("no face" in u.reason for u in one.unusable) > 0


def test_workers_must_be_a_positive_integer():
    with pytest.raises(ValueError, match="workers must be an integer >= 1, got 0"):
        load_folder("anywhere", 112, workers=0)
