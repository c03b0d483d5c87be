"""Training augmentation: determinism, range, shape, and what each kind does to a batch."""

import numpy as np
import pytest
import torch

from benchmark.train.augment import AUGMENTATIONS, augment_batch, colour_jitter, random_shift_scale
from benchmark.train.common import TrainConfig, load_batch

CPU = torch.device("cpu")


def _batch(n: int = 6, size: int = 12, seed: int = 0) -> torch.Tensor:
    return torch.from_numpy(np.random.default_rng(seed).random((n, 3, size, size), dtype=np.float32))


@pytest.mark.parametrize("kind", AUGMENTATIONS)
def test_same_seed_gives_the_same_batch_in_range_and_shape(kind):
    # Prepare
    x = _batch()
    # Execute
    a = augment_batch(x, kind, np.random.default_rng(3))
    b = augment_batch(x, kind, np.random.default_rng(3))
    # Assert
    assert torch.equal(a, b)
    assert a.shape == x.shape and a.dtype == torch.float32
    assert a.min() >= 0.0 and a.max() <= 1.0


def test_none_is_the_identity_and_draws_nothing():
    x, rng = _batch(), np.random.default_rng(0)
    before = rng.bit_generator.state
    assert augment_batch(x, "none", rng) is x
    assert rng.bit_generator.state == before


def test_standard_changes_every_image_and_differs_by_seed():
    # Prepare
    x = _batch()
    # Execute
    a = augment_batch(x, "standard", np.random.default_rng(0))
    b = augment_batch(x, "standard", np.random.default_rng(1))
    # Assert: shift/scale and colour jitter move pixels of every image, not only the flipped ones
    assert a.shape == x.shape
    assert all((a[i] - x[i]).abs().max() > 1e-3 for i in range(len(x)))
    assert not torch.equal(a, b)


def test_flip_only_equals_the_former_random_horizontal_flip():
    # Prepare: the pre-augment.py load_batch flip, on the same generator state
    x = _batch(n=8)
    expected = x.clone()
    mask = torch.from_numpy(np.random.default_rng(5).random(8) < 0.5)
    expected[mask] = expected[mask].flip(3)
    # Execute
    got = augment_batch(x, "flip", np.random.default_rng(5))
    # Assert
    assert torch.equal(got, expected) and 0 < int(mask.sum()) < 8


def test_standard_flips_the_same_images_as_flip_only():
    x = torch.linspace(0, 1, 8).repeat(4, 3, 8, 1)  # a horizontal ramp: a flip reverses its slope
    got = augment_batch(x, "standard", np.random.default_rng(5))
    flipped = np.random.default_rng(5).random(4) < 0.5
    slopes = (got[:, :, :, -1] - got[:, :, :, 0]).mean(dim=(1, 2))
    assert ((slopes < 0).numpy() == flipped).all()


def test_shift_scale_uses_border_padding_and_is_the_identity_at_zero_strength():
    # Prepare
    x = _batch()
    white = torch.ones(4, 3, 10, 10)
    # Execute
    same = random_shift_scale(x, np.random.default_rng(0), (1.0, 1.0), 0.0)
    zoomed_out = random_shift_scale(white, np.random.default_rng(0), (0.5, 0.6), 0.2)
    # Assert: no black margins when the image is zoomed out and shifted
    assert torch.allclose(same, x, atol=1e-5)
    assert torch.allclose(zoomed_out, white)


def test_saturation_is_a_no_op_on_grayscale_and_changes_colour_images():
    # Prepare
    grey = _batch(n=4)[:, :1].expand(4, 3, 12, 12).contiguous()
    colour = _batch(n=4, seed=1)
    # Execute
    grey_out = colour_jitter(grey, np.random.default_rng(0), 0.0, 0.0, 0.5)
    colour_out = colour_jitter(colour, np.random.default_rng(0), 0.0, 0.0, 0.5)
    # Assert
    assert torch.allclose(grey_out, grey, atol=1e-6)
    assert (colour_out - colour).abs().max() > 1e-2


def test_brightness_scales_pixels_by_one_factor_per_image():
    x = _batch(n=4) * 0.5
    out = colour_jitter(x, np.random.default_rng(0), 0.2, 0.0, 0.0)
    factor = out.sum(dim=(1, 2, 3)) / x.sum(dim=(1, 2, 3))
    assert torch.allclose(out, x * factor[:, None, None, None], atol=1e-5)
    assert ((factor >= 0.8) & (factor <= 1.2)).all() and factor.std() > 0


def test_load_batch_applies_the_chosen_augmentation():
    # Prepare
    images = np.random.default_rng(0).integers(0, 256, (6, 8, 8, 3), dtype=np.uint8)
    idx = np.array([5, 0, 3, 3])
    plain = torch.from_numpy(images[idx]).permute(0, 3, 1, 2).float() / 255
    # Execute
    none = load_batch(images, idx, CPU)
    standard = load_batch(images, idx, CPU, "standard", np.random.default_rng(1))
    # Assert
    assert torch.equal(none, plain)
    assert torch.equal(standard, augment_batch(plain, "standard", np.random.default_rng(1)))
    with pytest.raises(ValueError, match="needs a random generator"):
        load_batch(images, idx, CPU, "flip")


def test_unknown_augmentation_is_rejected_naming_the_choices():
    with pytest.raises(ValueError, match=r"augment 'crop' not allowed; choose from \('standard', 'flip', 'none'\)"):
        TrainConfig(augment="crop")
    with pytest.raises(ValueError, match="augmentation 'crop' not allowed"):
        augment_batch(_batch(), "crop", np.random.default_rng(0))
