"""The ``evaluate`` section: list-of-names fields and the robustness knobs."""

import pytest

from benchmark import config
from benchmark.attacks import ATTACKS
from benchmark.errors import ConfigError


def test_attack_names_in_config_equal_the_registry():
    assert list(config.ATTACK_NAMES) == ATTACKS.names()


def test_lists_of_names_load_as_tuples():
    # Execute
    params = config.build(config.Params, {"evaluate": {"variants": ["supervised"], "robustness": {"attacks": ["fgsm", "pgd_l2"]}}})
    # Assert
    assert params.evaluate.variants == ("supervised",)
    assert params.evaluate.robustness.attacks == ("fgsm", "pgd_l2")


@pytest.mark.parametrize(
    ("raw", "fragments"),
    [
        ({"variants": []}, ["'evaluate.variants' must be a non-empty list of strings"]),
        ({"variants": "supervised"}, ["'evaluate.variants' must be a non-empty list of strings", "str 'supervised'"]),
        ({"variants": ["supervised", 3]}, ["must be a non-empty list of strings"]),
        ({"variants": ["supervised", "supervised"]}, ["'evaluate.variants' lists a name twice"]),
        ({"robustness": {"attacks": ["pgd", "fgsm"]}}, ["'evaluate.robustness.attacks' has 'pgd'", "'pgd_linf'"]),
        ({"robustness": {"binary_steps": -1}}, ["'evaluate.robustness.binary_steps' = -1 is out of range"]),
        ({"robustness": {"l2_scale": 0}}, ["'evaluate.robustness.l2_scale' = 0.0 is out of range"]),
    ],
)
def test_bad_evaluate_values_name_key_value_and_allowed(raw, fragments):
    with pytest.raises(ConfigError) as err:
        config.build(config.Params, {"evaluate": raw})
    for fragment in fragments:
        assert fragment in str(err.value)
