"""The ``data`` stage: load or generate faces, build the protocol, run the eigenfaces baseline, write it all.

Outputs (paths from params.yaml ``paths``), each written atomically:

* ``<artifacts>/data/faces.npz``: images uint8 (N, H, W, 3), labels, identities, sources;
* ``<artifacts>/data/protocol.npz``: the :class:`~benchmark.data.protocol.Protocol` arrays;
* ``<artifacts>/data/videos.npz``: synthetic test-identity videos with per-frame quality (synthetic only);
* ``<artifacts>/data/manifest.json``: counts, seed, source, content hashes, every unusable input;
* ``<reports>/metrics/data.json``: the stage's metrics (the contract later stages and reviewers read).
"""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from benchmark import io
from benchmark.config import DataConfig, Params, as_dict
from benchmark.data import protocol as protocol_mod
from benchmark.data import synthetic, synthetic_video
from benchmark.data.faceset import FaceSet
from benchmark.data.folder import load_folder, load_lfw
from benchmark.data.synthetic_video import VideoSet
from benchmark.evaluation.verification import cosine_scores, verification_report
from benchmark.models.eigenfaces import Eigenfaces


@dataclass
class Loaded:
    """What a source gives: the faces, LFW pairs if it has them, and identity vectors if synthetic."""

    faces: FaceSet
    given_pairs: tuple | None = None
    identity_params: np.ndarray | None = None


def _synthetic(cfg: DataConfig, seed: int) -> Loaded:
    s = cfg.synthetic
    faces, _ = synthetic.generate(seed, s.identities, s.images_per_identity, cfg.image_size, s.difficulty)
    return Loaded(faces, identity_params=synthetic.identities(seed, s.identities))


def _folder(cfg: DataConfig, seed: int) -> Loaded:
    return Loaded(load_folder(cfg.path, cfg.image_size, detect=cfg.detect, min_confidence=cfg.min_face_confidence))


def _lfw(cfg: DataConfig, seed: int) -> Loaded:
    faces, pairs, is_same, folds = load_lfw(
        cfg.path, Path(cfg.path) / cfg.pairs_file, cfg.image_size, detect=cfg.detect, min_confidence=cfg.min_face_confidence
    )
    return Loaded(faces, given_pairs=(pairs, is_same, folds))


SOURCES: dict[str, Callable[[DataConfig, int], Loaded]] = {"synthetic": _synthetic, "folder": _folder, "lfw": _lfw}


@dataclass
class DataResult:
    """Everything the notebook shows: the faces, protocol, videos, eigenfaces scores and the metrics."""

    faces: FaceSet
    protocol: protocol_mod.Protocol
    videos: VideoSet | None
    identity_params: np.ndarray | None
    eigen_scores: np.ndarray
    metrics: dict
    manifest: dict


def run(params: Params) -> DataResult:
    """Run the data stage with validated ``params``; returns what it wrote."""
    start = time.perf_counter()
    cfg, seed = params.data, params.seed
    loaded = SOURCES[cfg.source](cfg, seed)
    faces = loaded.faces
    proto = protocol_mod.build(faces, cfg.protocol, seed, loaded.given_pairs)
    videos = None
    if loaded.identity_params is not None:
        test_ids = np.unique(faces.labels[proto.test])
        videos = synthetic_video.generate(
            seed, loaded.identity_params, test_ids, cfg.synthetic.video_frames, cfg.image_size, cfg.synthetic.difficulty
        )

    eig = Eigenfaces(cfg.eigenfaces.components, seed).fit(faces.images[proto.train])
    scores = cosine_scores(eig.embed(faces.images), proto.pairs)
    eigen = verification_report(scores, proto.is_same, proto.folds)

    out = Path(params.paths.artifacts) / "data"
    manifest = build_manifest(faces, proto, videos, params)
    io.write_npz(
        out / "faces.npz",
        images=faces.images,
        labels=faces.labels,
        identities=np.asarray(faces.identities),
        sources=np.asarray(faces.sources),
    )
    io.write_npz(out / "protocol.npz", **proto.arrays())
    if videos is not None:
        io.write_npz(out / "videos.npz", **videos.arrays())
    io.write_json(out / "manifest.json", manifest)
    metrics = {
        "identities": len(faces.identities),
        "images": int(len(faces.images)),
        "unusable_inputs": len(faces.unusable),
        "train_images": int(len(proto.train)),
        "test_images": int(len(proto.test)),
        "pairs": int(len(proto.pairs)),
        "videos": 0 if videos is None else int(len(videos.labels)),
        "seconds": round(time.perf_counter() - start, 2),
        "eigenfaces": {
            "verification_accuracy": eigen["accuracy_mean"],
            "accuracy_std": eigen["accuracy_std"],
            "auc": eigen["auc"],
            "eer": eigen["eer"],
            "tar_at_far_1e-3": eigen["tar_at_far_1e-3"],
        },
    }
    io.write_json(Path(params.paths.reports) / "metrics" / "data.json", metrics)
    return DataResult(faces, proto, videos, loaded.identity_params, scores, metrics, manifest)


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
        "seed": params.seed,
        "source": {"kind": params.data.source, "path": params.data.path if params.data.source != "synthetic" else None},
        "config": as_dict(params.data),
        "counts": {
            "identities": len(faces.identities),
            "images": int(len(faces.images)),
            "single_image_identities": int((per_identity == 1).sum()),
            "train_identities": int(len(np.unique(labels[proto.train]))),
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
    return [{"path": s, "sha256": hashlib.sha256((base / s).read_bytes()).hexdigest()} for s in faces.sources]
