"""The synthetic generator: deterministic, identity-preserving, nuisance-sensitive."""

from dataclasses import replace

import numpy as np
import pytest

from benchmark.data import synthetic, synthetic_video


def test_same_seed_gives_byte_identical_images():
    a, _ = synthetic.generate(3, 3, 2, 32, progress=False)
    b, _ = synthetic.generate(3, 3, 2, 32, progress=False)
    assert a.images.dtype == np.uint8 and a.images.shape == (6, 32, 32, 3)
    assert a.images.tobytes() == b.images.tobytes()
    c, _ = synthetic.generate(4, 3, 2, 32, progress=False)
    assert a.images.tobytes() != c.images.tobytes()


def test_image_streams_do_not_depend_on_generation_order():
    small, _ = synthetic.generate(0, 2, 2, 32, progress=False)
    large, _ = synthetic.generate(0, 4, 3, 32, progress=False)
    assert np.array_equal(small.images[0], large.images[0])
    assert np.array_equal(small.images[3], large.images[4])  # identity 1, image 1


def test_output_does_not_depend_on_the_number_of_worker_processes():
    one, nz_one = synthetic.generate(5, 3, 2, 32, progress=False, workers=1)
    two, nz_two = synthetic.generate(5, 3, 2, 32, progress=False, workers=2)
    assert one.images.tobytes() == two.images.tobytes() and nz_one == nz_two
    assert list(one.labels) == [0, 0, 1, 1, 2, 2] and one.sources == two.sources
    ids = synthetic.identities(5, 3)
    a = synthetic_video.generate(5, ids, np.array([0, 2]), 6, 32, 0.7, progress=False, workers=1)
    b = synthetic_video.generate(5, ids, np.array([0, 2]), 6, 32, 0.7, progress=False, workers=2)
    assert all(np.array_equal(x, y) for x, y in zip(a.arrays().values(), b.arrays().values()))


def test_identity_has_at_least_15_continuous_parameters():
    ids = synthetic.identities(0, 50)
    assert ids.shape == (50, len(synthetic.IDENTITY_PARAMS)) and ids.shape[1] >= 15
    assert (ids.std(axis=0) > 0).all()


def test_each_nuisance_factor_changes_the_image():
    identity = synthetic.identities(0, 1)[0]
    base = synthetic.Nuisance(background=1)
    clean = synthetic.render_face(identity, base).astype(int)
    changes = dict(
        yaw=25.0, pitch=12.0, roll=8.0, smile=0.9, mouth_open=0.8, eye_open=0.3, light_azimuth=60.0, ambient=0.2,
        tint_r=1.1, glasses=True, mask=True, fringe=True, occluder=0.5, blur=1.5, motion_blur=5.0, noise=0.05,
        jpeg_quality=20, scale=1.1, shift_x=0.07,
    )
    for name, value in changes.items():
        changed = synthetic.render_face(identity, replace(base, **{name: value})).astype(int)
        assert (np.abs(changed - clean).max(axis=-1) > 8).sum() >= 20, name


def test_same_identity_is_closer_than_other_identity_under_clean_conditions():
    ids = synthetic.identities(0, 2)
    nz1, nz2 = synthetic.Nuisance(background=1), synthetic.Nuisance(background=1, smile=0.3)
    a1 = synthetic.render_face(ids[0], nz1).astype(float)
    a2 = synthetic.render_face(ids[0], nz2).astype(float)
    b1 = synthetic.render_face(ids[1], nz1).astype(float)
    assert np.abs(a1 - a2).mean() < np.abs(a1 - b1).mean()


def test_videos_carry_per_frame_quality_and_defects():
    ids = synthetic.identities(0, 2)
    videos = synthetic_video.generate(0, ids, np.array([1]), frames=10, size=32, difficulty=0.7, progress=False)
    assert videos.frames.shape == (1, 10, 32, 32, 3)
    defect, quality = videos.defect[0], videos.quality[0]
    assert (defect > 0).sum() == 5  # half the frames are spoiled by default
    assert quality[defect > 0].max() < quality[defect == 0].min()
    assert ((quality >= 0) & (quality <= 1)).all()


@pytest.mark.parametrize("share, spoiled", [(0.0, 0), (0.5, 4), (1.0, 8)])
def test_spoiled_share_sets_how_many_frames_of_each_video_are_spoiled(share, spoiled):
    params = synthetic.identities(0, 2)
    videos = synthetic_video.generate(0, params, np.array([0, 1]), 8, 32, 0.7, spoiled_share=share, progress=False)
    assert ((videos.defect > 0).sum(axis=1) == spoiled).all()
