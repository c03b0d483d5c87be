"""What the data stage hands to every later stage, and how they read it back.

* :class:`Dataset`: the training source's faces (uint8 (N, H, W, 3)), labels and :class:`Protocol`
  (``<artifacts>/data/faces.npz`` and ``protocol.npz``);
* :class:`BenchmarkSet`: one benchmark set every variant is reported on (``<artifacts>/data/benchmarks/
  <name>.npz``): its faces, verification pairs and folds, and, where it has one, its gallery/probe split.

The training stages, evaluate, identification and federated stages all read the data through
:func:`load_dataset` and :func:`load_benchmarks`; nothing else knows the file layout.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from benchmark.config import DataConfig, Params
from benchmark.data.align import Geometry
from benchmark.data.protocol import Protocol
from benchmark.errors import DataError


@dataclass
class Dataset:
    """The training source: images uint8 (N, H, W, 3), labels (N,), the protocol, and the geometry its faces
    were cut to (a model that expects another one refuses them)."""

    images: np.ndarray
    labels: np.ndarray
    protocol: Protocol
    geometry: Geometry


@dataclass
class BenchmarkSet:
    """One benchmark set, ready to measure on.

    name, format: from params.yaml ``data.benchmarks`` (format split | folder | lfw_pairs).
    images: uint8 (M, H, W, 3) crops in the training source's geometry; labels (M,) index ``identities``.
    pairs: int64 (P, 2) indices into images; is_same (P,) 1 genuine / 0 impostor; folds (P,) fold ids.
    gallery, probes: int64 index arrays of the identification split (empty for lfw_pairs: no split).
    detected: bool (M,), True where the crop was cut from a detection, False where taken as a crop.
    geometry: how the crops were cut (:meth:`Geometry.describe`, e.g. ``arcface 112px``).
    """

    name: str
    format: str
    images: np.ndarray
    labels: np.ndarray
    identities: list[str]
    pairs: np.ndarray
    is_same: np.ndarray
    folds: np.ndarray
    gallery: np.ndarray
    probes: np.ndarray
    detected: np.ndarray
    geometry: str

    @property
    def has_identification(self) -> bool:
        return len(self.gallery) > 0 and len(self.probes) > 0

    def arrays(self) -> dict[str, np.ndarray]:
        """Everything as arrays, for an ``.npz``."""
        out = {k: np.asarray(v) for k, v in vars(self).items()}
        out["identities"] = np.asarray(self.identities, dtype=str)
        return out

    @classmethod
    def from_arrays(cls, arrays: dict) -> "BenchmarkSet":
        kw = {k: np.asarray(arrays[k]) for k in cls.__dataclass_fields__}
        kw["name"], kw["format"], kw["geometry"] = str(kw["name"]), str(kw["format"]), str(kw["geometry"])
        kw["identities"] = [str(v) for v in kw["identities"]]
        return cls(**kw)


def data_geometry(cfg: DataConfig) -> Geometry:
    """The crop the data stage cuts for every trainable model: ``image_size`` pixels, ``alignment`` policy."""
    return Geometry(cfg.image_size, cfg.alignment, cfg.box_margin if cfg.alignment == "box" else 0)


def data_folder(params: Params) -> Path:
    return Path(params.paths.artifacts) / "data"


def load_dataset(params: Params) -> Dataset:
    """Read the training source: ``<artifacts>/data/faces.npz`` and ``protocol.npz``."""
    folder = data_folder(params)
    _need(folder / "faces.npz")
    with np.load(folder / "faces.npz") as faces, np.load(folder / "protocol.npz") as proto:
        return Dataset(faces["images"], faces["labels"], Protocol.from_arrays(dict(proto)),
                       Geometry.parse(str(faces["geometry"])))


def load_benchmarks(params: Params) -> dict[str, BenchmarkSet]:
    """Every benchmark set of params.yaml ``data.benchmarks``, in that order (the first is the headline set)."""
    out = {}
    for b in params.data.benchmarks:
        path = data_folder(params) / "benchmarks" / f"{b.name}.npz"
        _need(path)
        with np.load(path) as arrays:
            out[b.name] = BenchmarkSet.from_arrays(dict(arrays))
    return out


def _need(path: Path) -> None:
    if not path.is_file():
        raise DataError(f"{path} does not exist: run the data stage first (dvc repro data)")
