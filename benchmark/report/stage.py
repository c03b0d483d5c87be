"""The ``report`` stage: the page a reviewer opens first.

Reads what the other stages wrote under ``<reports>`` and writes, atomically:

* ``<reports>/index.html``: one self-contained page (figures inlined): a headline table of every variant per
  benchmark set (the headline set first), a section per source method with what was built and what the numbers
  show on the headline set, the data stage's benchmark sets with a warning for each that shares identities with
  the training source, the figures, the limits, links to every executed notebook rendered as HTML, and the
  environment block;
* ``<reports>/summary.md``: the same headline tables in Markdown;
* ``<reports>/metrics/label_study.json`` and ``<reports>/figures/label_study/label_study.png``: the semi-supervised
  label-fraction study on real faces (``{init: {fraction: {"supervised", "semisupervised", "difference", "ci",
  "p_value", ...}}}``) from the study file ``paths.label_study`` (``make label-study``), when it exists;
* ``<reports>/metrics/gate_pareto.json`` and ``<reports>/figures/gate_pareto/gate_pareto.png``: the gated hardening
  against natural_then_at, PGD-AT and TRADES on the cost-robustness plane (:mod:`benchmark.report.pareto`), from
  the sweep file ``paths.gate_sweep`` (``make gate-sweep``) and this run's adversarial stages;
* ``<reports>/html/<notebook>.html``: the executed notebooks as static pages.

The page and the summary show the headline figures over training seeds under the headline tables when
``<reports>/metrics/seeds.json`` exists (``make seeds``), or one line saying the figures are single-seed.
"""

from __future__ import annotations

import datetime
import json
from dataclasses import dataclass
from pathlib import Path

from benchmark import io
from benchmark.config import Params
from benchmark.plots import save_figure
from benchmark.report import findings, pareto
from benchmark.report.benchmarks import benchmarks_table, overlap_warnings, training_sentence
from benchmark.report.environment import environment
from benchmark.report.figures import gate_pareto_figure, label_study_figure
from benchmark.report.headline import benchmark_sets, headline_tables, markdown_tables, seed_block, seed_markdown
from benchmark.report.html import notebook_to_html, png_data_uri, render_page

REPORT_NOTEBOOK = "06_report"  # the stage's own executed notebook, still being written while it runs
TRAINING_STAGES = ("supervised", "semisupervised", "timm_reference", "adversarial", "pgd_at", "trades", "natural_then_at")

# (id, title, figure folders under <reports>/figures, description of what was built)
SECTIONS = (
    ("data", "Data and protocol", ("data",),
     "One training source split into training and validation identities (every threshold is chosen on validation "
     "pairs), and the benchmark sets every variant is reported on, each with LFW-style 10-fold verification pairs; "
     "an eigenfaces (PCA + cosine) floor."),
    ("semisupervised", "Semi-supervised autoencoder (patent CN112364828B)",
     ("supervised", "semisupervised", "timm_reference", "identification", "label_study"),
     "Six-conv autoencoder with a fully connected supervised head: Loss = g LossA + (1-g)(Loss1+Loss2+Loss3) on "
     "labelled and unlabelled faces; compared with the same encoder on the labelled faces alone and with a timm "
     "backbone (mobilenetv3_small_100 by default, resnet18 in the full preset). Used to identify a person from a face video through a quality-checked frame and an identity database."),
    ("hardened", "Adversarially hardened (patent CN116665282A)", ("adversarial", "pgd_at", "trades", "natural_then_at",
                                                                   "gate_pareto"),
     "Training on source batches; after every batch the loss is checked against a precision threshold, and while it "
     "is below, a regularizer built from source, adversarial and target samples is switched on with adversarial "
     "batches. Baselines: static PGD adversarial training, TRADES, natural training then PGD-AT (the closest prior "
     "art, Gupta et al. 2020) and the clean model; the gate's cost front against them comes from a validation sweep."),
    ("federated", "Federated with homomorphic encryption (knowledge federation)", ("federated",),
     "Institutions train the shared embedding network locally and exchange only CKKS-encrypted updates through a "
     "third party; their identity heads and faces never leave them."),
    ("evaluation", "Robustness under one protocol", ("evaluate",),
     "Every variant attacked white-box on the same pairs of each benchmark set: dodging and impersonation with FGSM, PGD (L∞, L2), "
     "MI-FGSM and CW-L2 over ε in {1, 2, 4, 8, 16}/255, minimal successful perturbation and transfer between variants."),
)

LIMITS = (
    "The default data is synthetic: rendered faces with controlled nuisance factors. Its absolute accuracies say "
    "nothing about real faces; the comparisons between variants under one protocol are what it is for. Run the "
    "pipeline on your own data (README, 'Bring your own faces') before deciding anything.",
    "Everything runs at 64x64 pixels on a CPU budget (20 minutes for the whole pipeline on 2 cores): models and "
    "epochs are small, and differences below the fold standard deviation are noise.",
    "Robustness is white-box on a fixed subset of the test pairs (see params.yaml `evaluate`); numbers are upper "
    "bounds on what these attacks achieve, not guarantees against stronger ones.",
    "The third party of the federated design decrypts every institution's update: it can run gradient inversion on "
    "them. The `blind` mode removes that, but not the risk of collusion or of what the aggregated model itself leaks.",
)


@dataclass
class Inputs:
    """The metrics the report reads; any of them may be missing (an empty dict / None). ``data`` is the data
    stage's ``data.json``, ``seeds`` the seed table of ``make seeds`` (``seeds.json``), ``identification`` the
    identification stage's ``identification.json``."""

    evaluation: dict
    stages: dict[str, dict]
    federated: dict | None
    manifest: dict
    data: dict | None
    run: dict | None = None
    comparisons: dict | None = None
    findings: list[dict] | None = None
    seeds: dict | None = None
    identification: dict | None = None
    gate_pareto: dict | None = None
    label_study: dict | None = None


def _read_json(path: Path) -> dict | None:
    return json.loads(path.read_text()) if path.is_file() else None


def read_inputs(params: Params) -> Inputs:
    reports, artifacts = Path(params.paths.reports), Path(params.paths.artifacts)
    metrics = reports / "metrics"
    manifest = _read_json(artifacts / "data" / "manifest.json")
    if manifest is None:
        raise FileNotFoundError(f"no data manifest at {artifacts / 'data' / 'manifest.json'}: run the data stage first")
    stages = {s: m for s in TRAINING_STAGES if (m := _read_json(metrics / f"{s}.json")) is not None}
    return Inputs(_read_json(metrics / "evaluation.json") or {}, stages, _read_json(metrics / "federated.json"), manifest,
                  _read_json(metrics / "data.json"), _read_json(metrics / "evaluate_run.json"),
                  _read_json(metrics / "comparisons.json"), _read_json(metrics / "findings.json"),
                  _read_json(metrics / "seeds.json"), _read_json(metrics / "identification.json"))


def data_section(manifest: dict, data: dict | None) -> tuple[list[str], list[dict]]:
    """The data section's paragraphs (counts, the training split, one overlap warning per set that shares
    identities with the training source) and tables (the benchmark sets' counts)."""
    paragraphs = [f"Training source: {manifest['counts']['identities']} identities, {manifest['counts']['images']} "
                  f"images, source: {manifest['source']['kind']}."]
    data = data or {}
    if "training" in data:
        paragraphs.append(training_sentence(data["training"]))
    benchmarks = data.get("benchmarks") or {}
    return paragraphs + overlap_warnings(benchmarks), [benchmarks_table(benchmarks)] if benchmarks else []


def gate_pareto_table(points: dict) -> dict:
    """The cost front's points (:func:`~benchmark.report.pareto.gate_pareto`) as a report table."""
    columns = ["point", "pairs", "source", "passes", "seconds", "worst case [95% CI] (pairs)", "clean", "front (passes)"]
    rows = [[pareto.point_name(r), r["pairs"], r.get("source", "run"), str(r["passes"]), f"{r['seconds']:.0f}",
             "n/a" if r["worst_case_robust_accuracy"] is None else
             f"{r['worst_case_robust_accuracy']:.3f} [{r['worst_case_ci'][0]:.3f}, {r['worst_case_ci'][1]:.3f}] ({r['n']})",
             "n/a" if r["clean_accuracy"] is None else f"{r['clean_accuracy']:.3f}",
             {True: "yes", False: "no"}.get(r.get("on_front"), "n/a")]
            for r in [*points["rows"], *points["test"]]]
    return {"columns": columns, "rows": rows}


def label_study_table(study: dict) -> dict:
    """The label study (the study file) as a report table: one row per init and label fraction."""
    columns = ["init", "label fraction", "labelled / unlabelled", "supervised only (± std over seeds)",
               "semi-supervised", "difference [95% CI]", "p", "verdict"]

    def acc(row: dict, stage: str) -> str:
        std = row[f"{stage}_std"]
        return f"{row[stage]:.3f}" + ("" if std is None else f" ± {std:.3f}")

    rows = [[init, fraction, f"{r['labelled_images']} / {r['unlabelled_images']}", acc(r, "supervised"),
             acc(r, "semisupervised"),
             f"{100 * r['difference']:+.1f} [{100 * r['ci'][0]:+.1f}, {100 * r['ci'][1]:+.1f}]", f"{r['p_value']:.2g}",
             r["verdict"]]
            for init, entry in study.items()
            for fraction, r in sorted(entry["fractions"].items(), key=lambda kv: float(kv[0]))]
    return {"columns": columns, "rows": rows}


def write_label_study(params: Params) -> dict | None:
    """Write ``<reports>/metrics/label_study.json`` and its figure from the study file (module docstring); returns the
    study file's content, or None when there is none."""
    study = _read_json(Path(params.paths.label_study))
    if not study:
        return None
    reports = Path(params.paths.reports)
    io.write_json(reports / "metrics" / "label_study.json", {init: e["fractions"] for init, e in study.items()})
    save_figure(label_study_figure(study), reports / "figures" / "label_study" / "label_study.png")
    return study


def write_gate_pareto(params: Params, inputs: Inputs, benchmark: str) -> dict:
    """Write ``<reports>/metrics/gate_pareto.json`` and its figure (module docstring); returns the points."""
    reports = Path(params.paths.reports)
    hashes = {k: inputs.manifest["hashes"].get(k) for k in ("faces_sha256", "protocol_sha256")}
    points = pareto.gate_pareto(_read_json(Path(params.paths.gate_sweep)), inputs.stages, inputs.evaluation,
                                benchmark, hashes, params.seed)
    io.write_json(reports / "metrics" / "gate_pareto.json", points)
    save_figure(gate_pareto_figure(points), reports / "figures" / "gate_pareto" / "gate_pareto.png")
    return points


def build_sections(inputs: Inputs, figures_dir: Path) -> list[dict]:
    """The report's sections with their paragraphs, tables (``{"columns", "rows"}``) and inlined figures; the
    findings are on the headline set (the first benchmark set of ``evaluation.json``)."""
    headline = next(iter(benchmark_sets(inputs.evaluation)), "the headline set")
    data_paragraphs, data_tables = data_section(inputs.manifest, inputs.data)
    text = {
        "data": data_paragraphs,
        "semisupervised": [*findings.semisupervised(inputs.stages, inputs.findings, headline),
                           *(findings.label_study(inputs.label_study) if inputs.label_study else []),
                           *findings.frame_selection(inputs.identification)],
        "hardened": [*findings.hardened(inputs.evaluation, inputs.stages, inputs.findings, headline),
                     *(findings.gate_front(inputs.gate_pareto) if inputs.gate_pareto else [])],
        "federated": findings.federated(inputs.federated, inputs.findings, headline),
        "evaluation": [*findings.robustness(inputs.evaluation, headline),
                       *findings.pretrained(inputs.evaluation, inputs.comparisons, inputs.run, inputs.findings,
                                            headline)],
    }
    tables = {"data": data_tables, "hardened": [gate_pareto_table(inputs.gate_pareto)] if inputs.gate_pareto else [],
              "semisupervised": [label_study_table(inputs.label_study)] if inputs.label_study else []}
    sections = []
    for sid, title, folders, built in SECTIONS:
        figures = [
            {"src": png_data_uri(png), "caption": f"{folder}: {png.stem.replace('_', ' ')}"}
            for folder in folders
            for png in sorted((figures_dir / folder).glob("*.png"))
        ]
        sections.append({"id": sid, "title": title, "paragraphs": [built, *text[sid]], "tables": tables.get(sid, []),
                         "figures": figures})
    return sections


def run(params: Params) -> dict:
    """Write the page, the summary and the notebook pages; returns ``{"tables", "index", "summary"}`` (``tables``:
    :func:`~benchmark.report.headline.headline_tables`)."""
    reports = Path(params.paths.reports)
    inputs = read_inputs(params)
    headline = next(iter(benchmark_sets(inputs.evaluation)), None)
    if headline and any("passes" in inputs.stages.get(v, {}) for v in pareto.ADVERSARIAL_VARIANTS):
        inputs.gate_pareto = write_gate_pareto(params, inputs, headline)
    inputs.label_study = write_label_study(params)
    tables = headline_tables(inputs.evaluation, inputs.stages, inputs.federated, (inputs.data or {}).get("benchmarks"),
                             inputs.run)
    notebooks = []
    for nb in sorted((reports / "notebooks").glob("*.ipynb")):
        if nb.stem == REPORT_NOTEBOOK:
            continue
        target = reports / "html" / f"{nb.stem}.html"
        with io.atomic_path(target) as tmp:
            tmp.write_text(notebook_to_html(nb))
        notebooks.append({"name": nb.stem, "href": f"html/{nb.stem}.html"})
    flip = "with" if params.evaluate.flip_test else "without"
    seeds = seed_block(inputs.seeds, params.seed)
    context = {
        "tables": tables,
        "headline_note": "Clean and robust accuracy are measured by the evaluate stage on each benchmark set's pairs, the "
                         f"same pairs for every variant (clean accuracy {flip} flip-test fusion); robustness attacks "
                         "each model at its operating threshold, chosen on validation pairs of the training source. "
                         "n/a marks what does not apply or did not run.",
        "seeds": seeds,
        "sections": build_sections(inputs, reports / "figures"),
        "limits": list(LIMITS),
        "notebooks": notebooks,
        "env": environment(params.seed, inputs.manifest),
        "generated": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
    }
    index, summary = reports / "index.html", reports / "summary.md"
    with io.atomic_path(index) as tmp:
        tmp.write_text(render_page(context))
    with io.atomic_path(summary) as tmp:
        tmp.write_text("# facebench: headline\n\n" + markdown_tables(tables) + "\n" + seed_markdown(seeds))
    return {"tables": tables, "index": str(index), "summary": str(summary)}
