"""Rendering the report page: one self-contained HTML file (figures inlined as PNG data URIs, no
script, no network) and the executed notebooks converted to static HTML pages beside it."""

from __future__ import annotations

import base64
import logging
import os
from pathlib import Path

import jinja2

from benchmark.report.headline import COLUMNS, UNRELIABLE_NOTE, format_cell, unreliable

TEMPLATES = Path(__file__).parent / "templates"


def png_data_uri(path: str | os.PathLike) -> str:
    """A PNG file as a ``data:image/png;base64,...`` URI; anything that is not a PNG raises ValueError."""
    data = Path(path).read_bytes()
    if not data.startswith(b"\x89PNG\r\n\x1a\n"):
        raise ValueError(f"'{path}' is not a PNG image")
    return "data:image/png;base64," + base64.b64encode(data).decode("ascii")


def render_page(context: dict) -> str:
    """The report page from ``context``: ``tables`` (:func:`~benchmark.report.headline.headline_tables`, one
    headline table per benchmark set), ``headline_note``, ``sections`` (each ``{"id", "title", "paragraphs": [str],
    "tables": [{"columns": [str], "rows": [[str]]}], "figures": [{"src", "caption"}]}``), ``limits`` ([str]),
    ``seeds`` (:func:`~benchmark.report.headline.seed_block`), ``notebooks`` ([{"name", "href"}]), ``env``
    (:func:`~benchmark.report.environment.environment`) and ``generated`` (a timestamp string). Text is HTML-escaped."""
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(TEMPLATES), autoescape=True, undefined=jinja2.StrictUndefined)
    return env.get_template("index.html.j2").render(columns=COLUMNS, cell=format_cell, unreliable=unreliable,
                                                          unreliable_note=UNRELIABLE_NOTE, **context)


def notebook_to_html(notebook: str | os.PathLike) -> str:
    """An executed notebook as a static HTML page (nbconvert's ``lab`` template, no input prompts hidden).

    nbconvert's log is kept to errors: it warns about every figure output, whose ``<img>`` its template cannot
    give an alt text, and gives each a generic one itself; the figures' captions are the notebooks' markdown."""
    import nbconvert
    import nbformat

    log = logging.getLogger(f"{__name__}.nbconvert")
    log.setLevel(logging.ERROR)
    exporter = nbconvert.HTMLExporter(template_name="lab", log=log)
    body, _ = exporter.from_notebook_node(nbformat.read(str(notebook), as_version=4))
    return body
