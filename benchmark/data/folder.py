"""Real face data: a folder per identity, and the LFW layout with its View 2 ``pairs.txt``.

Both loaders return a :class:`~benchmark.data.faceset.FaceSet` of square RGB crops cut to one
:class:`~benchmark.data.align.Geometry` (default: the ArcFace 5-point template at ``size`` pixels), with
each image's detection kept (box, confidence, 5 landmarks; NaN where the image was taken as a crop), so
crops for another geometry need no second detection. A file that cannot be used (not an image, corrupt,
no face found, not a face crop) is never dropped silently: it is listed in ``FaceSet.unusable`` with the
reason. Paths in ``sources`` and ``unusable`` are relative to the dataset folder and start with its name
(``orl/s1/1.pgm``), so manifests hold no machine paths.

Face detection (``detect``), MTCNN (:class:`~benchmark.data.detect.FaceDetector`):

* ``"auto"`` (default, or True): every image is detected and the main face (FaceNet's rule,
  :func:`~benchmark.data.detect.pick_main`) is aligned. An image whose shorter side is under
  :data:`AUTO_DETECT_MIN_SIDE` (200) pixels is probably a tight face crop (ORL 92x112, Olivetti 64x64,
  CelebA aligned 178x218): it is first checked (:func:`check_crop`: not tiny, not a sliver, not a flat
  colour), then enlarged to 160 px and padded by a quarter of its side so MTCNN sees a whole face; a small
  image without a face (a landscape thumbnail) is unusable, never a face.
* ``"always"``: as ``auto``, but small images are detected as they are (no enlarging or padding): for
  small photos whose faces are small.
* ``"never"`` (or False): every image is taken as a face crop (checked by :func:`check_crop`),
  centre-cropped to a square and resized; the manifest records it as a crop.

``workers`` > 1 prepares the images in that many processes (spawned, each with its own MTCNN on one thread and
its own connection to the detection cache); the result is the same as with one, in the same order.
"""

from __future__ import annotations

import hashlib
import multiprocessing
import os
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import cv2
import numpy as np
from tqdm.auto import tqdm

from benchmark.data.align import Geometry, cut
from benchmark.data.detect import Detection, FaceDetector, pick_main
from benchmark.data.detection_cache import DetectionCache
from benchmark.data.faceset import FaceSet, Unusable
from benchmark.data.images import SUPPORTED_SUFFIXES, ImageReadError, read_image, resize_face
from benchmark.errors import DataError

AUTO_DETECT_MIN_SIDE = 200
MIN_CROP_SIDE = 16          # pixels: a face crop smaller than this holds no face worth matching
MAX_CROP_ASPECT = 2.5       # longer / shorter side: a face crop is roughly square (ORL 1.22, CelebA aligned 1.22)
MIN_CROP_CONTRAST = 2.0     # standard deviation of the grey levels (0-255): below it the image is a flat colour
DETECT_SIDE = 160           # small images are enlarged to this shorter side before detection
DETECT_PAD = 0.25           # ... and padded by this share of their longer side on every edge
_LAYOUT = f"expected <root>/<identity>/<image> with images of type {', '.join(SUPPORTED_SUFFIXES)}"

# params.yaml's words for the detection setting (data.detect).
DETECT_MODES = {"auto": "auto", "always": "always", "never": "never", True: "auto", False: "never"}


def check_crop(img: np.ndarray) -> None:
    """Raise DataError with the reason when ``img`` (H, W, 3) cannot be a face crop: a side under
    :data:`MIN_CROP_SIDE`, an aspect ratio over :data:`MAX_CROP_ASPECT`, or a flat colour."""
    h, w = img.shape[:2]
    if min(h, w) < MIN_CROP_SIDE:
        raise DataError(f"not a face: {w}x{h} px is too small (a face crop needs at least {MIN_CROP_SIDE} px a side)")
    if max(h, w) / min(h, w) > MAX_CROP_ASPECT:
        raise DataError(f"not a face: {w}x{h} px is a sliver (aspect ratio above {MAX_CROP_ASPECT})")
    if float(cv2.cvtColor(img, cv2.COLOR_RGB2GRAY).std()) < MIN_CROP_CONTRAST:
        raise DataError(f"not a face: a flat colour (grey-level spread below {MIN_CROP_CONTRAST})")


@dataclass(frozen=True)
class Prepared:
    """One image made ready: its crop and the detection it was cut from (None: taken as a crop)."""

    crop: np.ndarray
    detection: Detection | None


class FacePreparer:
    """Turns image files into crops of one geometry under one detection setting.

    geometry:       the crop (default ArcFace template; a plain int is that size on the template).
    detect:         "auto" | "always" | "never" (or True / False), see the module docstring.
    detector:       the FaceDetector (default ``FaceDetector(min_confidence)``, built on first need).
    min_confidence: that default detector's floor (default 0.9); not allowed with ``detector``.
    cache:          a :class:`DetectionCache`: images already detected with the same settings are not
                    detected again.
    workers:        processes :meth:`prepare_all` uses (default 1: this one).
    """

    def __init__(self, geometry: Geometry | int, detect: bool | str = "auto", detector: FaceDetector | None = None,
                 min_confidence: float | None = None, cache: DetectionCache | None = None, workers: int = 1) -> None:
        if isinstance(geometry, (int, np.integer)) and not isinstance(geometry, bool):
            geometry = Geometry(int(geometry)) if geometry >= 8 else None
        if not isinstance(geometry, Geometry):
            raise ValueError(f"size must be an integer of at least 8 pixels or a Geometry, got {geometry!r}")
        if not isinstance(detect, (bool, str)) or detect not in DETECT_MODES:
            raise ValueError(f"detect must be 'auto', 'always', 'never', True or False, got {detect!r}")
        if detector is not None and min_confidence is not None:
            raise ValueError("give either detector or min_confidence (for the default detector), not both")
        if isinstance(workers, bool) or not isinstance(workers, (int, np.integer)) or workers < 1:
            raise ValueError(f"workers must be an integer >= 1, got {workers!r}")
        self.geometry, self.mode, self._detector, self.cache = geometry, DETECT_MODES[detect], detector, cache
        self.workers = int(workers)
        self._min_confidence = 0.9 if min_confidence is None else min_confidence

    @property
    def detector(self) -> FaceDetector:
        if self._detector is None:
            self._detector = FaceDetector(min_confidence=self._min_confidence)
        return self._detector

    def prepare(self, path: Path) -> Prepared:
        """The crop of ``path`` and its detection; raises DataError with the reason when unusable."""
        img = read_image(path)
        small = min(img.shape[:2]) < AUTO_DETECT_MIN_SIDE
        if small or self.mode == "never":
            check_crop(img)
        if self.mode == "never":
            return Prepared(resize_face(img, self.geometry.size), None)
        face = pick_main(self._candidates(path, img, small and self.mode == "auto"), img.shape[:2],
                         self.detector.min_confidence)
        return Prepared(cut(img, np.asarray(face.box), face.landmarks, self.geometry), face)

    def prepare_all(self, paths: list[Path]) -> Iterator[Prepared | str]:
        """:meth:`prepare` of each path, in order; for an unusable file the reason (str) instead. With
        ``workers`` > 1 in that many spawned processes, each given a copy of this preparer once."""
        workers = min(self.workers, len(paths))
        if workers <= 1:
            yield from (_prepare_or_reason(self, path) for path in paths)
            return
        with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn"),
                                 initializer=_start_worker, initargs=(self,)) as pool:
            yield from pool.map(_prepare_in_worker, paths, chunksize=4)

    def _candidates(self, path: Path, img: np.ndarray, pad: bool) -> list[Detection]:
        """Every MTCNN candidate in ``img``'s own pixel coordinates (from the cache when it has them)."""
        key = None
        if self.cache is not None:
            digest = hashlib.sha256(path.read_bytes()).hexdigest()
            key = DetectionCache.key(digest, f"{self.detector.settings} pad={pad}")
            cached = self.cache.get(key)
            if cached is not None:
                return cached
        found = _detect_padded(self.detector, img) if pad else self.detector.detect(img, min_confidence=0.0)
        if key is not None:
            self.cache.put(key, found)
        return found


def _prepare_or_reason(preparer: FacePreparer, path: Path) -> Prepared | str:
    try:
        return preparer.prepare(path)
    except DataError as exc:
        return _reason(exc)


_worker_preparer: FacePreparer | None = None  # set once in each worker process of FacePreparer.prepare_all


def _start_worker(preparer: FacePreparer) -> None:
    global _worker_preparer
    _worker_preparer = preparer


def _prepare_in_worker(path: Path) -> Prepared | str:
    return _prepare_or_reason(_worker_preparer, path)


def _detect_padded(detector: FaceDetector, img: np.ndarray) -> list[Detection]:
    """Detect in a small image enlarged to :data:`DETECT_SIDE` and padded; results in ``img``'s coordinates."""
    h, w = img.shape[:2]
    scale = max(1.0, DETECT_SIDE / min(h, w))
    big = cv2.resize(img, (round(w * scale), round(h * scale)), interpolation=cv2.INTER_LINEAR) if scale > 1 else img
    pad = int(DETECT_PAD * max(big.shape[:2]))
    framed = cv2.copyMakeBorder(np.ascontiguousarray(big), pad, pad, pad, pad, cv2.BORDER_CONSTANT, value=(0, 0, 0))
    back = np.array([pad, pad])
    return [Detection(tuple(float(v) for v in (np.asarray(d.box).reshape(2, 2) - back).ravel() / scale), d.confidence,
                      (d.landmarks - back) / scale)
            for d in detector.detect(framed, min_confidence=0.0)]


def _reason(exc: DataError) -> str:
    return exc.reason if isinstance(exc, ImageReadError) else str(exc)


def _check_folder(root: Path) -> None:
    if not root.exists():
        raise DataError(f"{root}: dataset folder does not exist ({_LAYOUT})")
    if not root.is_dir():
        raise DataError(f"{root}: is a file, not a folder ({_LAYOUT})")


def _visible(folder: Path) -> list[Path]:
    """Entries of ``folder`` sorted by name, without dot-files (.DS_Store, .git, ...)."""
    return sorted((p for p in folder.iterdir() if not p.name.startswith(".")), key=lambda p: p.name)


def photo_files(root: Path) -> list[Path]:
    """The files :func:`load_folder` reads from ``root/<identity>/``, identities and files in name order."""
    return [p for folder in _visible(root) if folder.is_dir() for p in _visible(folder) if not p.is_dir()]


def _prepare_all(preparer: FacePreparer, files: list[Path], rel, desc: str):
    """Prepare ``files`` with a progress bar; returns (kept: {index: Prepared}, unusable)."""
    kept: dict[int, Prepared] = {}
    unusable: list[Unusable] = []
    results = tqdm(preparer.prepare_all(files), total=len(files), desc=desc, unit="img", mininterval=5.0,
                   disable=len(files) < 50)
    for k, (path, result) in enumerate(zip(files, results)):
        if isinstance(result, str):
            unusable.append(Unusable(rel(path), result))
        else:
            kept[k] = result
    return kept, unusable


def _faceset(prepared: list[Prepared], labels: list[int], identities: list[str], sources: list[str],
             unusable: list[Unusable]) -> FaceSet:
    detections = [p.detection for p in prepared]
    nan = np.full((len(prepared),), np.nan, np.float32)
    boxes, landmarks, confidence = np.tile(nan[:, None], 4), np.tile(nan[:, None, None], (5, 2)), nan.copy()
    for k, d in enumerate(detections):
        if d is not None:
            boxes[k], landmarks[k], confidence[k] = d.box, d.landmarks, d.confidence
    return FaceSet(np.stack([p.crop for p in prepared]), np.asarray(labels, dtype=np.int64), identities, sources,
                   unusable, boxes=boxes, landmarks=landmarks, confidence=confidence)


def load_folder(root: str | os.PathLike, size: int | Geometry, detect: bool | str = "auto",
                detector: FaceDetector | None = None, min_confidence: float | None = None,
                cache: DetectionCache | None = None, workers: int = 1) -> FaceSet:
    """Load ``root/<identity>/<image>`` into a FaceSet of crops.

    Identities are the sub-folder names, sorted; images inside are sorted by file name.
    Identities with a single usable image are kept (they can serve as impostors); identities with
    none are dropped. Listed in ``unusable`` with the reason: files directly in ``root``, files
    that are not supported images, corrupt or truncated images, images without a face or that are no
    face crop, and folders nested inside an identity folder. Dot-files are ignored.

    size: crop side in pixels (ArcFace template) or a Geometry. detect, detector, min_confidence, cache, workers:
    see :class:`FacePreparer`. Shows a progress bar for 50 images or more.
    Raises DataError when ``root`` does not exist, is not a folder, has no identity sub-folders,
    or yields no usable image at all.
    """
    root = Path(root)
    preparer = FacePreparer(size, detect, detector, min_confidence, cache, workers)
    _check_folder(root)
    prefix = Path(os.path.abspath(root)).name

    def rel(path: Path) -> str:
        return f"{prefix}/{path.relative_to(root).as_posix()}"

    entries = _visible(root)
    folders = [p for p in entries if p.is_dir()]
    unusable = [Unusable(rel(p), "not in an identity sub-folder (expected <root>/<identity>/<image>)")
                for p in entries if not p.is_dir()]
    if not folders:
        raise DataError(f"{root}: empty folder: no identity sub-folders ({_LAYOUT})")
    files, owners = [], []
    for n, folder in enumerate(folders):
        for path in _visible(folder):
            if path.is_dir():
                unusable.append(Unusable(rel(path) + "/", "folder inside an identity folder (not read)"))
            else:
                files.append(path)
                owners.append(n)
    kept, failed = _prepare_all(preparer, files, rel, f"faces in {prefix}")
    unusable += failed
    if not kept:
        first = f"; first: {unusable[0].path}: {unusable[0].reason}" if unusable else ""
        raise DataError(f"{root}: empty folder: no usable images in {len(folders)} identity sub-folders "
                        f"({len(unusable)} files skipped{first}; {_LAYOUT})")
    used = sorted({owners[k] for k in kept})
    label_of = {n: i for i, n in enumerate(used)}
    order = sorted(kept)
    return _faceset([kept[k] for k in order], [label_of[owners[k]] for k in order], [folders[n].name for n in used],
                    [rel(files[k]) for k in order], unusable)


def load_lfw(root: str | os.PathLike, pairs_path: str | os.PathLike, size: int | Geometry,
             detect: bool | str = "auto", detector: FaceDetector | None = None,
             min_confidence: float | None = None, cache: DetectionCache | None = None, workers: int = 1,
             ) -> tuple[FaceSet, np.ndarray, np.ndarray, np.ndarray]:
    """Load the LFW images that ``pairs.txt`` (View 2) refers to, and its pairs, used exactly as given.

    pairs.txt: a header ``<folds> <n>`` (View 2: ``10 300``; a single ``<n>`` means one fold, as in
    View 1's pairsDevTrain.txt), then per fold n genuine lines ``name i j`` and n impostor lines
    ``name1 i name2 j``. Image ``name i`` is ``root/name/name_%04d.jpg``. Every identity may appear in
    the pairs (as in LFW). size, detect, detector, min_confidence and cache are as in :func:`load_folder`.

    Returns (faces, pairs, is_same, folds):
        faces:   FaceSet of the referenced images only, identities sorted by name.
        pairs:   int64, shape (P, 2), indices into ``faces.images``.
        is_same: bool, shape (P,), True for a genuine pair.
        folds:   int64, shape (P,), fold index in [0, folds).
    A pair that refers to an unusable image (corrupt, no face found) is dropped and the image is
    listed in ``faces.unusable``, so P can be below folds * 2n; the manifest says why.
    Raises DataError for a missing folder or pairs file, a byte-order mark, a malformed line (line number and
    content), a pair of an image with itself, wrong pair counts, a pair that refers to a missing image, or
    no usable pair at all.
    """
    root, pairs_path = Path(root), Path(pairs_path)
    preparer = FacePreparer(size, detect, detector, min_confidence, cache, workers)
    _check_folder(root)
    prefix = Path(os.path.abspath(root)).name
    raw = _parse_pairs(pairs_path)

    keys = sorted({key for (a, b, _, _, _) in raw for key in (a, b)})
    for a, b, _, _, line in raw:
        for name, number in (a, b):
            if not _lfw_file(root, name, number).is_file():
                raise DataError(f"{pairs_path}, line {line}: pair refers to a missing image "
                                f"{_lfw_file(root, name, number)}")
    files = [_lfw_file(root, name, number) for name, number in keys]

    def rel(path: Path) -> str:
        return f"{prefix}/{path.relative_to(root).as_posix()}"

    kept, unusable = _prepare_all(preparer, files, rel, f"faces in {prefix}")
    order = sorted(kept)
    index = {keys[k]: n for n, k in enumerate(order)}
    pairs_kept = [r for r in raw if r[0] in index and r[1] in index]
    if not pairs_kept:
        raise DataError(f"{pairs_path}: no usable pair ({len(unusable)} of {len(keys)} images unusable)")
    names = [keys[k][0] for k in order]
    identities = sorted(set(names))
    label_of = {name: n for n, name in enumerate(identities)}
    faceset = _faceset([kept[k] for k in order], [label_of[name] for name in names], identities,
                       [rel(files[k]) for k in order], unusable)
    pairs = np.asarray([(index[a], index[b]) for a, b, _, _, _ in pairs_kept], dtype=np.int64)
    is_same = np.asarray([same for _, _, same, _, _ in pairs_kept], dtype=bool)
    folds = np.asarray([fold for _, _, _, fold, _ in pairs_kept], dtype=np.int64)
    return faceset, pairs, is_same, folds


def _lfw_file(root: Path, name: str, number: int) -> Path:
    return root / name / f"{name}_{number:04d}.jpg"


def _parse_pairs(path: Path) -> list[tuple[tuple[str, int], tuple[str, int], bool, int, int]]:
    """Parse pairs.txt into (image a, image b, is_same, fold, line number) per pair."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise DataError(f"{path}: cannot read the LFW pairs file: {exc.strerror or exc}") from exc
    if data.startswith(b"\xef\xbb\xbf"):
        raise DataError(f"{path}: starts with a UTF-8 byte-order mark; save it as plain UTF-8 or ASCII text "
                        "without a BOM (header '<folds> <pairs per class>', then one pair a line)")
    try:
        lines = data.decode("utf-8").splitlines()
    except UnicodeDecodeError as exc:
        raise DataError(f"{path}: not UTF-8 text (byte {exc.start}); a pairs file holds ASCII names and numbers") from exc
    numbered = [(k + 1, line.split()) for k, line in enumerate(lines) if line.strip()]
    if not numbered:
        raise DataError(f"{path}: empty pairs file (expected a header '<folds> <pairs per class>')")
    header_line, header = numbered[0]
    if len(header) not in (1, 2) or not all(t.isdigit() and int(t) > 0 for t in header):
        raise DataError(f"{path}, line {header_line}: expected a header '<folds> <pairs per class>' "
                        f"(View 2: '10 300'), got '{' '.join(header)}'")
    n_folds, per = (1, int(header[0])) if len(header) == 1 else (int(header[0]), int(header[1]))
    body = numbered[1:]
    if len(body) != n_folds * 2 * per:
        raise DataError(f"{path}: header says {n_folds} folds x {2 * per} pairs = {n_folds * 2 * per} "
                        f"pair lines, found {len(body)}")
    pairs = []
    for k, (line, tokens) in enumerate(body):
        genuine = len(tokens) == 3 and tokens[1].isdigit() and tokens[2].isdigit()
        impostor = len(tokens) == 4 and tokens[1].isdigit() and tokens[3].isdigit()
        if not (genuine or impostor) or any(t.isdigit() and int(t) == 0 for t in tokens[1:]):
            raise DataError(f"{path}, line {line}: expected 'name i j' (genuine) or 'name1 i name2 j' "
                            f"(impostor) with image numbers >= 1, got '{' '.join(tokens)}'")
        a, b = ((tokens[0], int(tokens[1])), (tokens[0], int(tokens[2]))) if genuine else \
            ((tokens[0], int(tokens[1])), (tokens[2], int(tokens[3])))
        if a == b:
            raise DataError(f"{path}, line {line}: pairs image {a[0]} {a[1]} with itself; a genuine pair names "
                            "two different images of one person")
        pairs.append((a, b, genuine, k // (2 * per), line))
    for fold in range(n_folds):
        same = sum(p[2] for p in pairs if p[3] == fold)
        if same != per:
            raise DataError(f"{path}: fold {fold + 1} has {same} genuine and {2 * per - same} impostor pairs, "
                            f"expected {per} of each")
    return pairs
