"""The benchmark sets in the report: their titles, the data stage's counts table and the overlap warning; pure
functions of ``reports/metrics/data.json``.

``data.json`` holds ``"benchmarks": {name: {"format", "pairs", "identities", "images", "unusable",
"overlap_identities"}}`` in params.yaml order (the first is the headline set) and ``"training": {"identities",
"images", "val_identities", "val_pairs"}``; ``overlap_identities`` counts the set's identities whose name also
appears in the training source.
"""

from __future__ import annotations

FORMATS = {
    "split": "held-out identities of the training source",
    "folder": "a folder per identity, generated pairs",
    "lfw_pairs": "LFW View 2 pairs.txt",
}

COLUMNS = (
    ("name", "benchmark set"),
    ("format", "format"),
    ("pairs", "pairs"),
    ("identities", "identities"),
    ("images", "images"),
    ("unusable", "unusable inputs"),
    ("overlap_identities", "identities also in training"),
)


def set_title(name: str, fmt: str | None) -> str:
    """A benchmark set's heading: its name and what its format means, e.g. "heldout: held-out identities of the
    training source"; the name alone when the format is unknown."""
    return f"{name}: {FORMATS.get(fmt, fmt)}" if fmt else name


def benchmarks_table(benchmarks: dict) -> dict:
    """The data stage's benchmarks block as ``{"columns": [title], "rows": [[cell]]}``, one row per set in its order;
    a count the data stage did not write shows as "n/a"."""
    rows = [[name, *("n/a" if (v := counts.get(key)) is None else str(v) for key, _ in COLUMNS[1:])]
            for name, counts in benchmarks.items()]
    return {"columns": [title for _, title in COLUMNS], "rows": rows}


def overlap_warnings(benchmarks: dict) -> list[str]:
    """One warning per set that shares identities with the training source: accuracy on it is inflated."""
    return [f"Warning: {n} identities of {name} also appear in the training source: accuracy on it is inflated."
            for name, counts in benchmarks.items() if (n := counts.get("overlap_identities") or 0) > 0]


def training_sentence(training: dict) -> str:
    """The training source's split into training and validation identities, where every threshold is chosen."""
    return (f"Of the training source, {training['identities']} identities ({training['images']} images) train the "
            f"models; {training['val_identities']} validation identities give {training['val_pairs']} validation "
            "pairs, on which every operating threshold is chosen (benchmark pairs only measure).")
