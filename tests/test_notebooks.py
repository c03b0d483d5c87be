"""Notebooks and dvc.yaml agree with params.yaml; the data notebook runs end to end on a tiny preset."""

import ast
import json
import re
from pathlib import Path

import papermill
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
PARAMS = yaml.safe_load((ROOT / "params.yaml").read_text())
DVC = yaml.safe_load((ROOT / "dvc.yaml").read_text())
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))


def parameters_cell(path: Path) -> dict:
    cells = json.loads(path.read_text())["cells"]
    tagged = [c for c in cells if "parameters" in c.get("metadata", {}).get("tags", [])]
    assert len(tagged) == 1, f"{path.name} needs exactly one cell tagged 'parameters'"
    tree = ast.parse("".join(tagged[0]["source"]))
    return {node.targets[0].id: ast.literal_eval(node.value) for node in tree.body if isinstance(node, ast.Assign)}


def stage_switches(notebook: str) -> set[str]:
    """Parameters that every DVC stage running ``notebook`` passes with ``-p name value``."""
    cmds = [s["cmd"] for s in DVC["stages"].values() if notebook in s["cmd"]]
    sets = [set(re.findall(r"-p (\w+) ", cmd)) for cmd in cmds]
    return set.intersection(*sets) if sets else set()


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_parameters_cell_defaults_equal_params_yaml(path):
    defaults = parameters_cell(path)
    switches = stage_switches(f"notebooks/{path.name}")
    assert defaults, f"{path.name} has an empty parameters cell"
    for key, value in defaults.items():
        if key in switches:
            continue
        assert key in PARAMS, f"{path.name} parameter '{key}' is neither a params.yaml key nor passed with -p"
        assert value == PARAMS[key], f"{path.name} parameter '{key}' differs from params.yaml"


@pytest.mark.parametrize("name", sorted(DVC["stages"]))
def test_each_stage_runs_its_notebook_and_tracks_its_params(name):
    stage = DVC["stages"][name]
    notebooks = [d for d in stage["deps"] if str(d).startswith("notebooks/")]
    assert len(notebooks) == 1 and stage["cmd"].startswith(f"facebench notebook {notebooks[0]} ")
    assert "paths" in stage["params"]
    # the data stage draws from data.seed (in its `data` section); every other stage from the training seed
    assert ("data" if name == "data" else "seed") in stage["params"]
    own = name if name in PARAMS else None
    assert own is None or own in stage["params"], f"stage '{name}' must track its params.yaml section"


@pytest.mark.slow
def test_data_notebook_runs_on_tiny_preset(tmp_path):
    tiny = dict(PARAMS)
    tiny["paths"] = {"artifacts": str(tmp_path / "artifacts"), "reports": str(tmp_path / "reports")}
    tiny["data"] = {
        **PARAMS["data"],
        "image_size": 32,
        "synthetic": {**PARAMS["data"]["synthetic"], "identities": 24, "images_per_identity": 4, "video_frames": 5},
        "protocol": {**PARAMS["data"]["protocol"], "folds": 4, "pairs_per_fold": 10, "institutions": 2},
    }
    out = tmp_path / "01_data.ipynb"
    papermill.execute_notebook(str(ROOT / "notebooks/01_data.ipynb"), str(out), parameters=tiny, cwd=str(ROOT), progress_bar=False)
    metrics = json.loads((tmp_path / "reports/metrics/data.json").read_text())
    assert metrics["identities"] == 24 and metrics["images"] == 96
    assert list(metrics["eigenfaces"]) == ["heldout"] and 0.0 <= metrics["eigenfaces"]["heldout"]["accuracy_mean"] <= 1.0
    figures = sorted(p.name for p in (tmp_path / "reports/figures/data").glob("*.png"))
    assert figures == ["eigenfaces_roc.png", "identities.png", "nuisance_factors.png", "video_filmstrip.png"]
    executed = json.loads(out.read_text())
    images = [o for c in executed["cells"] for o in c.get("outputs", []) if "image/png" in o.get("data", {})]
    assert len(images) == 4


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_every_cell_has_an_id(path):
    # nbformat 4.5 cells carry ids; a missing one makes nbformat warn on the console of every run
    cells = json.loads(path.read_text())["cells"]
    ids = [c.get("id") for c in cells]
    assert None not in ids and len(set(ids)) == len(ids)
