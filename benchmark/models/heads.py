"""Classification heads that train a face embedding: softmax, CosFace and ArcFace.

Every head maps embeddings (N, D) (normalized or not) and integer identity labels (N,) to logits (N, C)
with the training margin applied, to be fed to cross-entropy; :meth:`Head.logits` gives the logits
without margin, for evaluation. C = ``num_classes`` (training identities), D = ``embedding_dim``.

* ``softmax``: a plain linear classifier W e + b on the raw embedding.
* ``cosface``: Wang et al. 2018, "CosFace: Large Margin Cosine Loss for Deep Face Recognition":
  s * (cos(theta_y) - m) for the true class, s * cos(theta_j) otherwise; s = 30, m = 0.35.
* ``arcface``: Deng et al. 2019, "ArcFace: Additive Angular Margin Loss for Deep Face Recognition":
  s * cos(theta_y + m) for the true class; s = 30, m = 0.5. Where theta_y + m would pass pi, cos(theta + m)
  is no longer decreasing in theta, so (as in insightface) the true-class logit becomes
  s * (cos(theta_y) - sin(pi - m) * m) when cos(theta_y) <= cos(pi - m); with ``easy_margin`` the margin
  is applied only where cos(theta_y) > 0.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from benchmark.models.registry import HEADS


class Head(nn.Module):
    """Base: a (C, D) weight matrix, initialized N(0, 0.01^2) from its own generator seeded by ``seed``
    (so a head is the same whatever the global RNG did before); subclasses define ``logits`` and the
    margin in ``forward``."""

    def __init__(self, embedding_dim: int, num_classes: int, seed: int = 0) -> None:
        super().__init__()
        if embedding_dim < 1 or num_classes < 2:
            raise ValueError(
                f"a head needs embedding_dim >= 1 and num_classes >= 2, got {embedding_dim}, {num_classes}"
            )
        self.embedding_dim = embedding_dim
        self.num_classes = num_classes
        self.weight = nn.Parameter(torch.empty(num_classes, embedding_dim))
        nn.init.normal_(self.weight, std=0.01, generator=torch.Generator().manual_seed(seed))

    def logits(self, embeddings: torch.Tensor) -> torch.Tensor:
        """(N, D) -> (N, C) logits without margin."""
        raise NotImplementedError

    def forward(self, embeddings: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """(N, D), (N,) int64 -> (N, C) logits with the training margin on each row's label."""
        raise NotImplementedError


@HEADS.register("softmax")
class SoftmaxHead(Head):
    """Linear classifier on the raw embedding; no margin (``forward`` ignores ``labels``)."""

    def __init__(self, embedding_dim: int, num_classes: int, seed: int = 0) -> None:
        super().__init__(embedding_dim, num_classes, seed)
        self.bias = nn.Parameter(torch.zeros(num_classes))

    def logits(self, embeddings: torch.Tensor) -> torch.Tensor:
        return F.linear(embeddings, self.weight, self.bias)

    def forward(self, embeddings: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        return self.logits(embeddings)


class CosineHead(Head):
    """Shared part of the margin heads: s * cos(theta) between normalized embeddings and class centres."""

    def __init__(self, embedding_dim: int, num_classes: int, s: float, m: float, seed: int = 0) -> None:
        super().__init__(embedding_dim, num_classes, seed)
        if s <= 0 or m < 0:
            raise ValueError(f"margin heads need scale s > 0 and margin m >= 0, got s={s}, m={m}")
        self.s = float(s)
        self.m = float(m)

    def cosine(self, embeddings: torch.Tensor) -> torch.Tensor:
        """(N, D) -> (N, C) cosines in [-1, 1]."""
        return F.linear(F.normalize(embeddings, dim=1), F.normalize(self.weight, dim=1)).clamp(-1.0, 1.0)

    def logits(self, embeddings: torch.Tensor) -> torch.Tensor:
        return self.s * self.cosine(embeddings)

    def margin(self, cos_y: torch.Tensor) -> torch.Tensor:
        """(N,) true-class cosines -> (N,) true-class cosines with the margin."""
        raise NotImplementedError

    def forward(self, embeddings: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        cos = self.cosine(embeddings)
        rows = torch.arange(len(labels), device=cos.device)
        cos_y = cos[rows, labels]
        cos = cos.index_put((rows, labels), self.margin(cos_y))
        return self.s * cos


@HEADS.register("cosface")
class CosFaceHead(CosineHead):
    """Large margin cosine loss (Wang et al. 2018): cos(theta_y) - m."""

    def __init__(self, embedding_dim: int, num_classes: int, s: float = 30.0, m: float = 0.35, seed: int = 0) -> None:
        super().__init__(embedding_dim, num_classes, s, m, seed)

    def margin(self, cos_y: torch.Tensor) -> torch.Tensor:
        return cos_y - self.m


@HEADS.register("arcface")
class ArcFaceHead(CosineHead):
    """Additive angular margin (Deng et al. 2019): cos(theta_y + m), with the threshold or easy margin."""

    def __init__(
        self,
        embedding_dim: int,
        num_classes: int,
        s: float = 30.0,
        m: float = 0.5,
        easy_margin: bool = False,
        seed: int = 0,
    ) -> None:
        super().__init__(embedding_dim, num_classes, s, m, seed)
        self.easy_margin = easy_margin
        self.threshold = math.cos(math.pi - m)
        self.fallback = math.sin(math.pi - m) * m

    def margin(self, cos_y: torch.Tensor) -> torch.Tensor:
        sin_y = torch.sqrt((1.0 - cos_y * cos_y).clamp_min(1e-12))
        phi = cos_y * math.cos(self.m) - sin_y * math.sin(self.m)
        if self.easy_margin:
            return torch.where(cos_y > 0, phi, cos_y)
        return torch.where(cos_y > self.threshold, phi, cos_y - self.fallback)
