"""The face recognizer every variant trains and every consumer (evaluation, attacks, identification) uses.

A :class:`FaceModel` owns, in order:

1. input normalization: images are float32 NCHW in [0, 1] (DESIGN.md, convention 8) and the model
   subtracts ``mean`` and divides by ``std`` itself (buffers, default 0.5 / 0.5, i.e. the
   ``(x - 127.5) / 128``-style scaling of insightface's ArcFace training, Deng et al. 2019);
2. a backbone from :data:`~benchmark.models.registry.BACKBONES`, mapping (N, 3, H, W) to (N, F);
3. the embedding layer: Linear(F, D) + BatchNorm1d(D), the "fully connected layer" that gives the face
   feature vector (patent CN112364828B, claim 1), D = ``embedding_dim`` (default 128). A backbone that
   already ends in its own embedding layer (a pretrained embedding network such as FaceNet, whose
   embedding a new Linear + BatchNorm would destroy) declares ``embedding = True``: the neck is then the
   identity and ``embedding_dim`` must equal its ``num_features``.

``forward`` returns the raw (N, D) embedding that the training heads consume; :meth:`FaceModel.embed`
returns it L2-normalized, the only form used for matching (cosine similarity).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from benchmark.data.align import Geometry
from benchmark.models.registry import create_backbone

DEFAULT_MEAN = (0.5, 0.5, 0.5)
DEFAULT_STD = (0.5, 0.5, 0.5)


def to_float_nchw(images: np.ndarray) -> torch.Tensor:
    """uint8 (N, H, W, 3) RGB -> float32 (N, 3, H, W) in [0, 1], without a per-image Python loop."""
    if images.dtype != np.uint8 or images.ndim != 4 or images.shape[-1] != 3:
        raise ValueError(f"images must be uint8 (N, H, W, 3), got {images.dtype} {images.shape}")
    # np.require copies only an array that is not C-contiguous and writable (torch warns on read-only arrays)
    return uint8_to_float_nchw(torch.from_numpy(np.require(images, requirements=["C", "W"])))


def uint8_to_float_nchw(batch: torch.Tensor) -> torch.Tensor:
    """uint8 (N, H, W, 3) tensor -> float32 (N, 3, H, W) in [0, 1], on the tensor's device."""
    return batch.permute(0, 3, 1, 2).float().div_(255.0)


class FaceModel(nn.Module):
    """Normalization + backbone + embedding layer.

    backbone:        a name registered in BACKBONES ("ae_encoder", "resnet18", "mobilenetv3_small_100",
                     "facenet_casia").
    backbone_kwargs: keyword arguments for that backbone's factory (e.g. ``image_size``, ``channels``);
                     every backbone exposes ``num_features`` (F) and ``config`` (all its arguments,
                     defaults included), which is what the model records.
    embedding_dim:   D, the length of the face feature vector.
    mean, std:       per-channel input normalization, applied inside the model.
    input_size:      the side of the square face crops the model was built for; ``forward`` refuses any
                     other size with a message naming both. None: any size (checkpoints written before the
                     check).
    geometry:        how its face crops are cut (:meth:`~benchmark.data.align.Geometry.describe`, e.g.
                     ``arcface 112px``, ``box+32px 160px``): what evaluation, identification and the CLI cut
                     for it; its size must be ``input_size``. None: the ArcFace template at ``input_size``.

    Attributes ``embedding_dim`` (int) and ``model_id`` (a stable string naming the architecture and its
    configuration) identify which embeddings a vector database may be matched against.
    """

    def __init__(
        self,
        backbone: str,
        backbone_kwargs: dict[str, Any] | None = None,
        embedding_dim: int = 128,
        mean: tuple[float, float, float] = DEFAULT_MEAN,
        std: tuple[float, float, float] = DEFAULT_STD,
        input_size: int | None = None,
        geometry: str | None = None,
    ) -> None:
        super().__init__()
        if embedding_dim < 1:
            raise ValueError(f"embedding_dim must be a positive integer, got {embedding_dim}")
        if geometry is not None and Geometry.parse(geometry).size != input_size:
            raise ValueError(f"geometry {geometry!r} cuts crops of another size than input_size={input_size}")
        self.backbone_name = backbone
        self.input_size = None if input_size is None else int(input_size)
        self.geometry = geometry
        self.embedding_dim = int(embedding_dim)
        self.register_buffer("mean", torch.tensor(mean, dtype=torch.float32).view(1, 3, 1, 1))
        self.register_buffer("std", torch.tensor(std, dtype=torch.float32).view(1, 3, 1, 1))
        self.backbone = create_backbone(backbone, **(backbone_kwargs or {}))
        self.backbone_kwargs = dict(self.backbone.config)
        if getattr(self.backbone, "embedding", False):
            if self.embedding_dim != self.backbone.num_features:
                raise ValueError(f"backbone '{backbone}' outputs its own {self.backbone.num_features}-d embedding: "
                                 f"embedding_dim must be {self.backbone.num_features}, got {embedding_dim}")
            self.neck = nn.Identity()
        else:
            self.neck = nn.Sequential(
                nn.Linear(self.backbone.num_features, self.embedding_dim, bias=False),
                nn.BatchNorm1d(self.embedding_dim),
            )

    @property
    def model_id(self) -> str:
        """Arch and config, stable: ``ae_encoder(channels=32-64-128,image_size=64,kernel_size=5)+emb128``,
        ``resnet18+emb128``."""
        kw = ",".join(f"{k}={_text(self.backbone_kwargs[k])}" for k in sorted(self.backbone_kwargs))
        arch = f"{self.backbone_name}({kw})" if kw else self.backbone_name
        return f"{arch}+emb{self.embedding_dim}"

    def config(self) -> dict[str, Any]:
        """The constructor arguments, enough to rebuild the model (see ``checkpoint.load_model``)."""
        return {
            "backbone": self.backbone_name,
            "backbone_kwargs": dict(self.backbone_kwargs),
            "embedding_dim": self.embedding_dim,
            "mean": tuple(self.mean.flatten().tolist()),
            "std": tuple(self.std.flatten().tolist()),
            "input_size": self.input_size,
            "geometry": self.geometry,
        }

    @property
    def crop_geometry(self) -> Geometry | None:
        """The :class:`Geometry` of the crops it takes (None: any size, cut on the ArcFace template). A model saved
        without ``input_size`` whose backbone was built for one size (``image_size``) takes that size."""
        if self.geometry is not None:
            return Geometry.parse(self.geometry)
        size = self.input_size or self.backbone_kwargs.get("image_size")
        return None if size is None else Geometry(int(size))

    def normalize(self, x: torch.Tensor) -> torch.Tensor:
        """(N, 3, H, W) in [0, 1] -> normalized backbone input of the same shape."""
        return (x - self.mean) / self.std

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(N, 3, H, W) float32 in [0, 1] -> raw embedding (N, D), for training heads."""
        if self.input_size is not None and tuple(x.shape[-2:]) != (self.input_size, self.input_size):
            raise ValueError(f"this model takes {self.input_size}x{self.input_size} face crops (its input geometry), "
                             f"got {x.shape[-1]}x{x.shape[-2]}: cut the faces at the size it was trained on")
        return self.neck(self.backbone(self.normalize(x)))

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        """(N, 3, H, W) float32 in [0, 1] -> L2-normalized embedding (N, D)."""
        return F.normalize(self.forward(x), dim=1)


def _text(value: Any) -> str:
    """A config value as text; sequences as ``a-b-c`` so lists (YAML) and tuples (code) read the same."""
    if isinstance(value, (list, tuple)):
        return "-".join(_text(v) for v in value)
    return str(value)


def build_face_model(backbone: str, seed: int = 0, embedding_dim: int = 128, input_size: int | None = None,
                     geometry: str | None = None, **backbone_kwargs: Any) -> FaceModel:
    """A :class:`FaceModel` whose initial weights depend only on ``seed`` (the global RNG is left as it was)."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return FaceModel(backbone, backbone_kwargs, embedding_dim, input_size=input_size, geometry=geometry)
