"""The semi-supervised autoencoder of patent CN112364828B (claims 1-4).

Six convolution layers and a fully connected supervised structure::

    x (N,3,S,S) -conv1-> down1 (N,C1,S/2,S/2) -conv2-> down2 (N,C2,S/4,S/4) -conv3-> down3 (N,C3,S/8,S/8)
    down3 -conv4-> up1 (N,C3,S/8,S/8) -conv5-> up2 (N,C2,S/4,S/4) -conv6-> up3 (N,C1,S/2,S/2)
    down3 -flatten-> fully connected layer -> embedding (N,D) -> head -> identity logits

conv1-3 are stride-2 convolutions (the patent's downsampling feature extraction). conv4 is a stride-1
3x3 convolution, so up1 has down3's shape; conv5 and conv6 are stride-2 transposed 4x4 convolutions
(upsampling x2), so up2 has down2's shape and up3 has down1's. Every layer is conv + BatchNorm + ReLU.
The encoder (conv1-3) is the ``ae_encoder`` backbone of a :class:`~benchmark.models.face_model.FaceModel`,
whose embedding layer is the patent's fully connected layer; the decoder (conv4-6) exists for training
only. From a pretrained recognizer (``facenet_casia``) the same losses run on three of its maps (after repeat_1,
repeat_2 and block8 as down1-3) with a decoder built for their shapes (:class:`SkipDecoder`).

Losses (claims 1, 3, 4): LossA is the head's supervised loss on labelled images; on unlabelled images
Loss1 ties down3 to up1, Loss2 down2 to up2, Loss3 down1 to up3, LossB = Loss1 + Loss2 + Loss3, and
Loss = g * LossA + (1 - g) * LossB with g in (0.5, 1).

Denoising (Rasmus et al. 2015, "Semi-supervised learning with Ladder Networks"). Read literally, Loss1
compares up1 = conv4(down3) with down3 of the same pass: a conv4 near the identity can solve it without the
encoder learning anything from it. With ``noise`` > 0 the decoder works from a corrupted pass instead (Gaussian noise of std
``noise`` added to the unlabelled images, in [0, 1] pixel units) and up1..up3 must match the clean pass's
down3..down1: every skip loss asks for denoising. :func:`mean_map_losses` gives each loss's floor for a decoder
that ignores its input and predicts the mean map, which the training curves plot beside each loss.

Collapse. A feature-matching loss is minimised by shrinking both sides to nothing (or to one constant
map), which also makes the features useless. Three choices prevent it:

* each side is standardized per sample (zero mean, unit variance over C, H, W) before the squared error,
  so a loss is 2 * (1 - Pearson correlation) in [0, 4]: scale no longer matters and shrinking earns nothing;
* the target (down-path) side is detached (stop-gradient, as in SimSiam, Chen & He 2021): LossB cannot
  move down1-3 towards whatever the decoder finds easy to predict. Its gradient reaches conv4-6 and,
  through up1's input down3, conv1-3: the encoder learns to keep in down3 what predicts its own
  earlier features, i.e. the image's content, which is the autoencoder's purpose;
* the encoder stays anchored by LossA (g > 0.5 gives it the larger weight).

No pixel reconstruction term was needed: :func:`collapse_stats` reports the sample-to-sample spread of
every feature map, which stays well away from zero through training (see the semi-supervised notebook).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from benchmark.models.face_model import FaceModel
from benchmark.models.registry import BACKBONES

G_RANGE = (0.5, 1.0)
# Variance floor of the per-sample standardization: far below any live feature's variance, so shrinking
# the features does not shrink the loss (layer_norm's default 1e-5 would, below a std of ~3e-3).
STANDARDIZE_EPS = 1e-12


def _block(conv: nn.Module, channels: int) -> nn.Sequential:
    return nn.Sequential(conv, nn.BatchNorm2d(channels), nn.ReLU(inplace=True))


class AEEncoder(nn.Module):
    """conv1-3: float32 (N, 3, S, S), normalized -> flattened down3 (N, C3 * (S/8)^2).

    image_size:  S, a multiple of 8 (the fully connected layer's width depends on it).
    channels:    (C1, C2, C3), the widths of conv1-3.
    kernel_size: odd kernel size of conv1-3 (padding keeps S/2 exact).
    """

    def __init__(
        self, image_size: int = 64, channels: tuple[int, int, int] = (32, 64, 128), kernel_size: int = 5
    ) -> None:
        super().__init__()
        if image_size % 8 or image_size < 8:
            raise ValueError(f"ae_encoder image_size must be a positive multiple of 8, got {image_size}")
        if len(channels) != 3 or kernel_size % 2 == 0:
            raise ValueError(f"ae_encoder needs 3 channel widths and an odd kernel_size, got {channels}, {kernel_size}")
        c1, c2, c3 = (int(c) for c in channels)
        pad = kernel_size // 2
        self.conv1 = _block(nn.Conv2d(3, c1, kernel_size, 2, pad, bias=False), c1)
        self.conv2 = _block(nn.Conv2d(c1, c2, kernel_size, 2, pad, bias=False), c2)
        self.conv3 = _block(nn.Conv2d(c2, c3, kernel_size, 2, pad, bias=False), c3)
        self.channels = (c1, c2, c3)
        self.maps = tuple((c, image_size // 2 ** (i + 1)) for i, c in enumerate(self.channels))
        self.config = {"image_size": image_size, "channels": [c1, c2, c3], "kernel_size": kernel_size}
        self.num_features = c3 * (image_size // 8) ** 2

    def layers(self) -> list[nn.Module]:
        """conv1-3 in forward order (a training stage's ``frozen_layers`` freezes the first ones)."""
        return [self.conv1, self.conv2, self.conv3]

    def features(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(N, 3, S, S) -> (down1 (N,C1,S/2,S/2), down2 (N,C2,S/4,S/4), down3 (N,C3,S/8,S/8))."""
        down1 = self.conv1(x)
        down2 = self.conv2(down1)
        return down1, down2, self.conv3(down2)

    def flatten(self, down3: torch.Tensor) -> torch.Tensor:
        """down3 (N, C3, S/8, S/8) -> (N, num_features), the fully connected layer's input."""
        return down3.flatten(1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(N, 3, S, S) -> (N, num_features): down3 flattened, the fully connected layer's input."""
        return self.flatten(self.features(x)[2])


@BACKBONES.register("ae_encoder")
def ae_encoder(image_size: int = 64, channels: tuple[int, int, int] = (32, 64, 128), kernel_size: int = 5) -> AEEncoder:
    """The patent's conv1-conv3 (CN112364828B, claim 1) as a backbone."""
    return AEEncoder(image_size, tuple(channels), kernel_size)


def _upsample(c_in: int, c_out: int, side_in: int, side_out: int) -> nn.ConvTranspose2d:
    """A stride-2 transposed convolution from side ``side_in`` to ``side_out`` (:class:`SkipDecoder`)."""
    if side_out == 2 * side_in:
        return nn.ConvTranspose2d(c_in, c_out, 4, 2, 1, bias=False)
    kernel = side_out - 2 * (side_in - 1)
    if not 2 <= kernel <= 7:
        raise ValueError(f"no stride-2 transposed convolution maps side {side_in} to {side_out}: each map must be "
                         "about twice the side of the next")
    return nn.ConvTranspose2d(c_in, c_out, kernel, 2, 0, bias=False)


class SkipDecoder(nn.Module):
    """conv4-6 for an encoder whose maps down1..down3 are ``maps`` = ((C1, s1), (C2, s2), (C3, s3)), (channels, side):
    down3 -> (up1 (N,C3,s3,s3), up2 (N,C2,s2,s2), up3 (N,C1,s1,s1)). conv4 is a stride-1 3x3 convolution; conv5 and
    conv6 are stride-2 transposed convolutions: 4x4 with padding 1 where the side doubles (the patent's encoder), else
    the kernel without padding that makes the side exact (FaceNet's 3 -> 8 -> 17: 4x4 and 3x3)."""

    def __init__(self, maps: tuple[tuple[int, int], ...]) -> None:
        super().__init__()
        (c1, s1), (c2, s2), (c3, s3) = maps
        self.conv4 = _block(nn.Conv2d(c3, c3, 3, 1, 1, bias=False), c3)
        self.conv5 = _block(_upsample(c3, c2, s3, s2), c2)
        self.conv6 = _block(_upsample(c2, c1, s2, s1), c1)

    def forward(self, down3: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        up1 = self.conv4(down3)
        up2 = self.conv5(up1)
        return up1, up2, self.conv6(up2)


def feature_loss(up: torch.Tensor, down: torch.Tensor) -> torch.Tensor:
    """Squared error of per-sample standardized maps, target ``down`` detached; 2*(1 - correlation), in [0, 4]."""
    shape = up.shape[1:]
    return F.mse_loss(
        F.layer_norm(up, shape, eps=STANDARDIZE_EPS), F.layer_norm(down.detach(), shape, eps=STANDARDIZE_EPS)
    )


def mean_map_losses(downs: tuple[torch.Tensor, ...]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """What (Loss1, Loss2, Loss3) would be for a decoder that predicts every image's map as the batch's mean map
    (down3, down2, down1 averaged over the N >= 2 images): the floor a decoder reaches without using its input."""
    return tuple(feature_loss(d.mean(dim=0, keepdim=True).expand_as(d), d) for d in (downs[2], downs[1], downs[0]))


def check_g(g: float) -> float:
    """``g`` if it lies in the open interval (0.5, 1) that the patent allows (claim 1), else ValueError."""
    lo, hi = G_RANGE
    if not lo < g < hi:
        raise ValueError(f"g = {g!r} is out of range; allowed: ({lo}, {hi}), both ends excluded (CN112364828B claim 1)")
    return float(g)


def combine(loss_a: torch.Tensor, loss_b: torch.Tensor, g: float) -> torch.Tensor:
    """Loss = g * LossA + (1 - g) * LossB, with g checked by :func:`check_g`."""
    g = check_g(g)
    return g * loss_a + (1.0 - g) * loss_b


class SemiSupervisedAE(nn.Module):
    """The whole patent model for training: ``face`` (a FaceModel whose backbone gives three maps: ``ae_encoder``,
    the patent's conv1-3, or the pretrained ``facenet_casia``, whose maps after repeat_1, repeat_2 and block8 play
    down1-3) plus the decoder conv4-6 built for those maps.

    Only ``face`` is needed (and saved) for recognition.
    """

    def __init__(self, face: FaceModel) -> None:
        super().__init__()
        if not hasattr(face.backbone, "maps"):
            raise TypeError(f"SemiSupervisedAE needs a backbone with three feature maps (ae_encoder, facenet_casia), "
                            f"got '{face.backbone_name}'")
        self.face = face
        self.decoder = SkipDecoder(face.backbone.maps)

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(N, 3, S, S) in [0, 1] -> (down1, down2, down3)."""
        return self.face.backbone.features(self.face.normalize(x))

    def embedding(self, down3: torch.Tensor) -> torch.Tensor:
        """down3 -> raw embedding (N, D): the backbone's rest (flattened for ae_encoder) and the embedding layer."""
        return self.face.neck(self.face.backbone.flatten(down3))

    def skip_losses(self, downs: tuple[torch.Tensor, ...],
                    targets: tuple[torch.Tensor, ...] | None = None) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(Loss1, Loss2, Loss3) = (down3~up1, down2~up2, down1~up3), each a scalar in [0, 4]: the decoder works
        from ``downs`` (a corrupted pass when denoising) and matches ``targets`` (default: ``downs`` themselves)."""
        targets = downs if targets is None else targets
        up1, up2, up3 = self.decoder(downs[2])
        return feature_loss(up1, targets[2]), feature_loss(up2, targets[1]), feature_loss(up3, targets[0])

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """(N, 3, S, S) in [0, 1] -> (down1, down2, down3, up1, up2, up3)."""
        downs = self.encode(x)
        return (*downs, *self.decoder(downs[2]))


@torch.no_grad()
def collapse_stats(model: SemiSupervisedAE, x: torch.Tensor) -> dict[str, float]:
    """Sample-to-sample spread of each feature map, to show the feature losses did not collapse.

    x: (N, 3, S, S) in [0, 1], N >= 2. For each of down1-3 and up1-3 (in eval mode): the standard deviation
    over the N images of every feature (channel, row, column), averaged over features, divided by the
    mean absolute activation (so 0 means every image gives the same map; ~1 is healthy). Collapsed
    features score 0 whatever their scale. Restores the model's train/eval mode.
    """
    was_training = model.training
    model.eval()
    try:
        maps = model(x)
    finally:
        model.train(was_training)
    names = ("down1", "down2", "down3", "up1", "up2", "up3")
    return {n: float(m.std(dim=0).mean() / m.abs().mean().clamp_min(1e-12)) for n, m in zip(names, maps)}
