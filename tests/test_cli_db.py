"""The enroll / identify / db commands on real checkpoints and real databases: model identity, the stored open-set
threshold, the operator's commands, and one-line errors with status 2 for every bad input."""

import argparse
import json
import zipfile

import cv2
import numpy as np
import pytest
import torch

from benchmark import cli
from benchmark.data.synthetic import generate
from benchmark.evaluation.calibration import threshold_for_far
from benchmark.identify.database import IdentityDB
from benchmark.models.checkpoint import embed_images, load_model, save_model
from benchmark.models.face_model import build_face_model
from benchmark.train.common import ValPairs
from benchmark.train.recipe import validation_meta

SIZE = 32
PARAMS = ("data:\n  image_size: 32\n  detect: never\nidentify:\n  far: 0.1\n  quality:\n    assume_cropped: true\n"
          "    min_sharpness: 0.0\n    min_symmetry: 0.0\n")


def write_people(folder, faces, labels, first=0, count=2):
    """``folder/person<label>/<k>.png``: images ``first`` .. ``first + count`` of each label."""
    for label in labels:
        (folder / f"person{label}").mkdir(parents=True, exist_ok=True)
        for k, index in enumerate(np.flatnonzero(faces.labels == label)[first:first + count]):
            cv2.imwrite(str(folder / f"person{label}" / f"{k}.png"), faces.images[index][..., ::-1])


@pytest.fixture(scope="module")
def kit(tmp_path_factory):
    """Two checkpoints of one architecture (seeds 0 and 1) with validation scores, a folder of three people
    (photos 0-1), another of the same three (photos 2-3), a still photo of person1 and a params file."""
    root = tmp_path_factory.mktemp("cli_db")
    faces, _ = generate(0, 6, 4, SIZE, difficulty=0.3, progress=False)
    write_people(root / "people", faces, (0, 1, 2))
    write_people(root / "later", faces, (0, 1, 2), first=2)
    val = np.flatnonzero(faces.labels >= 3)
    pairs = np.array([(i, j) for i in range(len(val)) for j in range(i + 1, len(val))])
    is_same = (faces.labels[val][pairs[:, 0]] == faces.labels[val][pairs[:, 1]]).astype(int)
    for seed in (0, 1):
        model = build_face_model("ae_encoder", seed=seed, embedding_dim=16, input_size=SIZE, image_size=SIZE,
                                 channels=(4, 8, 8))
        save_model(model, root / f"m{seed}.pt", {"validation": validation_meta(model, ValPairs(faces.images[val], pairs, is_same))})
    cv2.imwrite(str(root / "still.png"), faces.images[np.flatnonzero(faces.labels == 1)[3]][..., ::-1])
    (root / "params.yaml").write_text(PARAMS)
    return root, faces


def run(kit, tmp_path, capsys, *argv, model="m0.pt"):
    """``facebench argv`` with the kit's params and ``model`` on ``tmp_path/ids.sqlite``: (status, out, err)."""
    root, _ = kit
    code = cli.main([*argv, "--params", str(root / "params.yaml"), "--model", str(root / model),
                     "--db", str(tmp_path / "ids.sqlite")])
    out, err = capsys.readouterr()
    return code, out, err


def one_line(err: str) -> str:
    assert err.count("\n") == 1 and err.startswith("facebench ") and "Traceback" not in err, err
    assert "weights_only" not in err, err
    return err


def test_a_model_with_other_weights_is_refused_naming_both(kit, tmp_path, capsys):
    # Prepare: the database is enrolled with m0; m1 has the same architecture string, other weights
    root, _ = kit
    assert run(kit, tmp_path, capsys, "enroll", "--folder", str(root / "people"))[0] == 0
    with IdentityDB.open(tmp_path / "ids.sqlite") as db:
        stored = db.model_id
    # Execute
    identify = run(kit, tmp_path, capsys, "identify", "--image", str(root / "still.png"), model="m1.pt")
    enroll = run(kit, tmp_path, capsys, "enroll", "--folder", str(root / "later"), "--skip-existing", model="m1.pt")
    # Assert
    other = load_model(root / "m1.pt").model_id
    assert stored.startswith(other + " weights sha256:")  # same architecture: only the weights tell them apart
    for code, _, err in (identify, enroll):
        assert code == 2 and "model mismatch" in one_line(err)
        assert stored in err and err.count(other + " weights sha256:") == 2
    with IdentityDB.open(tmp_path / "ids.sqlite") as db:
        assert len(db) == 3


def test_identify_uses_the_threshold_stored_at_identify_far_unless_overridden(kit, tmp_path, capsys):
    # Prepare
    root, _ = kit
    validation = load_model(root / "m0.pt").meta["validation"]
    at_far, at_half = threshold_for_far(validation, 0.1), threshold_for_far(validation, 0.5)
    code, out, _ = run(kit, tmp_path, capsys, "enroll", "--folder", str(root / "people"))
    still = ("identify", "--image", str(root / "still.png"))
    # Execute
    stored = run(kit, tmp_path, capsys, *still)
    by_far = run(kit, tmp_path, capsys, *still, "--far", "0.5")
    by_value = run(kit, tmp_path, capsys, *still, "--threshold", "-1")
    # Assert
    with IdentityDB.open(tmp_path / "ids.sqlite") as db:
        assert (db.threshold, db.far) == (pytest.approx(at_far), 0.1)
    assert code == 0 and f"open-set threshold {at_far:.4f} (FAR 0.1 on the model's validation pairs)" in out
    assert f"threshold: {at_far:.3f} (FAR 0.1 on the model's validation pairs, stored with the database)" in stored[1]
    assert f"threshold: {at_half:.3f} (--far 0.5 on the model's validation pairs)" in by_far[1]
    assert "threshold: -1.000 (--threshold)" in by_value[1] and "identity: person" in by_value[1]
    for bad in ("nan", "-5", "1.5", "inf"):
        code, _, err = run(kit, tmp_path, capsys, *still, "--threshold", bad)
        assert code == 2 and "a finite number in [-1, 1]" in one_line(err)
    code, _, err = run(kit, tmp_path, capsys, *still, "--far", "0")
    assert code == 2 and "--far 0.0: a false accept rate must be a number in (0, 1]" in one_line(err)


def test_operator_commands_print_what_they_changed(kit, tmp_path, capsys):
    # Prepare: person0 and person1 enrolled; the later folder holds them and person2
    root, faces = kit
    folder = tmp_path / "two"
    write_people(folder, faces, (0, 1))
    assert run(kit, tmp_path, capsys, "enroll", "--folder", str(folder))[0] == 0
    # Execute
    refused = run(kit, tmp_path, capsys, "enroll", "--folder", str(root / "later"))
    skipping = run(kit, tmp_path, capsys, "enroll", "--folder", str(root / "later"), "--skip-existing")
    listed = run(kit, tmp_path, capsys, "db", "list")
    shown = run(kit, tmp_path, capsys, "db", "show", "person2")
    removed = run(kit, tmp_path, capsys, "db", "remove", "person0")
    updated = run(kit, tmp_path, capsys, "db", "update", "person1", "--folder", str(root / "later"))
    missing = run(kit, tmp_path, capsys, "db", "show", "person0")
    # Assert
    assert refused[0] == 2 and "identity 'person0' is already enrolled (id 1)" in one_line(refused[2])
    assert skipping[0] == 0
    assert "skipped person0: already enrolled" in skipping[1] and "skipped person1: already enrolled" in skipping[1]
    assert "enrolled person2 (id 3, 2 images)" in skipping[1] and "enrolled 1 identities from 2 images" in skipping[1]
    assert [line.split("\t")[:2] for line in listed[1].splitlines()[:3]] == [["1", "person0"], ["2", "person1"],
                                                                            ["3", "person2"]]
    assert json.loads(shown[1])["name"] == "person2" and json.loads(shown[1])["n_embeddings"] == 2
    assert "removed person0 (id 1)" in removed[1] and "(2 left)" in removed[1]
    assert "updated person1 (id 2)" in updated[1] and "template from 2 images" in updated[1]
    assert missing[0] == 2 and "no identity with name 'person0'" in one_line(missing[2])
    model = load_model(root / "m0.pt")
    later = np.stack([cv2.imread(str(p))[..., ::-1] for p in sorted((root / "later/person1").glob("*.png"))])
    new_template = embed_images(model, later).mean(axis=0)
    with IdentityDB.open(tmp_path / "ids.sqlite") as db:
        best = db.search(new_template, model_id=db.model_id)[0]
    assert (best.name, best.id) == ("person1", 2) and best.score == pytest.approx(1.0, abs=1e-5)


def test_a_checkpoint_built_for_another_image_size_cuts_its_own_crops(kit, tmp_path, capsys):
    # Prepare: a 64 px model saved without input_size (its backbone's image_size says 64); params say 32 px
    root, _ = kit
    model = build_face_model("ae_encoder", seed=0, embedding_dim=16, image_size=64, channels=(4, 8, 8))
    save_model(model, tmp_path / "m64.pt")
    # Execute
    code, out, err = run(kit, tmp_path, capsys, "enroll", "--folder", str(root / "people"), model=str(tmp_path / "m64.pt"))
    mixed = run(kit, tmp_path, capsys, "enroll", "--folder", str(root / "later"), "--skip-existing")
    # Assert
    assert code == 0 and "enrolled 3 identities" in out and "no open-set threshold stored" in out
    with IdentityDB.open(tmp_path / "ids.sqlite") as db:
        assert db.model_id.endswith("crops arcface 64px")
    assert mixed[0] == 2 and "crops arcface 64px" in one_line(mixed[2]) and "crops arcface 32px" in mixed[2]


def not_checkpoints(folder):
    """Files a user might pass as --model: none is a checkpoint."""
    (folder / "text.pt").write_text("not a checkpoint")
    (folder / "empty.pt").write_bytes(b"")
    (folder / "noise.pt").write_bytes(np.random.default_rng(0).integers(0, 256, 4096, dtype=np.uint8).tobytes())
    with zipfile.ZipFile(folder / "zip.pt", "w") as z:
        z.writestr("readme.txt", "hello")
    torch.save(argparse.Namespace(weights=1), folder / "pickled.pt")  # weights_only refuses it, advising False
    torch.save({"weights": torch.zeros(2)}, folder / "tensors.pt")
    return sorted(folder.glob("*.pt"))


def test_a_file_that_is_not_a_checkpoint_is_a_one_line_error(kit, tmp_path, capsys):
    # Prepare
    root, _ = kit
    for path in not_checkpoints(tmp_path):
        # Execute
        code, _, err = run(kit, tmp_path, capsys, "enroll", "--folder", str(root / "people"), model=str(path))
        # Assert
        assert code == 2 and f"'{path}' is not a facebench model checkpoint" in one_line(err)
        assert "expected a file written by a training stage" in err
    assert not (tmp_path / "ids.sqlite").exists()


@pytest.mark.parametrize(("content", "fragments"), [
    (b"data:\n  image_size: [32\n", ["line 3", "write 'key: value' mappings"]),
    (b"data:\n\timage_size: 32\n", ["line 2, column 1", "a tab", "indent with spaces, never tabs"]),
    (b"data:\n  path: caf\xe9\n", ["line 2: byte 0xe9 is not UTF-8", "UTF-8 text"]),
    (b"seed: 1\ndata:\n  image_size: 32\nseed: 2\n", ["line 4", "key 'seed' is given twice (first on line 1)"]),
    (b"supervised:\n  backbone: resnet81\n", ["'supervised.backbone' = 'resnet81'", "did you mean 'resnet18'"]),
    (b"federated:\n  head: arcfase\n", ["'federated.head' = 'arcfase'", "did you mean 'arcface'"]),
    (b"evaluate:\n  variants: [supervised, semisupervized]\n", ["'semisupervized'", "did you mean 'semisupervised'"]),
    (b"evaluate:\n  robustness:\n    attacks: [pgd_lin]\n", ["'pgd_lin'", "did you mean 'pgd_linf'"]),
    (b"federated:\n  aggregation: fedavgg\n", ["'fedavgg'", "did you mean 'fedavg'"]),
    (b"supervised:\n  init: facenet\n", ["'supervised.init' = 'facenet'", "did you mean 'facenet_casia'"]),
])
def test_a_bad_params_file_is_a_one_line_error_naming_file_and_line(tmp_path, capsys, content, fragments):
    # Prepare
    path = tmp_path / "params.yaml"
    path.write_bytes(content)
    # Execute
    code = cli.main(["validate", "--params", str(path)])
    # Assert
    err = one_line(capsys.readouterr().err)
    assert code == 2
    for fragment in fragments:
        assert fragment in err
    if "line" in fragments[0]:
        assert str(path) in err
