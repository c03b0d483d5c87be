"""Benchmark sets through the data stage: an LFW View 2 layout, a folder set's overlap with training, bad input."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from benchmark import config
from benchmark.data import stage
from benchmark.data.dataset import load_benchmarks
from benchmark.errors import ConfigError, DataError


def _params(tmp_path: Path, **data) -> config.Params:
    """Small data-stage params with every path in ``tmp_path``; ``data`` overrides ``data.*``."""
    raw = {
        "paths": {"artifacts": str(tmp_path / "a"), "reports": str(tmp_path / "r")},
        "data": {
            "image_size": 32,
            "synthetic": {"identities": 12, "images_per_identity": 3, "video_frames": 4},
            "protocol": {"folds": 2, "pairs_per_fold": 5, "institutions": 2, "val_pairs": 5},
            "eigenfaces": {"components": 8},
            **data,
        },
    }
    return config.build(config.Params, raw)


def _outputs(tmp_path: Path) -> list[Path]:
    """The data stage's outputs that exist under ``tmp_path`` (the artifacts' data folder, data.json)."""
    return [p for p in (tmp_path / "a" / "data", tmp_path / "r" / "metrics" / "data.json") if p.exists()]


def _noise(path: Path, seed: int, shape=(30, 30, 3)) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.random.default_rng(seed).integers(0, 256, shape, dtype=np.uint8)).save(path)


def _noise_folder(root: Path, names: list[str], per_identity: int = 3, seed: int = 0) -> Path:
    """``root/<name>/<k>.png``: distinct noise crops (taken as crops with ``detect: never``)."""
    for n, name in enumerate(names):
        for k in range(per_identity):
            _noise(root / name / f"{k}.png", seed=1000 * seed + 10 * n + k)
    return root


# ---------------------------------------------------------------- an LFW View 2 layout of real faces

PER_IDENTITY = 3


def _pairs_text(folds: list[list[str]]) -> tuple[str, list[tuple[str, int, str, int, bool, int]]]:
    """View 2 pairs.txt over identity-disjoint folds in which every identity appears: per fold one genuine pair
    per identity (images 1 and 2, or 2 and 3) and one impostor pair per identity with its neighbour (image 3
    of one with image 1 of the next). Returns the text and (name a, i, name b, j, is_same, fold) per line."""
    lines, pairs = [], []
    for f, names in enumerate(folds):
        genuine = [(name, 1 + k % 2, name, 2 + k % 2, True, f) for k, name in enumerate(names)]
        impostor = [(name, 3, names[(k + 1) % len(names)], 1, False, f) for k, name in enumerate(names)]
        lines += [f"{a}\t{i}\t{j}" for a, i, _, j, _, _ in genuine]
        lines += [f"{a}\t{i}\t{b}\t{j}" for a, i, b, j, _, _ in impostor]
        pairs += genuine + impostor
    return f"{len(folds)}\t{len(folds[0])}\n" + "\n".join(lines) + "\n", pairs


@pytest.fixture(scope="module")
def orl_layouts(tmp_path_factory, real_data_dir) -> tuple[Path, Path, list]:
    """In a temporary folder (never the repository): ORL s1-s20 as the training folder (PGM as they are), and
    s21-s40 as an LFW layout (``s21/s21_0001.jpg``, JPEG) with a 2-fold x (10 + 10) pairs.txt, each
    identity with its first PER_IDENTITY images."""
    orl = real_data_dir / "orl"
    if not (orl / "s40").is_dir():
        pytest.skip(f"ORL not found at {orl}")
    base = tmp_path_factory.mktemp("orl_layouts")
    train, lfw = base / "train", base / "lfw"
    for s in range(1, 41):
        for k in range(1, PER_IDENTITY + 1):
            source = orl / f"s{s}" / f"{k}.pgm"
            if s <= 20:
                (train / f"s{s}").mkdir(parents=True, exist_ok=True)
                shutil.copyfile(source, train / f"s{s}" / f"{k}.pgm")
            else:
                (lfw / f"s{s}").mkdir(parents=True, exist_ok=True)
                Image.open(source).convert("RGB").save(lfw / f"s{s}" / f"s{s}_{k:04d}.jpg", quality=95)
    text, pairs = _pairs_text([[f"s{s}" for s in range(21, 31)], [f"s{s}" for s in range(31, 41)]])
    (lfw / "pairs.txt").write_text(text)
    return train, lfw, pairs


@pytest.mark.real_data
def test_lfw_layout_in_which_every_identity_is_paired_is_a_benchmark_set(tmp_path, orl_layouts):
    # Prepare
    train, lfw, file_pairs = orl_layouts
    params = _params(tmp_path, source="folder", path=str(train), benchmarks=[
        {"name": "heldout"}, {"name": "orl_lfw", "format": "lfw_pairs", "path": str(lfw), "pairs_file": "pairs.txt"}])

    # Execute
    result = stage.run(params)

    # Assert: data.json's block of the set, and the npz's pairs are the file's pairs as given.
    metrics = json.loads((tmp_path / "r" / "metrics" / "data.json").read_text())
    assert metrics["benchmarks"]["orl_lfw"] == {"format": "lfw_pairs", "pairs": 40, "identities": 20,
                                                "images": 20 * PER_IDENTITY, "unusable": 0, "overlap_identities": 0}
    assert result.manifest["benchmarks"]["orl_lfw"]["detected_and_aligned"] == 20 * PER_IDENTITY
    assert set(metrics["eigenfaces"]) == {"heldout", "orl_lfw"}
    bench = load_benchmarks(params)["orl_lfw"]
    keys = sorted({(a, i) for a, i, _, _, _, _ in file_pairs} | {(b, j) for _, _, b, j, _, _ in file_pairs})
    expected = [[keys.index((a, i)), keys.index((b, j))] for a, i, b, j, _, _ in file_pairs]
    assert bench.format == "lfw_pairs" and bench.images.shape == (20 * PER_IDENTITY, 32, 32, 3)
    assert bench.pairs.tolist() == expected
    assert bench.is_same.tolist() == [int(p[4]) for p in file_pairs]
    assert bench.folds.tolist() == [p[5] for p in file_pairs]
    named = [[bench.identities[bench.labels[k]] for k in pair] for pair in bench.pairs]
    assert named == [[a, b] for a, _, b, _, _, _ in file_pairs]
    assert not bench.has_identification and bench.detected.all()


# ---------------------------------------------------------------- overlap with the training source

def test_folder_set_reports_identities_it_shares_with_training(tmp_path):
    # Prepare: a training folder p00-p11 and a benchmark folder whose p10 and p11 repeat training identities.
    train = _noise_folder(tmp_path / "train", [f"p{n:02d}" for n in range(12)])
    bench = _noise_folder(tmp_path / "bench", ["p10", "p11", "q0", "q1", "q2", "q3"], seed=1)
    params = _params(tmp_path, source="folder", path=str(train), detect="never", benchmarks=[
        {"name": "heldout"}, {"name": "bench", "format": "folder", "path": str(bench)}])

    # Execute
    result = stage.run(params)

    # Assert
    metrics = json.loads((tmp_path / "r" / "metrics" / "data.json").read_text())
    assert metrics["benchmarks"]["bench"]["overlap_identities"] == 2
    assert metrics["benchmarks"]["heldout"]["overlap_identities"] == 0
    manifest = json.loads((tmp_path / "a" / "data" / "manifest.json").read_text())
    assert manifest["benchmarks"]["bench"]["overlap_identities"] == ["p10", "p11"]
    assert manifest["benchmarks"]["heldout"]["overlap_identities"] == []
    assert metrics["benchmarks"]["bench"]["identities"] == 6 and result.benchmarks["bench"].has_identification


# ---------------------------------------------------------------- bad input: one line, naming it, nothing written

def _lfw_set(root: Path, pairs: bytes) -> Path:
    """``root``: ann (2 images), ben (2) as noise JPEGs, and pairs.txt with ``pairs`` as its bytes."""
    for n, name in enumerate(("ann", "ben")):
        for k in (1, 2):
            _noise(root / name / f"{name}_{k:04d}.jpg", seed=50 + 10 * n + k)
    (root / "pairs.txt").write_bytes(pairs)
    return root


GOOD = b"2 1\nann 1 2\nann 1 ben 1\nben 1 2\nann 2 ben 1\n"


def _corrupt(*names: str):
    def spoil(root: Path) -> None:
        for name in names:
            (root / name.split("_")[0] / f"{name}.jpg").write_bytes(b"\xff\xd8 not a jpeg")
    return spoil


@pytest.mark.parametrize("pairs,spoil,match", [
    (b"\xef\xbb\xbf" + GOOD, None, r"data\.benchmarks\[1\]\): .*pairs\.txt: starts with a UTF-8 byte-order mark"),
    (b"2 1\nann 1 2\nann 1 ben 1\nben 2 2\nann 2 ben 1\n", None,
     r"data\.benchmarks\[1\]\): .*pairs\.txt, line 4: pairs image ben 2 with itself"),
    (GOOD, _corrupt("ann_0001", "ann_0002", "ben_0001", "ben_0002"),
     r"data\.benchmarks\[1\]\): .*pairs\.txt: no usable pair \(4 of 4 images unusable\)"),
    (GOOD, _corrupt("ben_0001"), r"'lfw' \(data\.benchmarks\[1\]\): no usable pair of both kinds"),
    (b"1 2\nann 1 2\nben 1 2\nann 1 ben 1\nann 2 ben 2\n", None,
     r"'lfw' \(data\.benchmarks\[1\]\): its usable pairs lie in a single fold"),
], ids=["bom", "self-pair", "all-images-unusable", "genuine-only", "one-fold"])
def test_bad_lfw_set_fails_in_one_line_naming_it_and_writes_nothing(tmp_path, pairs, spoil, match):
    # Prepare
    root = _lfw_set(tmp_path / "lfw", pairs)
    if spoil is not None:
        spoil(root)
    params = _params(tmp_path, detect="never", benchmarks=[
        {"name": "heldout"}, {"name": "lfw", "format": "lfw_pairs", "path": str(root)}])

    # Execute
    with pytest.raises(DataError, match=match) as err:
        stage.run(params)

    # Assert
    assert "\n" not in str(err.value) and "benchmark set 'lfw'" in str(err.value)
    assert _outputs(tmp_path) == []


def test_missing_benchmark_folder_names_its_key_and_writes_nothing(tmp_path):
    params = _params(tmp_path, benchmarks=[
        {"name": "heldout"}, {"name": "orl", "format": "folder", "path": str(tmp_path / "absent")}])

    with pytest.raises(DataError, match=r"^'data\.benchmarks\[1\]\.path' = '.*absent': no such folder") as err:
        stage.run(params)

    assert "\n" not in str(err.value)
    assert _outputs(tmp_path) == []


def test_unknown_benchmark_format_lists_the_formats():
    with pytest.raises(ConfigError) as err:
        config.build(config.Params, {"data": {"benchmarks": [{"name": "x", "format": "csv", "path": "data/x"}]}})

    assert "'data.benchmarks[0].format' = 'csv'" in str(err.value)
    assert "'split', 'folder', 'lfw_pairs'" in str(err.value) and "\n" not in str(err.value)
