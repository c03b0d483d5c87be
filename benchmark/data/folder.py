"""Real face data: a folder per identity, and the LFW layout with its View 2 ``pairs.txt``.

Both loaders return a :class:`~benchmark.data.faceset.FaceSet` of square RGB crops. A file that
cannot be used (not an image, corrupt, no face found) is never dropped silently: it is listed in
``FaceSet.unusable`` with the reason. Paths in ``sources`` and ``unusable`` are relative to the
dataset folder and start with its name (``orl/s1/1.pgm``), so manifests hold no machine paths.

Face detection (``detect``):

* ``True``: every image goes through :class:`~benchmark.data.detect.FaceDetector` (MTCNN) and is
  replaced by the aligned crop of its main face; an image without a face is unusable.
* ``False``: every image is taken as a face crop: centre-cropped to a square and resized.
* ``"auto"`` (default): decided per image from its size alone. An image whose shorter side is at
  least :data:`AUTO_DETECT_MIN_SIDE` (200) pixels is treated as a photo or frame and detected;
  a smaller one is treated as a face crop. So ORL (92x112), Olivetti (64x64), cropped Extended
  Yale B (168x192), CelebA aligned (178x218) and the synthetic set are used as they are, while
  Yale (320x243 frames with background), LFW (250x250, face in the middle third), CASIA-WebFace
  and in-the-wild photos are detected. The rule does not depend on the target ``size``, so the
  same images are detected whatever crop size a stage asks for.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from benchmark.data.detect import FaceDetector
from benchmark.data.faceset import FaceSet, Unusable
from benchmark.data.images import SUPPORTED_SUFFIXES, ImageReadError, read_image, resize_face
from benchmark.errors import DataError

AUTO_DETECT_MIN_SIDE = 200
_LAYOUT = f"expected <root>/<identity>/<image> with images of type {', '.join(SUPPORTED_SUFFIXES)}"


# params.yaml's words for the detection setting (data.detect).
DETECT_MODES = {"always": True, "never": False}


class _Faces:
    """Turns image files into crops under one detection setting; creates the detector on first need."""

    def __init__(self, size: int, detect: bool | str, detector: FaceDetector | None,
                 min_confidence: float | None) -> None:
        if not isinstance(size, (int, np.integer)) or isinstance(size, bool) or size < 1:
            raise ValueError(f"size must be a positive integer (pixels), got {size!r}")
        detect = DETECT_MODES.get(detect, detect) if isinstance(detect, str) else detect
        if detect not in (True, False, "auto") or not isinstance(detect, (bool, str)):
            raise ValueError(f"detect must be 'auto', 'always', 'never', True or False, got {detect!r}")
        if detector is not None and min_confidence is not None:
            raise ValueError("give either detector or min_confidence (for the default detector), not both")
        self.size, self.detect, self._detector = int(size), detect, detector
        self._min_confidence = 0.9 if min_confidence is None else min_confidence

    def crop(self, path: Path) -> np.ndarray:
        """uint8 (size, size, 3) crop of ``path``; raises DataError with the reason when unusable."""
        img = read_image(path)
        looks_like_photo = min(img.shape[:2]) >= AUTO_DETECT_MIN_SIDE
        if not (self.detect is True or (self.detect == "auto" and looks_like_photo)):
            return resize_face(img, self.size)
        if self._detector is None:
            self._detector = FaceDetector(min_confidence=self._min_confidence)
        face = self._detector.main_face(img)
        return self._detector.crop(img, face, self.size)


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


def load_folder(root: str | os.PathLike, size: int, detect: bool | str = "auto",
                detector: FaceDetector | None = None, min_confidence: float | None = None) -> FaceSet:
    """Load ``root/<identity>/<image>`` into a FaceSet of (size, size, 3) crops.

    Identities are the sub-folder names, sorted; images inside are sorted by file name.
    Identities with a single usable image are kept (they can serve as impostors); identities with
    none are dropped. Listed in ``unusable`` with the reason: files directly in ``root``, files
    that are not supported images, corrupt or truncated images, images without a face (when
    detected) and folders nested inside an identity folder. Dot-files are ignored.

    size: crop side in pixels. detect: True, False or "auto" (see the module docstring).
    detector: the FaceDetector to use (default: ``FaceDetector(min_confidence)``, built only if needed).
    min_confidence: threshold of that default detector (default 0.9); not allowed with ``detector``.
    Raises DataError when ``root`` does not exist, is not a folder, has no identity sub-folders,
    or yields no usable image at all.
    """
    root = Path(root)
    faces = _Faces(size, detect, detector, min_confidence)
    _check_folder(root)
    prefix = Path(os.path.abspath(root)).name

    def rel(path: Path) -> str:
        return f"{prefix}/{path.relative_to(root).as_posix()}"

    unusable: list[Unusable] = []
    images: list[np.ndarray] = []
    labels: list[int] = []
    sources: list[str] = []
    identities: list[str] = []
    entries = _visible(root)
    folders = [p for p in entries if p.is_dir()]
    unusable += [Unusable(rel(p), "not in an identity sub-folder (expected <root>/<identity>/<image>)")
                 for p in entries if not p.is_dir()]
    if not folders:
        raise DataError(f"{root}: empty folder: no identity sub-folders ({_LAYOUT})")
    for folder in folders:
        kept = 0
        for path in _visible(folder):
            if path.is_dir():
                unusable.append(Unusable(rel(path) + "/", "folder inside an identity folder (not read)"))
                continue
            try:
                crop = faces.crop(path)
            except DataError as exc:
                unusable.append(Unusable(rel(path), _reason(exc)))
                continue
            images.append(crop)
            labels.append(len(identities))
            sources.append(rel(path))
            kept += 1
        if kept:
            identities.append(folder.name)
    if not images:
        first = f"; first: {unusable[0].path}: {unusable[0].reason}" if unusable else ""
        raise DataError(f"{root}: empty folder: no usable images in {len(folders)} identity sub-folders "
                        f"({len(unusable)} files skipped{first}; {_LAYOUT})")
    return FaceSet(np.stack(images), np.asarray(labels, dtype=np.int64), identities, sources, unusable)


def load_lfw(root: str | os.PathLike, pairs_path: str | os.PathLike, size: int, detect: bool | str = "auto",
             detector: FaceDetector | None = None, min_confidence: float | None = None,
             ) -> tuple[FaceSet, np.ndarray, np.ndarray, np.ndarray]:
    """Load the LFW images that ``pairs.txt`` (View 2) refers to, and its pairs.

    pairs.txt: a header ``<folds> <n>`` (View 2: ``10 300``; a single ``<n>`` means one fold, as in
    View 1's pairsDevTrain.txt), then per fold n genuine lines ``name i j`` and n impostor lines
    ``name1 i name2 j``. Image ``name i`` is ``root/name/name_%04d.jpg``. size, detect, detector
    and min_confidence are as in :func:`load_folder`.

    Returns (faces, pairs, is_same, folds):
        faces:   FaceSet of the referenced images only, identities sorted by name.
        pairs:   int64, shape (P, 2), indices into ``faces.images``.
        is_same: bool, shape (P,), True for a genuine pair.
        folds:   int64, shape (P,), fold index in [0, folds).
    A pair that refers to an unusable image (corrupt, no face found) is dropped and the image is
    listed in ``faces.unusable``, so P can be below folds * 2n; the manifest says why.
    Raises DataError for a missing folder or pairs file, a malformed line (line number and content),
    wrong pair counts, a pair that refers to a missing image, or no usable pair at all.
    """
    root, pairs_path = Path(root), Path(pairs_path)
    faces = _Faces(size, detect, detector, min_confidence)
    _check_folder(root)
    prefix = Path(os.path.abspath(root)).name
    raw = _parse_pairs(pairs_path)

    keys = sorted({key for (a, b, _, _, _) in raw for key in (a, b)})
    for a, b, _, _, line in raw:
        for name, number in (a, b):
            if not _lfw_file(root, name, number).is_file():
                raise DataError(f"{pairs_path}, line {line}: pair refers to a missing image "
                                f"{_lfw_file(root, name, number)}")
    index: dict[tuple[str, int], int] = {}
    images, names, sources, unusable = [], [], [], []
    for name, number in keys:
        path = _lfw_file(root, name, number)
        rel = f"{prefix}/{path.relative_to(root).as_posix()}"
        try:
            crop = faces.crop(path)
        except DataError as exc:
            unusable.append(Unusable(rel, _reason(exc)))
            continue
        index[(name, number)] = len(images)
        images.append(crop)
        names.append(name)
        sources.append(rel)
    kept = [r for r in raw if r[0] in index and r[1] in index]
    if not kept:
        raise DataError(f"{pairs_path}: no usable pair ({len(unusable)} of {len(keys)} images unusable)")
    identities = sorted(set(names))
    label_of = {name: k for k, name in enumerate(identities)}
    labels = np.asarray([label_of[name] for name in names], dtype=np.int64)
    faceset = FaceSet(np.stack(images), labels, identities, sources, unusable)
    pairs = np.asarray([(index[a], index[b]) for a, b, _, _, _ in kept], dtype=np.int64)
    is_same = np.asarray([same for _, _, same, _, _ in kept], dtype=bool)
    folds = np.asarray([fold for _, _, _, fold, _ in kept], dtype=np.int64)
    return faceset, pairs, is_same, folds


def _lfw_file(root: Path, name: str, number: int) -> Path:
    return root / name / f"{name}_{number:04d}.jpg"


def _parse_pairs(path: Path) -> list[tuple[tuple[str, int], tuple[str, int], bool, int, int]]:
    """Parse pairs.txt into (image a, image b, is_same, fold, line number) per pair."""
    try:
        lines = path.read_text().splitlines()
    except OSError as exc:
        raise DataError(f"{path}: cannot read the LFW pairs file: {exc.strerror or exc}") from exc
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
        pairs.append((a, b, genuine, k // (2 * per), line))
    for fold in range(n_folds):
        same = sum(p[2] for p in pairs if p[3] == fold)
        if same != per:
            raise DataError(f"{path}: fold {fold + 1} has {same} genuine and {2 * per - same} impostor pairs, "
                            f"expected {per} of each")
    return pairs
