"""The protocol builder: disjointness, fractions, pairs, partitions, determinism and errors."""

import numpy as np
import pytest

from benchmark.config import ProtocolConfig
from benchmark.data import protocol
from benchmark.data.faceset import FaceSet
from benchmark.errors import DataError


def make_faces(counts, seed=0):
    """Distinct random 8x8 images, ``counts[i]`` of identity i."""
    rng = np.random.default_rng(seed)
    labels = np.repeat(np.arange(len(counts)), counts)
    images = rng.integers(0, 256, (len(labels), 8, 8, 3), dtype=np.uint8)
    return FaceSet(images, labels, [f"id{i}" for i in range(len(counts))], [f"f{k}" for k in range(len(labels))])


CFG = ProtocolConfig(folds=4, pairs_per_fold=10, institutions=3)


def test_splits_are_disjoint_and_cover_everything():
    faces = make_faces([6] * 30)
    p = protocol.build(faces, CFG, seed=0)
    labels = faces.labels
    train_ids, test_ids = set(labels[p.train]) | set(labels[p.val]), set(labels[p.test])
    val_ids = set(labels[p.val_pairs.ravel()])
    assert not train_ids & test_ids
    assert len(test_ids) == round(0.33 * 30)
    assert len(val_ids) == 2  # 10% of the 20 non-test identities
    assert train_ids | test_ids | val_ids == set(range(30))
    in_val_ids = np.flatnonzero(np.isin(labels, list(val_ids)))
    assert sorted(np.concatenate([p.train, p.val, p.test, in_val_ids])) == list(range(len(labels)))
    assert set(labels[p.val]) <= set(labels[p.train])  # every identity keeps a training image
    assert sorted(np.concatenate([p.labelled, p.unlabelled])) == sorted(p.train)
    assert len(p.labelled) == round(0.25 * len(p.train))


def test_validation_identities_are_disjoint_and_their_pairs_use_only_them():
    # Prepare
    faces = make_faces([6] * 40)
    cfg = ProtocolConfig(folds=4, pairs_per_fold=10, institutions=3, val_identity_fraction=0.2, val_pairs=12)

    # Execute
    p = protocol.build(faces, cfg, seed=0)

    # Assert
    labels = faces.labels
    val_ids = set(labels[p.val_pairs.ravel()])
    train_ids = set(labels[np.concatenate([p.train, p.val, p.labelled, p.unlabelled])])
    test_ids = set(labels[np.concatenate([p.test, p.pairs.ravel(), p.gallery, p.probes])])
    assert len(val_ids) == round(0.2 * (40 - round(0.33 * 40)))
    assert not val_ids & train_ids and not val_ids & test_ids
    assert (p.institution[np.isin(labels, list(val_ids))] == -1).all()
    same = labels[p.val_pairs[:, 0]] == labels[p.val_pairs[:, 1]]
    assert same.tolist() == (p.val_is_same == 1).tolist()
    assert p.val_is_same.sum() == (1 - p.val_is_same).sum() == 12  # val_pairs genuine and as many impostors
    assert len({tuple(x) for x in p.val_pairs.tolist()}) == len(p.val_pairs)


def test_pairs_are_balanced_identity_disjoint_folds_without_identical_images():
    faces = make_faces([6] * 30)
    faces.images[1] = faces.images[0]  # a duplicate must never form a genuine pair
    p = protocol.build(faces, CFG, seed=0)
    labels = faces.labels
    assert (labels[p.pairs[:, 0]] == labels[p.pairs[:, 1]]).tolist() == (p.is_same == 1).tolist()
    assert not any(set(pair) == {0, 1} for pair in p.pairs.tolist())
    for f in range(4):
        in_fold = p.folds == f
        assert p.is_same[in_fold].sum() == (1 - p.is_same[in_fold]).sum() == 10
        for g in range(f + 1, 4):
            assert not set(labels[p.pairs[in_fold].ravel()]) & set(labels[p.pairs[p.folds == g].ravel()])
    assert p.folds_identity_disjoint
    assert len({tuple(x) for x in p.pairs.tolist()}) == len(p.pairs)


def test_few_test_identities_deal_pairs_to_folds_and_say_so():
    faces = make_faces([5] * 8)  # 3 test identities for 4 folds
    p = protocol.build(faces, CFG, seed=0)
    assert not p.folds_identity_disjoint
    assert set(p.folds.tolist()) == {0, 1, 2, 3}


def test_same_seed_same_protocol_other_seed_differs():
    faces = make_faces([6] * 30)
    a, b, c = (protocol.build(faces, CFG, s) for s in (1, 1, 2))
    assert all(np.array_equal(a.arrays()[k], b.arrays()[k]) for k in a.arrays())
    assert not np.array_equal(a.pairs, c.pairs)


def test_disjoint_institutions_split_identities():
    faces = make_faces([6] * 30)
    p = protocol.build(faces, CFG, seed=0)
    assert set(p.institution[p.train]) == {0, 1, 2}
    assert (p.institution[p.test] == -1).all()
    owners = [set(p.institution[p.train][faces.labels[p.train] == i]) for i in np.unique(faces.labels[p.train])]
    assert all(len(o) == 1 for o in owners)


def test_dirichlet_institutions_share_identities():
    faces = make_faces([12] * 30)
    p = protocol.build(faces, ProtocolConfig(folds=4, pairs_per_fold=10, institutions=3, partition="dirichlet"), 0)
    owners = [set(p.institution[p.train][faces.labels[p.train] == i]) for i in np.unique(faces.labels[p.train])]
    assert any(len(o) > 1 for o in owners)
    assert (p.institution[p.train] >= 0).all()


def test_gallery_probes_and_unknown_identities():
    faces = make_faces([6] * 30)
    p = protocol.build(faces, CFG, seed=0)
    labels = faces.labels
    gallery_ids = set(labels[p.gallery])
    assert len(p.gallery) == len(gallery_ids)  # one enrolment image per known identity
    unknown = set(labels[p.probes]) - gallery_ids
    assert len(unknown) == round(0.2 * len(set(labels[p.test])))
    assert sorted(np.concatenate([p.gallery, p.probes])) == sorted(p.test)


def test_single_image_identities_are_kept_as_impostors_only():
    faces = make_faces([1] * 6 + [6] * 24)
    p = protocol.build(faces, CFG, seed=0)
    singles = set(range(6))
    genuine_ids = set(faces.labels[p.pairs[p.is_same == 1, 0]])
    assert not genuine_ids & singles
    assert set(faces.labels[p.test]) & singles or set(faces.labels[p.train]) & singles


def test_errors_name_the_problem():
    with pytest.raises(DataError, match="at least 3 identities to hold out test identities"):
        protocol.build(make_faces([4, 4]), CFG, 0)
    with pytest.raises(DataError, match="at least 3 identities to hold out validation identities"):
        protocol.build(make_faces([4] * 4), ProtocolConfig(folds=2, institutions=1, test_fraction=0.5), 0)
    with pytest.raises(DataError, match=r"institutions = 3 needs at least 3 training identities .*, found 1"):
        protocol.build(make_faces([4] * 6), ProtocolConfig(folds=2, institutions=3, test_fraction=0.5), 0)
    with pytest.raises(DataError, match="no genuine pair"):
        protocol.build(make_faces([1] * 12), CFG, 0)


def test_benchmark_pairs_cover_every_identity_in_balanced_identity_disjoint_folds():
    # Prepare: a benchmark folder of 12 identities, 4 images each; one duplicate image.
    faces = make_faces([4] * 12)
    faces.images[1] = faces.images[0]

    # Execute
    pairs, is_same, folds, gallery, probes = protocol.benchmark_pairs(faces, CFG, seed=0)
    again = protocol.benchmark_pairs(faces, CFG, seed=0)

    # Assert
    labels = faces.labels
    assert (labels[pairs[:, 0]] == labels[pairs[:, 1]]).tolist() == (is_same == 1).tolist()
    assert set(labels[pairs.ravel()]) == set(range(12))  # no identity is held back for training
    assert not any(set(pair) == {0, 1} for pair in pairs.tolist())
    for f in range(4):
        in_fold = folds == f
        assert is_same[in_fold].sum() == (1 - is_same[in_fold]).sum() == 10
        for g in range(f + 1, 4):
            assert not set(labels[pairs[in_fold].ravel()]) & set(labels[pairs[folds == g].ravel()])
    assert sorted(np.concatenate([gallery, probes])) == list(range(len(labels)))
    assert len(gallery) == len(set(labels[gallery])) == 12 - round(0.2 * 12)
    assert all(np.array_equal(a, b) for a, b in zip((pairs, is_same, folds, gallery, probes), again))
