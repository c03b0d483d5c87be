"""The whole DVC pipeline on the tiny preset, in a copy of the repository: on the synthetic data and on a
real folder of faces. Prints the wall time (the target is under 5 minutes on 2 cores)."""

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from benchmark import cli, presets
from benchmark.errors import ConfigError

ROOT = Path(__file__).resolve().parents[1]
STAGES = set(yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"])


def copy_repo(dest: Path) -> None:
    """The repository's files as a fresh clone would have them (tracked and not ignored), no outputs."""
    listed = subprocess.run(["git", "ls-files", "--cached", "--others", "--exclude-standard", "-z"], cwd=ROOT,
                            capture_output=True, text=True, check=True).stdout.split("\0")
    for rel in filter(None, listed):
        src = ROOT / rel
        if src.is_file():
            (dest / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dest / rel)


def run_tiny_pipeline(dest: Path, extra: dict | None = None) -> float:
    """Copy the repo to ``dest``, write params.yaml = params.yaml + tiny preset + ``extra``, run ``dvc repro``;
    returns the seconds it took."""
    copy_repo(dest)
    params = presets.apply(yaml.safe_load((ROOT / "params.yaml").read_text()), "tiny", extra)
    (dest / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    subprocess.run(["make", "-s", "data/.facebench"], cwd=dest, check=True)  # what make repro writes into data/
    git = ["git", "-c", "user.name=facebench", "-c", "user.email=ci@facebench.invalid"]
    for cmd in (["git", "init", "-q"], ["git", "add", "-A"], [*git, "commit", "-qm", "tiny"]):
        subprocess.run(cmd, cwd=dest, check=True)
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    start = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "dvc", "repro"], cwd=dest, env=env, capture_output=True, text=True, timeout=900)
    seconds = time.perf_counter() - start
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return seconds


def dvc_json(dest: Path, *args: str) -> dict:
    out = subprocess.run([sys.executable, "-m", "dvc", *args, "--json"], cwd=dest, capture_output=True, text=True, check=True)
    return json.loads(out.stdout)


def test_presets_are_listed_and_an_unknown_one_is_refused():
    assert "tiny" in presets.names()
    with pytest.raises(ConfigError, match="unknown preset 'huge'; known presets: .*tiny"):
        presets.load("huge")


def test_merge_overrides_nested_keys_only():
    base = {"a": {"b": 1, "c": 2}, "d": 3}
    assert presets.merge(base, {"a": {"b": 5}}) == {"a": {"b": 5, "c": 2}, "d": 3}
    assert base == {"a": {"b": 1, "c": 2}, "d": 3}


def test_a_preset_cannot_smuggle_in_a_bad_value():
    with pytest.raises(ConfigError, match="semisupervised.g"):
        presets.apply(yaml.safe_load((ROOT / "params.yaml").read_text()), "tiny", {"semisupervised": {"g": 0.3}})


def test_the_full_preset_only_lengthens_budgets_and_the_real_presets_start_from_it():
    from benchmark import config
    raw = yaml.safe_load((ROOT / "params.yaml").read_text())
    default = config.as_dict(config.build(config.Params, raw))
    full = config.as_dict(config.build(config.Params, presets.apply(raw, "full")))
    assert full["data"] == default["data"] and full["seed"] == default["seed"]  # the same faces and test pairs
    assert full["semisupervised"]["max_epochs"] > default["semisupervised"]["max_epochs"]
    assert full["evaluate"]["robustness"]["headline_pairs"] > default["evaluate"]["robustness"]["headline_pairs"]
    assert full["federated"]["rounds"] * full["federated"]["local_epochs"] > \
        default["federated"]["rounds"] * default["federated"]["local_epochs"]
    assert config.read_yaml(presets.FOLDER / "real.yaml")["_extends"] == "full"
    real = presets.apply(raw, "real")
    assert real["evaluate"]["robustness"]["headline_pairs"] == full["evaluate"]["robustness"]["headline_pairs"]


def test_cli_writes_params_merged_with_a_preset(tmp_path, capsys):
    out = tmp_path / "params.yaml"
    assert cli.main(["preset", "tiny", "--params", str(ROOT / "params.yaml"), "--out", str(out)]) == 0
    written = yaml.safe_load(out.read_text())
    assert written["data"]["image_size"] == 32 and written["seed"] == 0
    assert cli.main(["preset", "huge", "--params", str(ROOT / "params.yaml"), "--out", str(out)]) == 2
    assert "unknown preset 'huge'" in capsys.readouterr().err


@pytest.mark.slow
def test_tiny_preset_runs_the_whole_pipeline(tmp_path):
    seconds = run_tiny_pipeline(tmp_path)
    print(f"\ntiny preset, whole pipeline: {seconds:.0f} s (target < 300 s on 2 cores)")
    lock = yaml.safe_load((tmp_path / "dvc.lock").read_text())
    assert set(lock["stages"]) == STAGES
    assert (tmp_path / "reports/index.html").is_file() and (tmp_path / "reports/summary.md").is_file()
    metrics = dvc_json(tmp_path, "metrics", "show")
    assert any("evaluation.json" in path for path in json.dumps(metrics).split('"'))


@pytest.mark.slow
@pytest.mark.real_data
def test_tiny_preset_runs_the_whole_pipeline_on_a_real_folder(tmp_path, real_data_dir):
    # Prepare: train on ORL, report on its held-out identities and on Yale (a folder benchmark set)
    benchmarks = [{"name": "heldout", "format": "split"},
                  {"name": "yale", "format": "folder", "path": str(real_data_dir / "yale")}]
    # Execute
    seconds = run_tiny_pipeline(tmp_path, {"data": {"source": "folder", "path": str(real_data_dir / "orl"),
                                                    "benchmarks": benchmarks}})
    print(f"\ntiny preset on ORL with Yale as a benchmark set, whole pipeline: {seconds:.0f} s")
    # Assert: every stage ran on real faces and every variant is reported on both sets, in the report too
    data = json.loads((tmp_path / "reports/metrics/data.json").read_text())
    assert data["identities"] == 40 and data["images"] == 400
    assert data["benchmarks"]["yale"]["identities"] == 15 and data["benchmarks"]["yale"]["overlap_identities"] == 0
    evaluation = json.loads((tmp_path / "reports/metrics/evaluation.json").read_text())
    assert all(list(per_set) == ["heldout", "yale"] for per_set in evaluation.values())
    assert all(0.0 <= r["yale"]["verification"]["accuracy_mean"] <= 1.0 for r in evaluation.values())
    page = (tmp_path / "reports/index.html").read_text()
    assert "source: folder" in page and "heldout" in page and "yale" in page


@pytest.mark.parametrize("preset", [None, "real"])
def test_the_gates_default_is_its_committed_validation_sweeps_choice(preset):
    # the default data's sweep (docs/gate_sweep.json) and CelebA's (docs/gate_sweep_real.json) chose on validation
    # pairs; params.yaml and the real preset carry those choices, and the sweep files name the command that made them
    raw = yaml.safe_load((ROOT / "params.yaml").read_text())
    params = presets.apply(raw, preset) if preset else raw
    sweep = json.loads((ROOT / params["paths"]["gate_sweep"]).read_text())
    assert sweep["command"].startswith("facebench gate-sweep")
    for variant, knob in (("adversarial", "threshold"), ("natural_then_at", "switch")):
        assert params[variant][knob] == sweep["choice"][variant]["chosen"]
