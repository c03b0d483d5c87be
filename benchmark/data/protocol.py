"""The protocol builder: every split the later stages use, deterministic by seed.

From a :class:`~benchmark.data.faceset.FaceSet` it makes:

* an identity-disjoint train/test split (``test_fraction`` of the identities are test identities);
* validation identities (``val_identity_fraction`` of the remaining ones), identity-disjoint from both, and
  up to ``val_pairs`` genuine and as many impostor verification pairs on them: every model's operating
  threshold and every training stage's early stopping are chosen on these, never on the test pairs;
* a validation slice of training images (``val_fraction``; image-level, same identities, for the
  convergence rules of the training stages; every identity keeps at least one training image);
* a labelled/unlabelled split of the remaining training images (``label_fraction``, uniform at random);
* institution partitions of the training images: identity-disjoint (``disjoint``, as banks have
  different customers) or, per identity, Dirichlet(``dirichlet_alpha``) proportions (``dirichlet``);
* LFW-style verification pairs: ``folds`` folds with up to ``pairs_per_fold`` genuine and as many
  impostor pairs each; folds are identity-disjoint when there are at least as many test identities as
  folds (as in LFW View 2), otherwise pairs are dealt to folds at random (recorded in the manifest);
  no genuine pair is made of two byte-identical images;
* an identification split of the test identities: ``gallery_per_identity`` enrolment images per known
  identity; ``unknown_fraction`` of the test identities are never enrolled (open-set non-mated probes);
  every other test image is a probe.

Identities with a single image are kept: they serve as impostors only.
"""

from __future__ import annotations

import dataclasses
import hashlib
from dataclasses import dataclass

import numpy as np

from benchmark.config import ProtocolConfig
from benchmark.data.faceset import FaceSet
from benchmark.errors import DataError


@dataclass
class Protocol:
    """Index arrays into the FaceSet's images (int64) and per-image assignments."""

    train: np.ndarray
    val: np.ndarray
    test: np.ndarray
    val_pairs: np.ndarray  # (V, 2) image indices, validation identities only
    val_is_same: np.ndarray  # (V,) 1 genuine, 0 impostor
    labelled: np.ndarray
    unlabelled: np.ndarray
    institution: np.ndarray  # (N,) institution of each training image, -1 elsewhere
    pairs: np.ndarray  # (P, 2) image indices
    is_same: np.ndarray  # (P,) 1 genuine, 0 impostor
    folds: np.ndarray  # (P,) fold id
    gallery: np.ndarray
    probes: np.ndarray
    folds_identity_disjoint: bool

    def arrays(self) -> dict[str, np.ndarray]:
        """Everything as arrays, for an ``.npz``."""
        out = {k: v for k, v in vars(self).items() if isinstance(v, np.ndarray)}
        out["folds_identity_disjoint"] = np.asarray(self.folds_identity_disjoint)
        return out

    @classmethod
    def from_arrays(cls, arrays: dict) -> "Protocol":
        kw = {k: np.asarray(arrays[k]) for k in cls.__dataclass_fields__ if k != "folds_identity_disjoint"}
        return cls(**kw, folds_identity_disjoint=bool(arrays["folds_identity_disjoint"]))


def image_hashes(images: np.ndarray) -> list[str]:
    """SHA-256 of each image's bytes."""
    return [hashlib.sha256(np.ascontiguousarray(im).tobytes()).hexdigest() for im in images]


def build(faces: FaceSet, cfg: ProtocolConfig, seed: int) -> Protocol:
    """Build the protocol of a training source (module docstring)."""
    rng = np.random.default_rng([seed, 0x9E37])
    labels = faces.labels
    ids = np.unique(labels)
    test_ids, rest = _split_identities(ids, cfg.test_fraction, rng)
    val_ids, train_ids = _split_identities(rest, cfg.val_identity_fraction, rng, what="validation")
    by_id = {i: rng.permutation(np.flatnonzero(labels == i)) for i in ids}
    train_all = np.sort(np.concatenate([by_id[i] for i in train_ids]))
    test = np.sort(np.concatenate([by_id[i] for i in test_ids]))

    spare = np.concatenate([by_id[i][1:] for i in train_ids])
    val = np.sort(rng.choice(spare, size=min(len(spare), round(cfg.val_fraction * len(train_all))), replace=False))
    train = np.setdiff1d(train_all, val)
    n_lab = max(1, round(cfg.label_fraction * len(train)))
    labelled = np.sort(rng.choice(train, size=n_lab, replace=False))
    unlabelled = np.setdiff1d(train, labelled)
    institution = _partition(labels, train, train_ids, cfg, rng)

    hashes = image_hashes(faces.images)
    pairs, is_same, folds, disjoint = _pairs(hashes, labels, test_ids, by_id, cfg.folds, cfg.pairs_per_fold, rng)
    val_pairs, val_is_same, _, _ = _pairs(hashes, labels, val_ids, by_id, 1, cfg.val_pairs, rng, "validation")
    gallery, probes = _gallery(test_ids, by_id, cfg, rng)
    return Protocol(train, val, test, val_pairs, val_is_same, labelled, unlabelled, institution, pairs, is_same,
                    folds, gallery, probes, disjoint)


def relabelled(protocol: Protocol, fraction: float, seed: int) -> Protocol:
    """``protocol`` with another labelled/unlabelled split of its training images: the first ``round(fraction *
    len(train))`` (at least 1) of one permutation drawn by ``seed``, so that for one seed a smaller fraction's labelled
    images are among a larger one's (the label-fraction study's nested splits); everything else is unchanged."""
    if not 0 < fraction <= 1:
        raise ValueError(f"label fraction must be in (0, 1], got {fraction}")
    order = np.random.default_rng([seed, 0x1ABE]).permutation(protocol.train)
    labelled = np.sort(order[:max(1, round(fraction * len(order)))])
    return dataclasses.replace(protocol, labelled=labelled, unlabelled=np.setdiff1d(protocol.train, labelled))


def benchmark_pairs(faces: FaceSet, cfg: ProtocolConfig, seed: int) -> tuple[np.ndarray, ...]:
    """Verification pairs and an identification split over every identity of a benchmark set (a folder per
    identity): ``(pairs, is_same, folds, gallery, probes)``, made like the training source's test split
    (``folds`` x up to ``pairs_per_fold`` genuine and as many impostor pairs, identity-disjoint folds when
    there are at least ``folds`` identities)."""
    rng = np.random.default_rng([seed, 0xB37C])
    ids = np.unique(faces.labels)
    by_id = {i: rng.permutation(np.flatnonzero(faces.labels == i)) for i in ids}
    pairs, is_same, folds, _ = _pairs(image_hashes(faces.images), faces.labels, ids, by_id, cfg.folds,
                                      cfg.pairs_per_fold, rng)
    gallery, probes = _gallery(ids, by_id, cfg, rng)
    return pairs, is_same, folds, gallery, probes


def _split_identities(ids: np.ndarray, fraction: float, rng: np.random.Generator,
                      what: str = "test") -> tuple[np.ndarray, np.ndarray]:
    """(``fraction`` of ``ids``, at least 2, the rest, at least 1), sorted."""
    if len(ids) < 3:
        raise DataError(f"need at least 3 identities to hold out {what} identities (identity-disjoint), "
                        f"found {len(ids)}")
    order = rng.permutation(ids)
    n_test = min(max(2, round(fraction * len(ids))), len(ids) - 1)
    return np.sort(order[:n_test]), np.sort(order[n_test:])


def _partition(labels: np.ndarray, train: np.ndarray, train_ids: np.ndarray, cfg: ProtocolConfig, rng) -> np.ndarray:
    k = cfg.institutions
    institution = np.full(len(labels), -1, np.int64)
    if cfg.partition == "disjoint":
        if k > len(train_ids):
            raise DataError(
                f"protocol.institutions = {k} needs at least {k} training identities for identity-disjoint "
                f"partitions, found {len(train_ids)}; lower it or use partition: dirichlet"
            )
        for inst, group in enumerate(np.array_split(rng.permutation(train_ids), k)):
            institution[train[np.isin(labels[train], group)]] = inst
        return institution
    for i in train_ids:
        members = rng.permutation(train[labels[train] == i])
        counts = rng.multinomial(len(members), rng.dirichlet(np.full(k, cfg.dirichlet_alpha)))
        institution[members] = np.repeat(np.arange(k), counts)
    return institution


def _pairs(hashes: list[str], labels: np.ndarray, test_ids, by_id, n_folds: int, per_fold: int, rng,
           what: str = "verification"):
    disjoint = len(test_ids) >= n_folds
    groups = np.array_split(rng.permutation(test_ids), n_folds) if disjoint else [test_ids]
    per_group = per_fold if disjoint else per_fold * n_folds
    pairs, same, folds = [], [], []
    for f, group in enumerate(groups):
        genuine = [
            (a, b) for i in group for n, a in enumerate(by_id[i]) for b in by_id[i][n + 1 :] if hashes[a] != hashes[b]
        ]
        if not genuine:
            raise DataError(
                f"{what} fold {f} has no genuine pair: its identities ({len(group)}) have fewer than "
                "2 distinct images each; use a dataset with at least 2 images for some identities"
            )
        pick = rng.choice(len(genuine), size=min(per_group, len(genuine)), replace=False)
        gen = np.sort(np.asarray(genuine)[pick], axis=1)
        imp = _impostors(np.concatenate([by_id[i] for i in group]), labels, len(gen), rng, f)
        pairs += [gen, imp]
        same += [np.ones(len(gen), np.int64), np.zeros(len(imp), np.int64)]
        folds += [np.full(len(gen) + len(imp), f, np.int64)]
    pairs, same, folds = np.concatenate(pairs), np.concatenate(same), np.concatenate(folds)
    if not disjoint:
        folds = rng.permutation(np.arange(len(pairs)) % n_folds)
    return pairs, same, folds, disjoint


def _impostors(images: np.ndarray, labels: np.ndarray, count: int, rng, fold: int) -> np.ndarray:
    if len(np.unique(labels[images])) < 2:
        raise DataError(f"verification fold {fold} has a single identity: impostor pairs need at least 2")
    chosen: set[tuple[int, int]] = set()
    for _ in range(100 * count):
        a, b = rng.choice(images, size=2, replace=False)
        if labels[a] != labels[b]:
            chosen.add((min(a, b), max(a, b)))
            if len(chosen) == count:
                break
    return np.asarray(sorted(chosen), np.int64).reshape(-1, 2)


def _gallery(test_ids, by_id, cfg: ProtocolConfig, rng) -> tuple[np.ndarray, np.ndarray]:
    order = rng.permutation(test_ids)
    n_unknown = min(round(cfg.unknown_fraction * len(order)), len(order) - 1)
    known = order[n_unknown:]
    gallery = np.concatenate([by_id[i][: cfg.gallery_per_identity] for i in known])
    probes = np.concatenate([by_id[i][cfg.gallery_per_identity :] for i in known] + [by_id[i] for i in order[:n_unknown]])
    return np.sort(gallery), np.sort(probes)
