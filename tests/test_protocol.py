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
    train_ids, test_ids = set(faces.labels[p.train]) | set(faces.labels[p.val]), set(faces.labels[p.test])
    assert not train_ids & test_ids
    assert len(test_ids) == round(0.33 * 30)
    assert sorted(np.concatenate([p.train, p.val, p.test])) == list(range(len(faces.labels)))
    assert set(faces.labels[p.val]) <= set(faces.labels[p.train])  # every identity keeps a training image
    assert sorted(np.concatenate([p.labelled, p.unlabelled])) == sorted(p.train)
    assert len(p.labelled) == round(0.25 * len(p.train))


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
    faces = make_faces([5] * 6)
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
    faces = make_faces([1] * 10 + [6] * 20)
    p = protocol.build(faces, CFG, seed=0)
    singles = set(range(10))
    genuine_ids = set(faces.labels[p.pairs[p.is_same == 1, 0]])
    assert not genuine_ids & singles
    assert set(faces.labels[p.test]) & singles or set(faces.labels[p.train]) & singles


def test_errors_name_the_problem():
    with pytest.raises(DataError, match="at least 3 identities"):
        protocol.build(make_faces([4, 4]), CFG, 0)
    with pytest.raises(DataError, match="institutions = 3 needs at least 3 training identities"):
        protocol.build(make_faces([4] * 4), ProtocolConfig(folds=2, institutions=3, test_fraction=0.5), 0)
    with pytest.raises(DataError, match="no genuine pair"):
        protocol.build(make_faces([1] * 12), CFG, 0)


def test_given_lfw_pairs_define_the_test_identities():
    faces = make_faces([4] * 10)
    pairs = np.array([[0, 1], [0, 4], [4, 5], [1, 8]])
    p = protocol.build(faces, CFG, 0, given_pairs=(pairs, np.array([1, 0, 1, 0]), np.array([0, 0, 1, 1])))
    assert np.array_equal(p.pairs, pairs)
    assert set(faces.labels[p.test]) == {0, 1, 2}
    assert not set(faces.labels[p.train]) & {0, 1, 2}
