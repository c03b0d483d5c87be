"""The evaluate stage's figures per benchmark set: a ROC panel per set, a row of attack panels per set."""

import numpy as np

from benchmark.evaluation.figures import asr_vs_eps_figure, roc_figure


def roc_rows(tars):
    return [{"far": far, **{v: t[i] for v, t in tars.items()}} for i, far in enumerate((1e-3, 1e-2, 1e-1))]


def test_roc_figure_has_a_panel_per_set_and_one_colour_per_variant():
    rows = {"heldout": roc_rows({"supervised": [0.1, 0.5, 0.9], "adversarial": [0.0, 0.4, 0.8]}),
            "lfw": roc_rows({"supervised": [0.2, 0.3, 0.7], "adversarial": [0.1, 0.2, 0.6]})}
    axes = roc_figure(rows).axes
    assert [ax.get_title() for ax in axes] == ["Clean verification on heldout", "Clean verification on lfw"]
    lines = {(ax.get_title(), line.get_label()): line for ax in axes for line in ax.get_lines()}
    assert len(lines) == 4
    lfw_sup = lines[("Clean verification on lfw", "supervised")]
    assert list(lfw_sup.get_ydata()) == [0.2, 0.3, 0.7]
    assert lfw_sup.get_color() == lines[("Clean verification on heldout", "supervised")].get_color()
    assert lfw_sup.get_color() != lines[("Clean verification on lfw", "adversarial")].get_color()


def test_asr_vs_eps_figure_has_a_row_of_attack_panels_per_set():
    def attack(dodging, impersonation):
        return {f"eps_{n}": {"dodging_asr": d, "impersonation_asr": i}
                for n, d, i in zip((1, 4), dodging, impersonation)} | {"median_min_perturbation": {"dodging": 0.01}}

    robustness = {
        "supervised": {"heldout": {"fgsm": attack([0.2, 0.9], [0.1, 0.5]), "pgd_linf": attack([0.3, 1.0], [0.1, 0.6])},
                       "lfw": {"fgsm": attack([0.4, 0.95], [None, 0.7]), "pgd_linf": attack([0.5, 1.0], [0.2, 0.8])}},
    }
    axes = asr_vs_eps_figure(robustness).axes
    assert [ax.get_title() for ax in axes] == ["heldout: fgsm", "heldout: pgd_linf", "lfw: fgsm", "lfw: pgd_linf"]
    dodging, impersonation = axes[2].get_lines()
    assert list(dodging.get_xdata()) == [1, 4] and list(dodging.get_ydata()) == [0.4, 0.95]
    assert np.isnan(impersonation.get_ydata()[0]) and impersonation.get_ydata()[1] == 0.7
