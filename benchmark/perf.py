"""``facebench perf``: the speed benchmarks, each measured against its reference in the same process.

Writes ``<reports>/perf.json``: ``{"machine": ..., "figures": {name: {"value", "unit", "reference",
"ratio"}}}``. Figures so far:

* ``train_loop_vs_bare_pytorch``: images/s of the training loop (:mod:`benchmark.train.loop`) on the
  semi-supervised patent model, reference = a bare PyTorch loop over the same model, data and batch
  (:mod:`benchmark.train.bare`; target ratio >= 0.8);
* ``faiss_search_100k``: k=1 queries/s on a 100,000-identity gallery of 128-d vectors, reference =
  the 1,000 queries/s target;
* ``faiss_search_1m``: batched top-1 queries/s in the identity database's own index (an inverted file at this
  size, :mod:`benchmark.identify.index`) of 1,000,000 512-d templates, each query a noisy view of an enrolled
  template, reference = the 2,000 queries/s target; with ``recall_at_1`` against exact search (target >= 0.99)
  and ``memory_mb`` of the index (:func:`~benchmark.identify.throughput.gallery_search`);
* ``enroll_throughput``: identities/s enrolled into a real identity database, 1,000 a transaction, reference =
  the same rows put into a bare SQLite table and FAISS index (:func:`~benchmark.identify.throughput.enroll_throughput`);
* ``pgd_vs_torchattacks``: images/s of our PGD-L-inf (:mod:`benchmark.attacks.pgd`, 10 steps, batch 32)
  on the semi-supervised patent model with a cosine identity classifier, reference = torchattacks' ``PGD``
  on the same model, batch, steps and budget, interleaved repeats, medians
  (:mod:`benchmark.attacks.throughput`; target ratio >= 1.0);
* ``apgd_vs_torchattacks``: the same for our APGD (:mod:`benchmark.attacks.apgd`, 10 steps), reference =
  torchattacks' ``APGD`` (cross-entropy, one restart; target ratio >= 1.0);
* ``ckks_encrypt_vs_tenseal``: values/s an institution seals its update (as many values as the shared
  network has), reference = raw TenSEAL ``ckks_vector(...).serialize()`` on the same values in the same
  process (:mod:`benchmark.federated.throughput`; target ratio >= 0.8);
* ``he_round_vs_local_train``: HE seconds per round (encrypt + aggregate + decrypt) of the ``blind`` mode,
  reference = local training seconds per round, from ``<reports>/metrics/federated.json`` (or, when the
  federated stage has not run, from a one-round blind federation run here);
* ``pretrained_embed_vs_bare``: images/s of the suite's embedding (:func:`~benchmark.models.checkpoint.
  embed_images`) of 64 faces at 160 px with the converted FaceNet, reference = facenet-pytorch's bare forward
  of the same network on the same faces as tensors (:mod:`benchmark.models.throughput`; target ratio >= 0.9).
  The faces are the data stage's test faces, resized to 160 px when the data stage cut another size;
* ``detect_images_per_second``: photos/s the data stage detects and aligns with 2 worker processes, reference =
  one worker (``ratio`` = the speedup), on the first 200 photos of the training folder (``data.source: folder``)
  or else of the first benchmark set with a folder (:mod:`benchmark.data.throughput`); null with a note when
  params name no photo folder (the synthetic default alone);
* ``ddp_2proc_matches_single``: the largest absolute difference between the weights a 2-process ``torchrun``
  (DDP, gloo) trains and those one process trains on the same global batches (supervised stage, tiny synthetic
  workspace), reference = how far training moved the weights from their start (:mod:`benchmark.train.ddp_check`).
"""

from __future__ import annotations

import dataclasses
import json
import os
import platform
import tempfile
from pathlib import Path

import numpy as np
import torch

from benchmark import io
from benchmark.attacks.throughput import FaceLogits, attack_vs_torchattacks
from benchmark.config import Params
from benchmark.data.align import Geometry
from benchmark.data.throughput import detect_throughput
from benchmark.federated import local
from benchmark.federated import stage as federated_stage
from benchmark.federated.throughput import encrypt_throughput, he_vs_training
from benchmark.identify.throughput import enroll_throughput, gallery_search, search_throughput
from benchmark.models.autoencoder import SemiSupervisedAE
from benchmark.data.images import resize_face
from benchmark.models.face_model import to_float_nchw
from benchmark.models.pretrained import pretrained_face_model
from benchmark.models.throughput import embed_vs_bare
from benchmark.models.registry import create_head
from benchmark.train.bare import throughput_ratio
from benchmark.train.ddp_check import weight_difference
from benchmark.data.dataset import load_dataset
from benchmark.train.recipe import build_model, pretrained_cache

FAISS_TARGET_QPS = 1000.0
ATTACK_FIGURES = {"pgd_vs_torchattacks": "pgd_linf", "apgd_vs_torchattacks": "apgd"}  # figure -> our attack
FAISS_1M_TARGET_QPS = 2000.0


def figure(value: float, unit: str, reference: float) -> dict:
    return {"value": value, "unit": unit, "reference": reference, "ratio": value / reference}


def detection_folder(params: Params) -> str | None:
    """The photo folder ``detect_images_per_second`` runs on (module docstring), or None."""
    if params.data.source == "folder":
        return params.data.path
    return next((b.path for b in params.data.benchmarks if b.format != "split"), None)


def detection_figure(params: Params, geometry: Geometry) -> dict:
    """``detect_images_per_second`` (module docstring)."""
    folder = detection_folder(params)
    if folder is None:
        return {"value": None, "unit": "images/s", "reference": None, "ratio": None,
                "note": "no photo folder in params: data.source folder, or a benchmark set with a folder"}
    found = detect_throughput(folder, geometry, workers=2)
    return {**figure(found["images_per_second"], "images/s", found["one_worker_images_per_second"]),
            "workers": found["workers"], "images": found["images"], "folder": folder}


def ddp_figure() -> dict:
    """``ddp_2proc_matches_single`` (module docstring)."""
    with tempfile.TemporaryDirectory() as tmp:
        found = weight_difference(Path(tmp))
    return {**figure(found["max_abs_difference"], "max |weight difference|", found["trained_distance"]),
            "processes": found["processes"], "stage": found["stage"]}


def federated_metrics(params: Params) -> dict:
    """The federated stage's metrics, or those of a one-round ``blind`` federation run now."""
    path = Path(params.paths.reports) / "metrics" / "federated.json"
    if path.is_file() and "blind" in (metrics := json.loads(path.read_text())):
        return metrics
    one = dataclasses.replace(params, federated=dataclasses.replace(params.federated, rounds=1, modes="blind"))
    with tempfile.TemporaryDirectory() as tmp:
        result = federated_stage.run_mode("blind", one, Path(tmp), progress=False)
    return {"blind": federated_stage.mode_metrics("blind", result, local.dataset(one), one.federated.dp)}


def run(params: Params) -> dict:
    """Run every benchmark and write ``<reports>/perf.json``; returns its content."""
    data = load_dataset(params)
    p, cfg = data.protocol, params.semisupervised
    face = build_model(cfg, data.geometry, params.seed, pretrained_cache(params))
    head = create_head(cfg.head, embedding_dim=cfg.embedding_dim, num_classes=len(np.unique(data.labels[p.labelled])))
    loop = throughput_ratio(SemiSupervisedAE(face), head, data.images, data.labels, p.labelled, p.unlabelled, p.val)
    faiss_figures = search_throughput()
    gallery = gallery_search()
    enrolment = enroll_throughput()
    logits = FaceLogits(build_model(cfg, data.geometry, params.seed, pretrained_cache(params)), classes=100,
                        seed=params.seed).eval()
    batch = to_float_nchw(data.images[p.test[:32]])
    attacks = {key: attack_vs_torchattacks(name, logits, batch) for key, name in ATTACK_FIGURES.items()}
    values = len(local.shared_vector(local.new_model(params, data.geometry))) + 1
    ckks_figures = encrypt_throughput(values, params.federated.ckks)
    he = he_vs_training(federated_metrics(params))["blind"]
    facenet = pretrained_face_model(pretrained_cache(params))
    faces = np.stack([resize_face(img, facenet.input_size) for img in data.images[p.test[:64]]])
    embed = embed_vs_bare(facenet, faces)
    out = {
        "machine": {"cpu": platform.processor() or platform.machine(), "cores": os.cpu_count(), "torch_threads": torch.get_num_threads(),
                    "cuda": torch.cuda.is_available()},
        "figures": {
            "train_loop_vs_bare_pytorch": figure(loop["loop_images_per_second"], "images/s", loop["bare_images_per_second"]),
            "faiss_search_100k": figure(faiss_figures["queries_per_second"], "queries/s", FAISS_TARGET_QPS),
            **{key: figure(a["ours_images_per_second"], "images/s", a["torchattacks_images_per_second"])
               for key, a in attacks.items()},
            "faiss_search_1m": {**figure(gallery["queries_per_second"], "queries/s", FAISS_1M_TARGET_QPS),
                                "recall_at_1": gallery["recall_at_1"], "memory_mb": gallery["memory_mb"]},
            "enroll_throughput": figure(enrolment["identities_per_second"], "identities/s",
                                        enrolment["bare_identities_per_second"]),
            "ckks_encrypt_vs_tenseal": figure(ckks_figures["values_per_second"], "values/s", ckks_figures["tenseal_values_per_second"]),
            "he_round_vs_local_train": figure(he["he_seconds"], "s/round", he["train_seconds"]),
            "pretrained_embed_vs_bare": figure(embed["suite_images_per_second"], "images/s",
                                               embed["bare_images_per_second"]),
            "detect_images_per_second": detection_figure(params, data.geometry),
            "ddp_2proc_matches_single": ddp_figure(),
        },
    }
    io.write_json(Path(params.paths.reports) / "perf.json", out)
    return out
