"""The ``data`` stage: load or generate the training source, build its protocol, load every benchmark set,
run the eigenfaces baseline on each, write it all.

Outputs (paths from params.yaml ``paths``), each written atomically:

* ``<artifacts>/data/faces.npz``: the training source: images uint8 (N, H, W, 3), labels, identities,
  sources, the geometry they were cut to (``arcface 112px``), and the kept detections (boxes, landmarks,
  confidence; NaN where taken as a crop);
* ``<artifacts>/data/protocol.npz``: the :class:`~benchmark.data.protocol.Protocol` arrays;
* ``<artifacts>/data/benchmarks/<name>.npz``: each benchmark set (:class:`~benchmark.data.dataset.BenchmarkSet`);
* ``<artifacts>/data/videos.npz``: synthetic test-identity videos with per-frame quality (synthetic only);
* ``<artifacts>/data/calibration_videos.npz``: the same for the validation identities, on which the identification
  stage calibrates its quality gate (synthetic only);
* ``<artifacts>/data/manifest.json``: counts, the data seed (``data.seed``), source, content hashes, per input file
  whether it was detected and aligned or taken as a crop, every unusable input, and each benchmark set's overlap with training;
* ``<reports>/metrics/data.json``: the stage's metrics (the contract later stages and reviewers read).

Real faces are detected once: ``<artifacts>/cache/detections.sqlite`` keeps MTCNN's candidates per file
content (:class:`~benchmark.data.detection_cache.DetectionCache`), so a sweep of ``data.image_size`` or
``data.alignment`` does not detect again.
"""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from benchmark import io
from benchmark.config import Params, as_dict
from benchmark.data import benchmarks as benchmarks_mod
from benchmark.data import protocol as protocol_mod
from benchmark.data import synthetic, synthetic_video
from benchmark.data.dataset import BenchmarkSet, data_folder, data_geometry
from benchmark.data.detection_cache import DetectionCache
from benchmark.data.faceset import FaceSet, Unusable
from benchmark.data.folder import FacePreparer, load_folder
from benchmark.data.synthetic_video import VideoSet
from benchmark.evaluation.verification import cosine_scores, verification_report
from benchmark.models.eigenfaces import Eigenfaces
from benchmark.parallel import cpu_count


def detect_workers(setting: int) -> int:
    """``data.detect_workers``: as given, or 0 -> one per CPU core this process may use."""
    return setting or cpu_count()


def preparer(params: Params) -> FacePreparer:
    """Detection and cropping settings of the data stage, with the detection cache under ``<artifacts>/cache``."""
    cache = DetectionCache(Path(params.paths.artifacts) / "cache" / "detections.sqlite")
    return FacePreparer(data_geometry(params.data), params.data.detect, min_confidence=params.data.min_face_confidence,
                        cache=cache, workers=detect_workers(params.data.detect_workers))


@dataclass
class DataResult:
    """Everything the notebook shows: the faces, protocol, benchmark sets, videos, eigenfaces scores and the
    metrics. ``eigen_scores`` holds the eigenfaces pair scores of each benchmark set."""

    faces: FaceSet
    protocol: protocol_mod.Protocol
    benchmarks: dict[str, BenchmarkSet]
    videos: VideoSet | None
    identity_params: np.ndarray | None
    eigen_scores: dict[str, np.ndarray]
    metrics: dict
    manifest: dict


EIGEN_KEYS = ("accuracy_mean", "accuracy_std", "auc", "eer", "tar_at_far_1e-3")


def run(params: Params) -> DataResult:
    """Run the data stage with validated ``params``; returns what it wrote."""
    start = time.perf_counter()
    cfg, seed = params.data, params.data.seed
    geometry = data_geometry(cfg)
    for k, b in enumerate(cfg.benchmarks):  # before minutes of detection, not after
        benchmarks_mod.check_path(b, f"data.benchmarks[{k}]")
    identity_params, prep = None, None
    if cfg.source == "synthetic":
        faces, _ = synthetic.generate(seed, cfg.synthetic.identities, cfg.synthetic.images_per_identity,
                                      cfg.image_size, cfg.synthetic.difficulty)
        identity_params = synthetic.identities(seed, cfg.synthetic.identities)
    else:
        prep = preparer(params)
        faces = load_folder(cfg.path, prep.geometry, detect=prep.mode, detector=prep.detector, cache=prep.cache,
                            workers=prep.workers)
    proto = protocol_mod.build(faces, cfg.protocol, seed)
    sets, unusable = {}, {}
    for k, b in enumerate(cfg.benchmarks):
        if b.format != "split" and prep is None:
            prep = preparer(params)
        sets[b.name], unusable[b.name] = benchmarks_mod.build(b, f"data.benchmarks[{k}]", faces, proto, geometry, prep,
                                                              cfg.protocol, seed)
    videos = calibration_videos = None
    if identity_params is not None:
        video_args = (cfg.synthetic.video_frames, cfg.image_size, cfg.synthetic.difficulty, cfg.synthetic.spoiled_share)
        videos = synthetic_video.generate(seed, identity_params, np.unique(faces.labels[proto.test]), *video_args)
        calibration_videos = synthetic_video.generate(seed, identity_params, np.unique(faces.labels[proto.val_pairs]),
                                                      *video_args, desc="calibration videos")

    eig = Eigenfaces(cfg.eigenfaces.components, seed).fit(faces.images[proto.train])
    scores = {name: cosine_scores(eig.embed(s.images), s.pairs) for name, s in sets.items()}
    eigen = {name: verification_report(scores[name], s.is_same, s.folds) for name, s in sets.items()}

    out = data_folder(params)
    overlaps = {name: benchmarks_mod.overlap(faces, s) for name, s in sets.items()}
    manifest = build_manifest(faces, proto, videos, params)
    manifest["benchmarks"] = {name: _bench_manifest(s, unusable[name], overlaps[name]) for name, s in sets.items()}
    io.write_npz(
        out / "faces.npz",
        images=faces.images,
        labels=faces.labels,
        identities=np.asarray(faces.identities),
        sources=np.asarray(faces.sources),
        geometry=np.asarray(geometry.describe()),
        **_detections(faces),
    )
    io.write_npz(out / "protocol.npz", **proto.arrays())
    for name, s in sets.items():
        io.write_npz(out / "benchmarks" / f"{name}.npz", **s.arrays())
    if videos is not None:
        io.write_npz(out / "videos.npz", **videos.arrays())
        io.write_npz(out / "calibration_videos.npz", **calibration_videos.arrays())
    io.write_json(out / "manifest.json", manifest)
    labels = faces.labels
    metrics = {
        "identities": len(faces.identities),
        "images": int(len(faces.images)),
        "unusable_inputs": len(faces.unusable),
        "train_images": int(len(proto.train)),
        "test_images": int(len(proto.test)),
        "pairs": int(len(proto.pairs)),
        "videos": 0 if videos is None else int(len(videos.labels)),
        "calibration_videos": 0 if calibration_videos is None else int(len(calibration_videos.labels)),
        "seconds": round(time.perf_counter() - start, 2),
        "training": {
            "identities": int(len(np.unique(labels[proto.train]))),
            "images": int(len(proto.train)),
            "val_identities": int(len(np.unique(labels[proto.val_pairs.ravel()]))),
            "val_pairs": int(len(proto.val_pairs)),
        },
        "benchmarks": {
            name: {
                "format": s.format,
                "pairs": int(len(s.pairs)),
                "identities": int(len(np.unique(s.labels))),
                "images": int(len(s.images)),
                "unusable": len(unusable[name]),
                "overlap_identities": len(overlaps[name]),
            }
            for name, s in sets.items()
        },
        "eigenfaces": {name: {k: report[k] for k in EIGEN_KEYS} for name, report in eigen.items()},
    }
    io.write_json(Path(params.paths.reports) / "metrics" / "data.json", metrics)
    return DataResult(faces, proto, sets, videos, identity_params, scores, metrics, manifest)


def _detections(faces: FaceSet) -> dict[str, np.ndarray]:
    if faces.confidence is None:
        return {}
    return {"boxes": faces.boxes, "landmarks": faces.landmarks, "confidence": faces.confidence}


def _bench_manifest(s: BenchmarkSet, unusable: list[Unusable], overlap: list[str]) -> dict:
    """A benchmark set's manifest entry: counts, how its faces were cut, its overlap with training."""
    detected = int(s.detected.sum())
    return {
        "format": s.format,
        "images": int(len(s.images)),
        "detected_and_aligned": detected,
        "taken_as_crop": int(len(s.images) - detected),
        "mixed_preparation": bool(0 < detected < len(s.images)),
        "pairs": int(len(s.pairs)),
        "genuine_pairs": int(s.is_same.sum()),
        "overlap_identities": overlap,
        "unusable": [{"path": u.path, "reason": u.reason} for u in unusable],
    }


def build_manifest(faces: FaceSet, proto: protocol_mod.Protocol, videos: VideoSet | None, params: Params) -> dict:
    """Counts, seed, source, content hashes and unusable inputs: what a reviewer needs to trust the split."""
    labels = faces.labels
    per_identity = np.bincount(labels, minlength=len(faces.identities))
    digest = hashlib.sha256(faces.images.tobytes())
    digest.update(labels.tobytes())
    proto_digest = hashlib.sha256()
    for name, arr in sorted(proto.arrays().items()):
        proto_digest.update(name.encode() + np.ascontiguousarray(arr).tobytes())
    return {
        "seed": params.data.seed,
        "source": {"kind": params.data.source, "path": params.data.path if params.data.source != "synthetic" else None},
        "config": as_dict(params.data),
        "counts": {
            "identities": len(faces.identities),
            "images": int(len(faces.images)),
            "single_image_identities": int((per_identity == 1).sum()),
            "train_identities": int(len(np.unique(labels[proto.train]))),
            "val_identities": int(len(np.unique(labels[proto.val_pairs.ravel()]))),
            "val_pairs": int(len(proto.val_pairs)),
            "test_identities": int(len(np.unique(labels[proto.test]))),
            "train_images": int(len(proto.train)),
            "val_images": int(len(proto.val)),
            "test_images": int(len(proto.test)),
            "labelled_images": int(len(proto.labelled)),
            "unlabelled_images": int(len(proto.unlabelled)),
            "labelled_identities": int(len(np.unique(labels[proto.labelled]))),
            "institution_images": np.bincount(proto.institution[proto.institution >= 0]).tolist(),
            "genuine_pairs": int(proto.is_same.sum()),
            "impostor_pairs": int((1 - proto.is_same).sum()),
            "pairs_per_fold": np.bincount(proto.folds).tolist(),
            "gallery_images": int(len(proto.gallery)),
            "probe_images": int(len(proto.probes)),
            "unknown_identities": int(len(np.setdiff1d(labels[proto.probes], labels[proto.gallery]))),
            "videos": 0 if videos is None else int(len(videos.labels)),
        },
        "folds_identity_disjoint": proto.folds_identity_disjoint,
        "preparation": {
            "geometry": data_geometry(params.data).describe(),
            "detected_and_aligned": int(faces.detected.sum()),
            "taken_as_crop": int(len(faces.images) - faces.detected.sum()),
            "mixed": bool(0 < faces.detected.sum() < len(faces.images)),
        },
        "hashes": {
            "faces_sha256": digest.hexdigest(),
            "protocol_sha256": proto_digest.hexdigest(),
            "videos_sha256": None if videos is None else hashlib.sha256(videos.frames.tobytes()).hexdigest(),
        },
        "inputs": _input_hashes(faces, params),
        "unusable": [{"path": u.path, "reason": u.reason} for u in faces.unusable],
    }


def _input_hashes(faces: FaceSet, params: Params) -> list[dict] | None:
    """SHA-256 of every input file a real-data source read (None for synthetic data)."""
    if params.data.source == "synthetic":
        return None
    base = Path(params.data.path).parent
    return [{"path": s, "sha256": hashlib.sha256((base / s).read_bytes()).hexdigest(),
             "face": "detected" if found else "crop"} for s, found in zip(faces.sources, faces.detected)]
