"""Data-parallel training under torchrun (DDP, gloo on the CPU): the 2-process run trains the one-process model."""

import copy
import json

import pytest
import torch
import torch.distributed as dist
from torch import nn

from benchmark import cli
from benchmark.train import distributed
from benchmark.train.ddp_check import weight_difference, workspace

TOLERANCE = 1e-4  # float32 summation order over a few steps; a run without global BatchNorm differs by ~0.3


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    root = tmp_path_factory.mktemp("ddp")
    workspace(root)
    return root


@pytest.mark.parametrize("stage", ["supervised", "semisupervised"])
def test_two_gloo_processes_train_the_single_process_model(root, stage):
    found = weight_difference(root, stage)
    assert found["trained_distance"] > 0.05  # training moved the weights, so matching them means something
    assert found["max_abs_difference"] < TOLERANCE


def test_the_gated_stage_runs_under_torchrun_with_one_gate_and_writes_its_metrics(root):
    found = weight_difference(root, "adversarial")  # attack starts differ per process: no equality expected
    metrics = json.loads((root / "reports/metrics/adversarial.json").read_text())
    assert found["max_abs_difference"] < found["trained_distance"] * 10
    assert {"verification", "validation", "adversarial_fraction", "switches"} <= set(metrics)
    assert 0.0 <= metrics["adversarial_fraction"] <= 1.0


@pytest.fixture
def one_process_group(tmp_path):
    dist.init_process_group("gloo", init_method=f"file://{tmp_path / 'rendezvous'}", rank=0, world_size=1)
    yield
    dist.destroy_process_group()


def test_global_batch_norm_equals_batch_norm_in_one_process(one_process_group):
    torch.manual_seed(0)
    reference = nn.BatchNorm2d(4)
    reference.weight.data.uniform_(0.5, 1.5)
    reference.bias.data.uniform_(-0.5, 0.5)
    ours = copy.deepcopy(reference)
    x = torch.randn(8, 4, 5, 5) * 3 + 1
    x1, x2 = x.clone().requires_grad_(), x.clone().requires_grad_()
    y1 = reference(x1)
    with distributed.data_parallel([ours]):
        y2 = ours(x2)
    assert torch.allclose(y1, y2, atol=1e-5)
    (y1 * torch.arange(y1.numel()).view_as(y1)).sum().backward()
    (y2 * torch.arange(y2.numel()).view_as(y2)).sum().backward()
    assert torch.allclose(x1.grad, x2.grad, atol=1e-4)
    assert torch.allclose(reference.weight.grad, ours.weight.grad, rtol=1e-4)
    assert torch.allclose(reference.running_mean, ours.running_mean, atol=1e-6)
    assert torch.allclose(reference.running_var, ours.running_var, atol=1e-5)
    assert "forward" not in vars(ours)  # the layer is itself again after the context


def test_shard_needs_an_even_split(one_process_group, monkeypatch):
    monkeypatch.setattr(distributed, "world_size", lambda: 2)
    monkeypatch.setattr(distributed, "rank", lambda: 1)
    assert distributed.shard(torch.arange(6)).tolist() == [3, 4, 5]
    with pytest.raises(ValueError, match="does not split evenly over 2 processes"):
        distributed.shard(torch.arange(5))


def test_single_process_helpers_are_identities():
    assert not distributed.active() and distributed.world_size() == 1 and distributed.is_main()
    assert distributed.means({"a": 2.0}) == {"a": 2.0}
    batch = torch.arange(3)
    assert distributed.shard(batch) is batch


def test_train_command_rejects_an_unknown_stage(capsys):
    assert cli.main(["train", "nope"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "unknown training stage 'nope'" in err and "supervised" in err
