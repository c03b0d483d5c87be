"""``facebench``: the command-line entry point.

    facebench validate                          check params.yaml and print the resolved config
    facebench data                              run the data stage without its notebook
    facebench enroll --model M --db D --folder F  enrol one identity per sub-folder of F
    facebench identify --model M --db D --video V  identify the person in a face video
                                                (M: a checkpoint, or ``pretrained``: the converted FaceNet with
                                                thresholds from the data stage's validation pairs)
    facebench perf                              run the speed benchmarks, write reports/perf.json
    facebench preset tiny --out FILE            write params.yaml merged with a preset (whole DAG in minutes)
    facebench preset real --out FILE --train DIR --benchmark NAME=FORMAT:DIR
                                                the real-data preset with your training folder and benchmark sets
    facebench preset real_facenet --out FILE --train DIR --benchmark NAME=FORMAT:DIR
                                                the same, starting from the pretrained FaceNet (160 px box crops)

Every command takes ``--params`` (default params.yaml). Bad input exits with status 2 and a one-line
message naming what was wrong and what is allowed.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from benchmark import config
from benchmark.errors import ConfigError, DataError


def _validate(args: argparse.Namespace, params: config.Params) -> None:
    print(json.dumps(config.as_dict(params), indent=2))


def _data(args: argparse.Namespace, params: config.Params) -> None:
    from benchmark.data import stage

    print(json.dumps(stage.run(params).metrics, indent=2))


def _embedder(model_path: str, params: config.Params):
    """The model (a checkpoint, or ``pretrained``: the converted FaceNet with thresholds from the data stage's
    validation pairs) and its Embedder, cutting faces the way the model was trained."""
    from benchmark.data.dataset import data_geometry
    from benchmark.identify.pipeline import Embedder
    from benchmark.models.checkpoint import embed_images, load_model
    from benchmark.train.recipe import PRETRAINED_VARIANT, pretrained_variant

    model = pretrained_variant(params) if model_path == PRETRAINED_VARIANT else load_model(model_path)
    geometry = model.crop_geometry or data_geometry(params.data)
    return model, Embedder(lambda x: embed_images(model, x), model.embedding_dim, model.model_id, geometry)


def _enroll(args: argparse.Namespace, params: config.Params) -> None:
    import numpy as np

    from benchmark.data.folder import load_folder
    from benchmark.identify.database import IdentityDB

    _, embedder = _embedder(args.model, params)
    faces = load_folder(args.folder, embedder.geometry, detect=params.data.detect,
                        min_confidence=params.data.min_face_confidence)
    emb = embedder.embed(faces.images)
    db_path = Path(args.db)
    db = IdentityDB.open(db_path) if db_path.exists() else IdentityDB.create(db_path, embedder.embedding_dim, embedder.model_id)
    with db:
        people = [(name, emb[faces.labels == i], {"images": int((faces.labels == i).sum())}) for i, name in enumerate(faces.identities)]
        ids = db.enroll_many([p for p in people if len(p[1])], model_id=embedder.model_id)
        print(f"enrolled {len(ids)} identities from {int(np.sum([len(p[1]) for p in people]))} images into {db_path} ({len(db)} in all)")
    for u in faces.unusable:
        print(f"skipped {u.path}: {u.reason}")


def _identify(args: argparse.Namespace, params: config.Params) -> None:
    from benchmark.evaluation.calibration import threshold_for_far
    from benchmark.identify.database import IdentityDB
    from benchmark.identify.pipeline import identify_video
    from benchmark.identify.video import read_video

    model, embedder = _embedder(args.model, params)
    if args.threshold is not None:
        threshold, rule = args.threshold, "--threshold"
    elif "validation" in model.meta:
        threshold = threshold_for_far(model.meta["validation"], params.identify.far)
        rule = f"FAR {params.identify.far:g} on the model's validation pairs"
    else:
        raise DataError(f"{args.model}: the checkpoint has no validation thresholds (written by the training stages); "
                        "retrain it or pass --threshold")
    video = read_video(args.video, params.identify.every, params.identify.max_frames)
    with IdentityDB.open(args.db) as db:
        result = identify_video(video.frames, embedder, db, params.identify.quality, threshold=threshold)
    frame = int(video.frame_numbers[result["frame_index"]])
    second = result["runner_up"]
    runner_up = f"  runner-up: {second['identity']} {second['score']:.3f}" if second else ""
    print(f"identity: {result['identity']}  score: {result['score']:.3f}  threshold: {threshold:.3f} ({rule})  "
          f"frame: {frame}{runner_up}")


def _perf(args: argparse.Namespace, params: config.Params) -> None:
    from benchmark import perf

    print(json.dumps(perf.run(params), indent=2))


def _preset(args: argparse.Namespace, params: config.Params) -> None:
    import yaml

    from benchmark import io, presets

    base = yaml.safe_load(Path(args.params).read_text()) or {}
    extra: dict = {"data": {}}
    if args.train:
        extra["data"]["path"] = args.train
    if args.benchmark:
        listed = presets.merge(base, presets.load(args.name)).get("data", {}).get("benchmarks", [])
        extra["data"]["benchmarks"] = [*listed, *(benchmark_entry(text) for text in args.benchmark)]
    merged = presets.apply(base, args.name, extra)
    with io.atomic_path(args.out) as tmp:
        tmp.write_text(yaml.safe_dump(merged, sort_keys=False))
    print(f"wrote {args.out}: {args.params} with preset '{args.name}'")


def benchmark_entry(text: str) -> dict:
    """``NAME=FORMAT:PATH[:PAIRS_FILE]`` -> a ``data.benchmarks`` entry; ConfigError naming the text otherwise."""
    name, _, rest = text.partition("=")
    fmt, _, location = rest.partition(":")
    path, _, pairs_file = location.partition(":")
    if not (name and fmt and path) or fmt not in config.BENCHMARK_FORMATS or fmt == "split":
        raise ConfigError(f"--benchmark {text!r}: expected NAME=FORMAT:PATH with FORMAT folder or lfw_pairs "
                          "(lfw_pairs may add :PAIRS_FILE, default pairs.txt), e.g. orl=folder:data/orl")
    entry = {"name": name, "format": fmt, "path": path}
    if pairs_file:
        entry["pairs_file"] = pairs_file
    return entry


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="facebench", description="Reproducible face-recognition benchmark")
    sub = parser.add_subparsers(dest="command", required=True)
    commands = {}
    for name, func, help_text in (
        ("validate", _validate, "check params.yaml and print the resolved config"),
        ("data", _data, "run the data stage without its notebook"),
        ("enroll", _enroll, "enrol one identity per sub-folder of a folder of face images"),
        ("identify", _identify, "identify the person in a face video"),
        ("perf", _perf, "run the speed benchmarks and write reports/perf.json"),
        ("preset", _preset, "write params.yaml merged with a named preset"),
    ):
        cmd = sub.add_parser(name, help=help_text)
        cmd.add_argument("--params", default="params.yaml", help="path to params.yaml (default: %(default)s)")
        commands[name] = (func, cmd)
    for name in ("enroll", "identify"):
        cmd = commands[name][1]
        cmd.add_argument("--model", default="artifacts/models/semisupervised.pt",
                         help="model checkpoint, or 'pretrained' for the converted FaceNet (default: %(default)s)")
        cmd.add_argument("--db", default=None, help="identity database (default: identify.database in params.yaml)")
    commands["enroll"][1].add_argument("--folder", required=True, help="one sub-folder of face images per person")
    commands["identify"][1].add_argument("--video", required=True, help="face video file (mp4, avi, ...)")
    commands["identify"][1].add_argument("--threshold", type=float, default=None,
                                         help="open-set cosine threshold (default: the model's threshold at identify.far on its validation pairs)")
    commands["preset"][1].add_argument("name", help="preset name, e.g. tiny (benchmark/presets/)")
    commands["preset"][1].add_argument("--out", required=True, help="file to write, e.g. params.yaml")
    commands["preset"][1].add_argument("--train", default=None, help="training folder (data.path), one sub-folder per identity")
    commands["preset"][1].add_argument("--benchmark", action="append", default=[], metavar="NAME=FORMAT:PATH",
                                       help="add a benchmark set after the preset's (FORMAT folder or lfw_pairs; "
                                            "lfw_pairs may add :PAIRS_FILE); repeatable")
    args = parser.parse_args(argv)
    try:
        params = config.load(args.params)
        if getattr(args, "db", "") is None:
            args.db = params.identify.database
        commands[args.command][0](args, params)
    except (ConfigError, DataError, FileNotFoundError) as err:
        print(f"facebench {args.command}: error: {err}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
