"""``facebench``: the command-line entry point.

    facebench validate                          check params.yaml and print the resolved config
    facebench data                              run the data stage without its notebook
    facebench train STAGE                       run a training stage without its notebook; under
                                                ``torchrun --nproc_per_node N --no-python facebench train STAGE``
                                                data-parallel over N processes (DDP), process 0 writes
    facebench enroll --model M --db D --folder F [--skip-existing]
                                                enrol one identity per sub-folder of F (a name already enrolled is
                                                an error, or skipped with --skip-existing)
    facebench identify --model M --db D (--video V | --image I) [--threshold T | --far F]
                                                identify the person in a face video or a still photo
                                                (M: a checkpoint, or ``pretrained``: the converted FaceNet with
                                                thresholds from the data stage's validation pairs)
    facebench db list | show NAME | remove NAME | update NAME --folder F --model M  [--db D]
                                                the enrolled people: list them, show one, remove one, or replace
                                                one's template from F/NAME in one transaction
    facebench perf                              run the speed benchmarks, write reports/perf.json
    facebench gate-sweep [--thresholds T,..] [--switches S,..] [--out FILE]
                                                train the gated stage over thresholds, natural_then_at over switch
                                                points, PGD-AT and TRADES on validation pairs; write their cost and
                                                worst-case robustness and each knob's choice (``make gate-sweep``)
    facebench fl-deploy [--modes M,..] [--timeout S] [--out FILE]
                                                run the federation in Flower's deployment mode (a SuperLink and one
                                                SuperNode process per institution, TLS, authenticated nodes), once
                                                per mode; write each round's wall time and the bytes its links
                                                carried (``make fl-deploy``)
    facebench label-study [--fractions F,..] [--seeds S,..] [--out FILE] [--fresh]
                                                train supervised-only and semi-supervised per label fraction and
                                                seed on the data stage's training source; add each run as it ends
                                                to the init's study in FILE (same data and params, else an error
                                                unless --fresh; runs it holds are not redone) and write the paired
                                                test per fraction
                                                (``make label-study``)
    facebench seeds                             collect the runs over training seeds (``make seeds``: DVC
                                                experiments) into reports/metrics/seeds.json
    facebench preset tiny --out FILE            write params.yaml merged with a preset (whole DAG in minutes)
    facebench preset real --out FILE --train DIR --benchmark NAME=FORMAT:DIR
                                                the real-data preset with your training folder and benchmark sets
    facebench preset real_facenet --out FILE --train DIR --benchmark NAME=FORMAT:DIR
                                                the same, starting from the pretrained FaceNet (160 px box crops)
    facebench notebook IN OUT [-p NAME VALUE]   run a pipeline notebook (what every DVC stage does) with the
                                                params.yaml sections it declares, VALUE read as YAML

Every command takes ``--params`` (default params.yaml). Bad input (a params file that is not valid YAML,
a file that is not a checkpoint, a locked or foreign database, ...) exits with status 2 and a one-line message
naming the file, what was wrong and what is allowed; commands that change a database print what they changed.
"""

from __future__ import annotations

import argparse
import json
import sys

import yaml

from benchmark import config
from benchmark.errors import ConfigError, DataError


def _validate(args: argparse.Namespace, params: config.Params) -> None:
    print(json.dumps(config.as_dict(params), indent=2))


def _data(args: argparse.Namespace, params: config.Params) -> None:
    from benchmark.data import stage

    print(json.dumps(stage.run(params).metrics, indent=2))


def _train(args: argparse.Namespace, params: config.Params) -> None:
    from benchmark.device import resolve
    from benchmark.train import distributed, stage

    if args.stage not in stage.STAGES:
        raise ConfigError(f"unknown training stage '{args.stage}'; choose one of: {', '.join(stage.STAGES)}")
    distributed.start(resolve(params.device))
    try:
        result = stage.run(args.stage, params)
        main = distributed.is_main()
    finally:
        distributed.stop()
    if main:
        print(json.dumps(result.metrics, indent=2))


def _embedder(model_path: str, params: config.Params):
    """The model (a checkpoint, or ``pretrained``: the converted FaceNet with thresholds from the data stage's
    validation pairs) and its Embedder, cutting faces the way the model was trained; the Embedder's ``model_id``
    names the architecture, the weights and the crops (:func:`~benchmark.models.checkpoint.model_identity`)."""
    from benchmark.data.dataset import data_geometry
    from benchmark.device import resolve
    from benchmark.identify.pipeline import Embedder
    from benchmark.models.checkpoint import embed_images, load_model, model_identity
    from benchmark.train.recipe import PRETRAINED_VARIANT, pretrained_variant

    device = resolve(params.device)
    if model_path == PRETRAINED_VARIANT:
        model = pretrained_variant(params, device)
    else:
        model = load_model(model_path).to(device)
    geometry = model.crop_geometry or data_geometry(params.data)
    return model, Embedder(lambda x: embed_images(model, x), model.embedding_dim, model_identity(model, geometry),
                           geometry)


def _validation_threshold(model, model_path: str, far: float) -> float:
    """The model's threshold at ``far`` on its validation pairs; DataError when the checkpoint has none."""
    from benchmark.evaluation.calibration import threshold_for_far

    if "validation" not in model.meta:
        raise DataError(f"{model_path}: the checkpoint has no validation scores (written by the training stages), "
                        "so no threshold at a FAR can be chosen; retrain it or pass --threshold")
    return threshold_for_far(model.meta["validation"], far)


def _people(folder: str, embedder, params: config.Params) -> tuple[list, object]:
    """(name, embeddings, metadata) of every person in ``folder`` (one sub-folder each) and the loaded FaceSet."""
    from benchmark.data.folder import load_folder
    from benchmark.data.stage import detect_workers

    faces = load_folder(folder, embedder.geometry, detect=params.data.detect,
                        min_confidence=params.data.min_face_confidence,
                        workers=detect_workers(params.data.detect_workers))
    emb = embedder.embed(faces.images)
    people = [(name, emb[faces.labels == i], {"images": int((faces.labels == i).sum())})
              for i, name in enumerate(faces.identities)]
    return [p for p in people if len(p[1])], faces


def _enroll(args: argparse.Namespace, params: config.Params) -> None:
    from benchmark.identify.database import IdentityDB

    model, embedder = _embedder(args.model, params)
    far = params.identify.far
    operating = ({"threshold": _validation_threshold(model, args.model, far), "far": far}
                 if "validation" in model.meta else {})
    people, faces = _people(args.folder, embedder, params)
    with IdentityDB.open_or_create(args.db, embedder.embedding_dim, embedder.model_id, **operating) as db:
        ids = db.enroll_many(people, model_id=embedder.model_id, skip_existing=args.skip_existing)
        total, threshold, stored_far = len(db), db.threshold, db.far
    for (name, emb, _), new_id in zip(people, ids):
        print(f"skipped {name}: already enrolled" if new_id is None else f"enrolled {name} (id {new_id}, {len(emb)} images)")
    added = [p for p, i in zip(people, ids) if i is not None]
    rule = (f"open-set threshold {threshold:.4f} (FAR {stored_far:g} on the model's validation pairs)"
            if threshold is not None else "no open-set threshold stored (identify needs --threshold)")
    print(f"enrolled {len(added)} identities from {sum(len(p[1]) for p in added)} images into {args.db} "
          f"({total} in all); {rule}")
    for u in faces.unusable:
        print(f"skipped {u.path}: {u.reason}")


def _threshold(args: argparse.Namespace, params: config.Params, model, db) -> tuple[float, str]:
    """The open-set threshold and the rule it came from: ``--threshold``, else ``--far`` on the model's validation
    pairs, else the one stored with the database, else ``identify.far`` on the model's validation pairs."""
    if args.threshold is not None:
        if not -1.0 <= args.threshold <= 1.0:  # also refuses nan
            raise ConfigError(f"--threshold {args.threshold}: a cosine threshold must be a finite number in [-1, 1]")
        return args.threshold, "--threshold"
    if args.far is not None:
        if not 0.0 < args.far <= 1.0:
            raise ConfigError(f"--far {args.far}: a false accept rate must be a number in (0, 1]")
        return _validation_threshold(model, args.model, args.far), f"--far {args.far:g} on the model's validation pairs"
    if db.threshold is not None:
        return db.threshold, f"FAR {db.far:g} on the model's validation pairs, stored with the database"
    far = params.identify.far
    return (_validation_threshold(model, args.model, far),
            f"identify.far {far:g} on the model's validation pairs; the database stores no threshold")


def _identify(args: argparse.Namespace, params: config.Params) -> None:
    from benchmark.data.images import read_image
    from benchmark.identify.database import IdentityDB
    from benchmark.identify.pipeline import identify_video
    from benchmark.identify.video import read_video

    model, embedder = _embedder(args.model, params)
    if args.video:
        video = read_video(args.video, params.identify.every, params.identify.max_frames)
        frames, numbers = video.frames, video.frame_numbers
    else:
        frames, numbers = read_image(args.image)[None], [0]
    with IdentityDB.open(args.db) as db:
        threshold, rule = _threshold(args, params, model, db)
        result = identify_video(frames, embedder, db, params.identify.quality, threshold=threshold)
    where = f"  frame: {int(numbers[result['frame_index']])}" if args.video else ""
    second = result["runner_up"]
    runner_up = f"  runner-up: {second['identity']} {second['score']:.3f}" if second else ""
    print(f"identity: {result['identity']}  score: {result['score']:.3f}  threshold: {threshold:.3f} ({rule})"
          f"{where}{runner_up}")


def _db(args: argparse.Namespace, params: config.Params) -> None:
    from benchmark.identify.database import IdentityDB, IdentityDBError

    with IdentityDB.open(args.db) as db:
        if args.action == "list":
            for r in db.records():
                print(f"{r['id']}\t{r['name']}\t{r['n_embeddings']} images\tenrolled {r['enrolled_at']}")
            rule = f"threshold {db.threshold:.4f} at FAR {db.far:g}" if db.threshold is not None else "no threshold"
            print(f"{len(db)} identities in {args.db}; model {db.model_id}; {rule}")
            return
        if not args.name:
            raise ConfigError(f"facebench db {args.action} needs the NAME of an enrolled person")
        if args.action == "show":
            found = db.records(args.name)
            if not found:
                raise IdentityDBError(f"{args.db}: no identity with name {args.name!r} ({len(db)} enrolled)")
            print(json.dumps(found[0], indent=2))
        elif args.action == "remove":
            print(f"removed {args.name} (id {db.remove(args.name)}) from {args.db} ({len(db)} left)")
        else:
            _update(args, params, db)


def _update(args: argparse.Namespace, params: config.Params, db) -> None:
    """``db update NAME --folder F --model M``: replace NAME's template by the embeddings of ``F/NAME``."""
    if not args.folder:
        raise ConfigError("facebench db update needs --folder F, a folder with a sub-folder of photos per person "
                          "(as enroll reads); NAME's sub-folder replaces its template")
    _, embedder = _embedder(args.model, params)
    people, _ = _people(args.folder, embedder, params)
    mine = [p for p in people if p[0] == args.name]
    if not mine:
        raise DataError(f"{args.folder}: no usable photos in a sub-folder named {args.name!r}; "
                        f"found: {', '.join(p[0] for p in people)}")
    name, emb, metadata = mine[0]
    identity = db.update(name, emb, model_id=embedder.model_id, metadata=metadata)
    print(f"updated {name} (id {identity}) in {args.db}: template from {len(emb)} images")


def _perf(args: argparse.Namespace, params: config.Params) -> None:
    from benchmark import perf

    print(json.dumps(perf.run(params), indent=2))


def _seeds(args: argparse.Namespace, params: config.Params) -> None:
    from pathlib import Path

    from benchmark import io
    from benchmark.report.experiments import exp_show_json, runs, seed_table

    table = seed_table(list(runs(exp_show_json())))
    out = Path(params.paths.reports) / "metrics" / "seeds.json"
    io.write_json(out, table)
    print(f"wrote {out}: {len(table['seeds'])} seeds ({', '.join(map(str, table['seeds']))}) on {table['benchmark']}")


def _gate_sweep(args: argparse.Namespace, params: config.Params) -> None:
    import tempfile
    from pathlib import Path

    from benchmark import io
    from benchmark.report.pareto import ADVERSARIAL_VARIANTS, choose, stage_row
    from benchmark.train import stage

    thresholds, switches = _floats("--thresholds", args.thresholds), _floats("--switches", args.switches)
    if not thresholds or not switches or not all(t > 0 for t in thresholds) or not all(0 <= s < 1 for s in switches):
        raise ConfigError(f"--thresholds {args.thresholds!r} / --switches {args.switches!r}: thresholds must be losses "
                          "> 0 and switches shares in [0, 1), at least one of each")
    manifest = _manifest(params)
    with tempfile.TemporaryDirectory(prefix="gate-sweep-") as work:
        runs = stage.gate_sweep(params, thresholds, switches, Path(work))
    rows = [stage_row(name, metrics, params.seed, "sweep") for name, metrics in runs]
    sweep = {
        "command": _command("gate-sweep"),
        "params": {"seed": params.seed, **{v: config.as_dict(getattr(params, v)) for v in ADVERSARIAL_VARIANTS}},
        "data_hashes": {k: manifest["hashes"][k] for k in ("faces_sha256", "protocol_sha256")},
        "rows": rows,
        "choice": {v: choose(rows, v) for v in ("adversarial", "natural_then_at")},
    }
    io.write_json(Path(args.out or params.paths.gate_sweep), sweep)
    for choice in sweep["choice"].values():
        current = getattr(getattr(params, choice["variant"]), choice["knob"])
        print(f"{choice['variant']}.{choice['knob']}: chosen {choice['chosen']} (params.yaml has {current}; best score "
              f"{choice['best_score']:.3f} at {choice['best']}, half-width {choice['halfwidth']:.3f})")
    print(f"wrote {args.out or params.paths.gate_sweep}: {len(rows)} runs")


def _label_study(args: argparse.Namespace, params: config.Params) -> None:
    import datetime
    import tempfile
    from pathlib import Path

    from benchmark import io
    from benchmark.report.label_study import loaded_run, merged_runs, stored_run, study_table
    from benchmark.train import stage

    fractions, seeds = _floats("--fractions", args.fractions), _floats("--seeds", args.seeds)
    if not fractions or not all(0 < f <= 1 for f in fractions) or not seeds or not all(s == int(s) >= 0 for s in seeds):
        raise ConfigError(f"--fractions {args.fractions!r} / --seeds {args.seeds!r}: fractions must be shares in (0, 1] "
                          "and seeds whole numbers >= 0, at least one of each")
    manifest, init = _manifest(params), params.semisupervised.init
    basis = json.loads(json.dumps({
        "data": {"source": manifest["source"], "counts": manifest["counts"],
                 "geometry": manifest["preparation"]["geometry"], "hashes": manifest["hashes"]},
        "params": {"supervised": config.as_dict(params.supervised),
                   "semisupervised": config.as_dict(params.semisupervised)}}))
    out = Path(args.out or params.paths.label_study)
    study = json.loads(out.read_text()) if out.is_file() else {}
    kept = None if args.fresh else study.get(init)
    if kept is not None:
        differs = [k for k in basis if kept.get(k) != basis[k]] + ([] if "runs" in kept else ["runs (none kept)"])
        if differs:
            raise ConfigError(f"{out}: its {init!r} study differs from this one in {', '.join(differs)}; pass --fresh "
                              "to replace it, or --out another file")
    runs = [loaded_run(r) for r in kept["runs"]] if kept else []
    kept_runs = frozenset((r["seed"], r["fraction"], r["stage"]) for r in runs)
    with tempfile.TemporaryDirectory(prefix="label-study-") as work:
        for run in stage.label_study(params, fractions, [int(s) for s in seeds], Path(work), kept_runs):
            runs = merged_runs(runs, [run])
            every = {key: ",".join(f"{v:g}" for v in sorted({r[key] for r in runs})) for key in ("fraction", "seed")}
            command = (f"facebench label-study --params {args.params} --fractions {every['fraction']} "
                       f"--seeds {every['seed']}" + (f" --out {args.out}" if args.out else ""))
            study[init] = {"command": command, "date": datetime.date.today().isoformat(), **basis,
                           "fractions": study_table(runs).get(init, {}), "runs": [stored_run(r) for r in runs]}
            io.write_json(out, study)
    for fraction, row in study[init]["fractions"].items():
        print(f"{init}, label fraction {fraction}: supervised {row['supervised']:.4f}, semi-supervised "
              f"{row['semisupervised']:.4f}, difference {row['difference']:+.4f} [{row['ci'][0]:+.4f}, "
              f"{row['ci'][1]:+.4f}], p = {row['p_value']:.3g} over seeds {row['seeds']}: {row['verdict']}")
    print(f"wrote {out}: {init}, {len(runs)} runs")


def _fl_deploy(args: argparse.Namespace, params: config.Params) -> None:
    import datetime
    import os
    import tempfile
    from pathlib import Path

    from benchmark import io
    from benchmark.federated.deployment import measure

    modes, allowed = [m for m in args.modes.split(",") if m], ("third_party", "blind", "plaintext")
    if not modes or any(m not in allowed for m in modes) or args.timeout <= 0:
        raise ConfigError(f"--modes {args.modes!r} / --timeout {args.timeout}: modes must be some of {', '.join(allowed)} "
                          "separated by commas, the timeout a positive number of seconds")
    manifest = _manifest(params)
    with tempfile.TemporaryDirectory(prefix="fl-deploy-") as work:
        result = measure(Path(args.params).resolve(), params, modes, Path(work), args.timeout)
    out = Path(args.out or params.paths.federated_deployment)
    io.write_json(out, {"command": _command("fl-deploy"), "date": datetime.date.today().isoformat(),
                        "machine": {"cpus": os.cpu_count()}, "data_hashes": manifest["hashes"],
                        "federated": config.as_dict(params.federated), "modes": result})
    print(f"wrote {out}: {', '.join(result)}")


def _fl_sweep(args: argparse.Namespace, params: config.Params) -> None:
    import datetime
    import tempfile
    from pathlib import Path

    from benchmark import io
    from benchmark.federated.sweep import momentum_sweep

    momenta = _floats("--momenta", args.momenta)
    if not momenta or not all(0 <= m < 1 for m in momenta):
        raise ConfigError(f"--momenta {args.momenta!r}: server momenta must be in [0, 1), at least one")
    manifest = _manifest(params)
    with tempfile.TemporaryDirectory(prefix="fl-sweep-") as work:
        result = momentum_sweep(params, momenta, Path(work))
    io.write_json(Path(args.out), {"command": _command("fl-sweep"), "date": datetime.date.today().isoformat(),
                                   "data_hashes": {k: manifest["hashes"][k] for k in ("faces_sha256", "protocol_sha256")},
                                   "federated": config.as_dict(params.federated), **result})
    print(f"federated.server_momentum: chosen {result['choice']:g} on {result['val_pairs']} validation pairs "
          f"(params.yaml has {params.federated.server_momentum:g}); wrote {args.out}")


def _manifest(params: config.Params) -> dict:
    from pathlib import Path

    path = Path(params.paths.artifacts) / "data" / "manifest.json"
    if not path.is_file():
        raise DataError(f"no data manifest at {path}: run the data stage first (facebench data, or make repro)")
    return json.loads(path.read_text())


def _command(name: str) -> str:
    """The command line as typed (``facebench NAME ...``) when this process runs it, else ``facebench NAME``."""
    return " ".join(["facebench", *sys.argv[1:]]) if sys.argv[1:2] == [name] else f"facebench {name}"


def _floats(option: str, text: str) -> list[float]:
    try:
        return [float(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise ConfigError(f"{option} {text!r}: expected numbers separated by commas, e.g. 2,4,6") from None


def _notebook(args: argparse.Namespace, params: config.Params) -> None:
    from benchmark import notebook

    overrides = {name: yaml.load(value, Loader=config.ParamsLoader) for name, value in args.p}
    notebook.run(args.notebook, args.output, config.read_yaml(args.params) or {}, overrides)


def _preset(args: argparse.Namespace, params: config.Params) -> None:
    import yaml

    from benchmark import io, presets

    base = config.read_yaml(args.params) or {}
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
        ("train", _train, "run a training stage without its notebook; data-parallel when launched by torchrun"),
        ("enroll", _enroll, "enrol one identity per sub-folder of a folder of face images"),
        ("identify", _identify, "identify the person in a face video or a still photo"),
        ("db", _db, "list, show, remove or update the people enrolled in an identity database"),
        ("perf", _perf, "run the speed benchmarks and write reports/perf.json"),
        ("gate-sweep", _gate_sweep, "place the gate's thresholds against natural_then_at, PGD-AT and TRADES on validation pairs"),
        ("fl-sweep", _fl_sweep, "choose the federation's server momentum on validation pairs (plaintext FedAvg, centralized)"),
        ("fl-deploy", _fl_deploy, "the federation as a SuperLink and SuperNode processes: round wall time, bytes on the wire"),
        ("label-study", _label_study, "supervised-only vs semi-supervised per label fraction and seed, paired tests"),
        ("seeds", _seeds, "collect the runs over training seeds (make seeds) into reports/metrics/seeds.json"),
        ("preset", _preset, "write params.yaml merged with a named preset"),
        ("notebook", _notebook, "run a pipeline notebook with the params.yaml values it declares"),
    ):
        cmd = sub.add_parser(name, help=help_text)
        cmd.add_argument("--params", default="params.yaml", help="path to params.yaml (default: %(default)s)")
        commands[name] = (func, cmd)
    for name in ("enroll", "identify", "db"):
        cmd = commands[name][1]
        cmd.add_argument("--model", default="artifacts/models/semisupervised.pt",
                         help="model checkpoint, or 'pretrained' for the converted FaceNet (default: %(default)s)")
        cmd.add_argument("--db", default=None, help="identity database (default: identify.database in params.yaml)")
    commands["enroll"][1].add_argument("--folder", required=True, help="one sub-folder of face images per person")
    commands["enroll"][1].add_argument("--skip-existing", action="store_true",
                                       help="leave people already enrolled as they are instead of refusing the folder")
    source = commands["identify"][1].add_mutually_exclusive_group(required=True)
    source.add_argument("--video", help="face video file (mp4, avi, ...)")
    source.add_argument("--image", help="face photo (PNG, JPEG, PGM, GIF)")
    rule = commands["identify"][1].add_mutually_exclusive_group()
    rule.add_argument("--threshold", type=float, default=None,
                      help="open-set cosine threshold in [-1, 1] (default: the one stored with the database)")
    rule.add_argument("--far", type=float, default=None,
                      help="use the model's threshold at this false accept rate on its validation pairs")
    commands["db"][1].add_argument("action", choices=("list", "show", "remove", "update"))
    commands["db"][1].add_argument("name", nargs="?", default=None, help="the enrolled person (show, remove, update)")
    commands["db"][1].add_argument("--folder", default=None,
                                   help="update: a folder with one sub-folder of photos per person; NAME's is used")
    commands["preset"][1].add_argument("name", help="preset name, e.g. tiny (benchmark/presets/)")
    commands["preset"][1].add_argument("--out", required=True, help="file to write, e.g. params.yaml")
    commands["preset"][1].add_argument("--train", default=None, help="training folder (data.path), one sub-folder per identity")
    commands["preset"][1].add_argument("--benchmark", action="append", default=[], metavar="NAME=FORMAT:PATH",
                                       help="add a benchmark set after the preset's (FORMAT folder or lfw_pairs; "
                                            "lfw_pairs may add :PAIRS_FILE); repeatable")
    commands["gate-sweep"][1].add_argument("--thresholds", default="1,2,3,4,6,8",
                                           help="the gate's thresholds, comma-separated (default: %(default)s)")
    commands["gate-sweep"][1].add_argument("--switches", default="0.25,0.5,0.75",
                                           help="natural_then_at's switch points, comma-separated (default: %(default)s)")
    commands["gate-sweep"][1].add_argument("--out", default=None, help="file to write (default: paths.gate_sweep)")
    commands["fl-sweep"][1].add_argument("--momenta", default="0,0.5,0.9", help="server momenta to try (default: %(default)s)")
    commands["fl-sweep"][1].add_argument("--out", default="docs/federated_sweep.json", help="file to write (default: %(default)s)")
    commands["fl-deploy"][1].add_argument("--modes", default="third_party,blind", help="modes to run (default: %(default)s)")
    commands["fl-deploy"][1].add_argument("--timeout", type=float, default=3600.0, help="seconds per run (default: %(default)s)")
    commands["fl-deploy"][1].add_argument("--out", default=None,
                                          help="file to write (default: paths.federated_deployment)")
    commands["label-study"][1].add_argument("--fractions", default="0.05,0.1,0.25,1.0",
                                            help="label fractions, comma-separated (default: %(default)s)")
    commands["label-study"][1].add_argument("--seeds", default="0,1,2",
                                            help="training seeds, comma-separated (default: %(default)s)")
    commands["label-study"][1].add_argument("--out", default=None, help="file to update (default: paths.label_study)")
    commands["label-study"][1].add_argument("--fresh", action="store_true",
                                            help="replace the init's study in --out instead of adding to it")
    commands["train"][1].add_argument("stage", help="the training stage, e.g. supervised (a section of params.yaml)")
    commands["notebook"][1].add_argument("notebook", help="the notebook to run, e.g. notebooks/01_data.ipynb")
    commands["notebook"][1].add_argument("output", help="where the executed copy is written")
    commands["notebook"][1].add_argument("-p", nargs=2, action="append", default=[], metavar=("NAME", "VALUE"),
                                         help="set a declared parameter (VALUE read as YAML); repeatable")
    args = parser.parse_args(argv)
    try:
        params = config.load(args.params)
        if getattr(args, "db", "") is None:
            args.db = params.identify.database
        commands[args.command][0](args, params)
    except (ConfigError, DataError, OSError) as err:
        print(f"facebench {args.command}: error: {err}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
