"""`facebench notebook`: a real notebook run by papermill with only the parameters it declares, no warnings."""

import json
import logging

import nbformat
import pytest

from benchmark.cli import main
from benchmark.errors import ConfigError
from benchmark.notebook import declared, run


@pytest.fixture
def notebook(tmp_path):
    nb = nbformat.v4.new_notebook()
    params = nbformat.v4.new_code_cell("seed = 0\nstage = 'none'")
    params.metadata["tags"] = ["parameters"]
    nb.cells = [params, nbformat.v4.new_code_cell("import json, sys\nprint(json.dumps([seed, stage, sorted(globals())]))")]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    path = tmp_path / "nb.ipynb"
    nbformat.write(nb, path)
    return path


def printed(path):
    outputs = nbformat.read(path, as_version=4).cells[-1].outputs
    return json.loads("".join(o.get("text", "") for o in outputs if o.output_type == "stream"))


@pytest.mark.slow
def test_only_declared_values_reach_the_notebook_and_nothing_is_warned(notebook, tmp_path, caplog, capfd):
    # Execute: params.yaml-like values with sections the notebook does not declare, one override
    with caplog.at_level(logging.WARNING):
        run(notebook, tmp_path / "out" / "executed.ipynb", {"seed": 3, "data": {"seed": 1}, "device": "cpu"},
            {"stage": "supervised"})
    # Assert
    seed, stage, names = printed(tmp_path / "out" / "executed.ipynb")
    assert (seed, stage) == (3, "supervised") and "data" not in names and "device" not in names
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert "WARNING" not in capfd.readouterr().err  # the kernel's own log: no unencrypted-TCP warning


def test_an_undeclared_override_is_a_config_error_naming_it(notebook, tmp_path):
    assert declared(notebook) == {"seed", "stage"}
    with pytest.raises(ConfigError, match=r"no parameter 'stag'; it declares seed, stage"):
        run(notebook, tmp_path / "executed.ipynb", {}, {"stag": "x"})
    assert not (tmp_path / "executed.ipynb").exists()


def test_the_command_reads_values_as_yaml_and_reports_a_bad_name_in_one_line(notebook, tmp_path, capsys):
    (tmp_path / "params.yaml").write_text("seed: 1\n")
    code = main(["notebook", str(notebook), str(tmp_path / "executed.ipynb"), "--params",
                 str(tmp_path / "params.yaml"), "-p", "stage_", "2e-3"])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and "no parameter 'stage_'" in err
