"""Shared fixtures. Real face data is read in place from ../shared/data/real, never copied."""

import os
from pathlib import Path

import pytest
import torch
from torch import nn

ROOT = Path(__file__).resolve().parents[1]
REAL_DATA = ROOT.parent / "shared" / "data" / "real"


@pytest.fixture(scope="session")
def real_data_dir() -> Path:
    """../shared/data/real beside the checkout; the test skips when it is absent."""
    if not REAL_DATA.is_dir():
        pytest.skip(f"real face data not found at {REAL_DATA}")
    return REAL_DATA


@pytest.fixture(scope="session")
def facenet_cache(tmp_path_factory) -> Path:
    """A cache folder holding the converted FaceNet weights (converted once per session)."""
    from benchmark.models.pretrained import facenet_state_dict

    folder = tmp_path_factory.mktemp("pretrained")
    facenet_state_dict(folder)
    return folder


@pytest.fixture(scope="module")
def small_cnn() -> nn.Module:
    """A seeded 5-class CNN on 16 x 16 images (eval mode): the logits model the attacks are cross-checked on."""
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(8, 16, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(2), nn.Flatten(), nn.Linear(64, 5),
    ).eval()


@pytest.fixture(scope="session")
def tiny_face_model():
    """A function (embedding_dim, batchnorm=True) -> a tiny seeded ae_encoder FaceModel on 16 x 16 faces in eval
    mode; ``batchnorm=False`` swaps every BatchNorm for the identity (a batch's other faces then no longer enter
    each face's embedding)."""
    from benchmark.models.face_model import build_face_model

    def build(embedding_dim: int = 16, batchnorm: bool = True):
        model = build_face_model("ae_encoder", seed=0, embedding_dim=embedding_dim, image_size=16, channels=(16, 32, 32),
                                 kernel_size=3)
        if not batchnorm:
            for parent in list(model.modules()):
                for name, child in parent.named_children():
                    if isinstance(child, nn.BatchNorm1d | nn.BatchNorm2d):
                        setattr(parent, name, nn.Identity())
        return model.eval()

    return build


@pytest.fixture
def one_thread():
    """One intra-op torch thread: tiny graphs only lose time to thread hand-offs on a loaded 2-core machine."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """In CI a skipped test that needs what CI provides fails instead: it must run. FACEBENCH_REQUIRE_REAL_DATA=1
    does that for `real_data` tests, FACEBENCH_REQUIRE_BROWSER=1 for `browser` tests."""
    outcome = yield
    report = outcome.get_result()
    if not report.skipped:
        return
    for marker, variable in (("real_data", "FACEBENCH_REQUIRE_REAL_DATA"), ("browser", "FACEBENCH_REQUIRE_BROWSER")):
        if item.get_closest_marker(marker) and os.environ.get(variable) == "1":
            report.outcome = "failed"
            report.longrepr = f"{marker} test skipped but {variable}=1: {report.longrepr}"
