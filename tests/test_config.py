"""params.yaml validation: every bad value fails at once with the key, the value and what is allowed."""

import dataclasses
from pathlib import Path

import pytest
import yaml

from benchmark import config
from benchmark.errors import ConfigError

ROOT = Path(__file__).resolve().parents[1]


def test_repository_params_yaml_loads_and_matches_dataclass_defaults():
    params = config.load(ROOT / "params.yaml")
    assert params == config.Params()


@pytest.mark.parametrize(
    "raw, fragments",
    [
        ({"data": {"sorce": "folder"}}, ["unknown key 'data.sorce'", "did you mean 'source'", "allowed keys"]),
        ({"bogus": 1}, ["unknown key 'bogus'", "seed"]),
        ({"data": {"protocol": {"label_fraction": 0.0}}}, ["'data.protocol.label_fraction' = 0.0", "(0.0, 1.0]"]),
        ({"data": {"protocol": {"label_fraction": 1.5}}}, ["out of range"]),
        ({"data": {"source": "s3"}}, ["'data.source' = 's3'", "'synthetic', 'folder'"]),
        ({"data": {"source": "lfw"}}, ["'data.source' = 'lfw'", "choose one of: 'synthetic', 'folder'"]),
        ({"data": {"pairs_file": "pairs.txt"}}, ["unknown key 'data.pairs_file'", "benchmarks"]),
        ({"data": {"alignment": "dlib"}}, ["'data.alignment' = 'dlib'", "'arcface', 'box'"]),
        ({"data": {"alignment": "box", "box_margin": 64, "image_size": 64}},
         ["'data.box_margin' = 64 must be below 'data.image_size' = 64"]),
        ({"data": {"protocol": {"val_identity_fraction": 0.6}}},
         ["'data.protocol.val_identity_fraction' = 0.6", "(0.0, 0.5)"]),
        ({"data": {"benchmarks": []}}, ["'data.benchmarks' must be a non-empty list"]),
        ({"data": {"benchmarks": [{"name": "a b"}]}}, ["'data.benchmarks[0].name' = 'a b'", "letters, digits"]),
        ({"data": {"benchmarks": [{"name": "x"}, {"name": "x", "format": "folder", "path": "p"}]}},
         ["'data.benchmarks[0].name' = 'x' is used by two benchmark sets"]),
        ({"data": {"benchmarks": [{"name": "x"}, {"name": "lfw", "format": "lfw_pairs"}]}},
         ["'data.benchmarks[1].path' is empty", "'lfw_pairs'"]),
        ({"data": {"benchmarks": [{"name": "x", "path": "data/orl"}]}},
         ["'data.benchmarks[0].path' = 'data/orl'", "format 'split' takes no path"]),
        ({"supervised": {"images": "some"}}, ["'supervised.images' = 'some'", "'all', 'labelled'"]),
        ({"semisupervised": {"images": "all"}}, ["'semisupervised.images' = 'all'", "'labelled'"]),
        ({"supervised": {"augment": "heavy"}}, ["'supervised.augment' = 'heavy'", "'standard', 'flip', 'none'"]),
        ({"supervised": {"head_epochs": 1}}, ["'supervised.head_epochs' = 1 and 'head_lr' = 0.0",
                                              "fine-tuning a pretrained model", "'init' = 'scratch'"]),
        ({"supervised": {"init": "facenet_casia", "backbone": "facenet_casia", "embedding_dim": 512,
                         "max_epochs": 2, "head_epochs": 2}},
         ["'supervised.head_epochs' = 2 must be below 'max_epochs' = 2"]),
        ({"evaluate": {"flip_test": "yes"}}, ["'evaluate.flip_test' must be bool"]),
        ({"evaluate": {"robustness": {"worst_case_attacks": ["pgd_l2"]}}},
         ["'evaluate.robustness.worst_case_attacks' has 'pgd_l2', which is not allowed", "'apgd'", "'square'"]),
        ({"data": {"image_size": "64"}}, ["'data.image_size' must be int", "str '64'"]),
        ({"data": {"image_size": 64.5}}, ["'data.image_size' must be int"]),
        ({"seed": True}, ["'seed' must be int", "bool"]),
        ({"data": {"seed": -1}}, ["'data.seed' = -1 is out of range", "[0, 2147483647]"]),
        ({"data": {"seed": 1.5}}, ["'data.seed' must be int", "float 1.5"]),
        ({"data": {"seed": "0"}}, ["'data.seed' must be int", "str '0'"]),
        ({"data": {"synthetic": 3}}, ["data.synthetic: expected a mapping"]),
    ],
)
def test_bad_values_name_key_value_and_allowed(raw, fragments):
    with pytest.raises(ConfigError) as err:
        config.build(config.Params, raw)
    for fragment in fragments:
        assert fragment in str(err.value)


def test_int_is_accepted_where_float_expected():
    params = config.build(config.Params, {"data": {"synthetic": {"difficulty": 1}}})
    assert params.data.synthetic.difficulty == 1.0 and isinstance(params.data.synthetic.difficulty, float)


def test_missing_params_file_is_a_clear_error(tmp_path):
    with pytest.raises(ConfigError, match="does not exist"):
        config.load(tmp_path / "params.yaml")


def test_load_reads_overrides(tmp_path):
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump({"seed": 7, "data": {"seed": 3, "protocol": {"folds": 5}}}))
    params = config.load(path)
    assert params.seed == 7 and params.data.seed == 3
    assert params.data.protocol.folds == 5 and params.data.protocol.pairs_per_fold == 300


def test_numbers_with_an_exponent_and_no_dot_are_numbers(tmp_path):
    # Prepare: PyYAML's YAML 1.1 resolver reads 2e-3 and 1e5 as strings
    path = tmp_path / "params.yaml"
    path.write_text("supervised:\n  lr: 2e-3\n  weight_decay: 5E-4\nfederated:\n  lr: +1e-2\ndata:\n  path: 1e5x\n")
    # Execute
    params = config.load(path)
    # Assert
    assert (params.supervised.lr, params.supervised.weight_decay, params.federated.lr) == (2e-3, 5e-4, 1e-2)
    assert params.data.path == "1e5x"
    assert config.read_yaml(path)["supervised"]["lr"] == 2e-3


def test_a_duplicate_key_is_an_error_naming_both_lines(tmp_path):
    path = tmp_path / "params.yaml"
    path.write_text("supervised:\n  lr: 0.1\n  max_epochs: 3\n  lr: 0.2\n")
    with pytest.raises(ConfigError, match="params.yaml: line 4, column 3: key 'lr' is given twice \\(first on line 2\\)"):
        config.load(path)


def test_registry_names_in_config_equal_the_registries():
    from benchmark.federated.aggregation import AGGREGATIONS
    from benchmark.models.registry import BACKBONES, HEADS
    from benchmark.train.stage import STAGES

    assert list(config.BACKBONE_NAMES) == BACKBONES.names() and list(config.HEAD_NAMES) == HEADS.names()
    assert config.VARIANT_NAMES == (*STAGES, *(f"federated_{m}" for m in config.FEDERATED_MODES), "pretrained")
    assert [f.metadata["choices"] for f in dataclasses.fields(config.FederatedConfig) if f.name == "aggregation"] == [
        tuple(AGGREGATIONS.names())]


def test_merge_keys_still_merge_and_may_be_overridden(tmp_path):
    path = tmp_path / "params.yaml"
    path.write_text("supervised: &base\n  lr: 0.01\n  max_epochs: 3\npgd_at:\n  <<: *base\n  max_epochs: 2\n")
    params = config.load(path)
    assert (params.pgd_at.lr, params.pgd_at.max_epochs) == (0.01, 2)
