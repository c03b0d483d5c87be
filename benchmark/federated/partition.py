"""Each institution's own data file, so that no SuperNode reads another institution's faces.

The data stage writes every training image into one ``faces.npz``; an institution's SuperNode given a ``data`` path in
its node config reads only the file :func:`write_partitions` cut for it instead: its own training images, the
validation faces of its own identities (the loop's loss curves) and the public test pairs' images (held-out
identities that no institution trains on), with the protocol's indices remapped and the institution marks kept on its
own training images only. Training and verification then run exactly as on the pooled file.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from benchmark import io
from benchmark.data.align import Geometry
from benchmark.data.dataset import Dataset
from benchmark.data.protocol import Protocol


def institution_subset(data: Dataset, institution: int) -> Dataset:
    """The part of ``data`` that institution ``institution`` holds (module docstring)."""
    p = data.protocol
    train = np.flatnonzero(p.institution == institution)
    if not len(train):
        raise ValueError(f"institution {institution} holds no training image in this data stage's protocol")
    val, test = p.val[np.isin(data.labels[p.val], data.labels[train])], np.unique(p.pairs)
    keep = np.concatenate([train, val, test])
    position = np.full(len(data.images), -1, np.int64)
    position[keep] = np.arange(len(keep))
    empty = np.zeros(0, np.int64)
    marks = np.full(len(keep), -1, np.int64)
    marks[position[train]] = institution
    protocol = Protocol(
        train=position[train], val=position[val], test=position[test], val_pairs=np.zeros((0, 2), np.int64),
        val_is_same=empty, labelled=position[np.intersect1d(p.labelled, train)],
        unlabelled=position[np.intersect1d(p.unlabelled, train)], institution=marks, pairs=position[p.pairs],
        is_same=p.is_same, folds=p.folds, gallery=empty, probes=empty, folds_identity_disjoint=p.folds_identity_disjoint)
    return Dataset(data.images[keep], data.labels[keep], protocol, data.geometry)


def write_partitions(data: Dataset, institutions: int, folder: Path) -> list[Path]:
    """``<folder>/institution_<k>.npz`` for every institution (atomically); returns their paths in order."""
    paths = []
    for k in range(institutions):
        part = institution_subset(data, k)
        paths.append(Path(folder) / f"institution_{k}.npz")
        io.write_npz(paths[-1], images=part.images, labels=part.labels, geometry=np.asarray(part.geometry.describe()),
                     **{f"protocol_{name}": array for name, array in part.protocol.arrays().items()})
    return paths


def load_partition(path: Path) -> Dataset:
    """An institution's file of :func:`write_partitions` as a Dataset."""
    with np.load(path) as arrays:
        protocol = {k.removeprefix("protocol_"): v for k, v in arrays.items() if k.startswith("protocol_")}
        return Dataset(arrays["images"], arrays["labels"], Protocol.from_arrays(protocol),
                       Geometry.parse(str(arrays["geometry"])))
