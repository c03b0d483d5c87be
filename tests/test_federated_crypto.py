"""Aggregation rules, CKKS workflows, key handling and ciphertext faults, on small vectors."""

import numpy as np
import pytest

from benchmark.config import CkksConfig
from benchmark.federated import ckks
from benchmark.federated.aggregation import AGGREGATIONS, create_aggregation
from benchmark.federated.ckks import CiphertextError, Sealed
from benchmark.federated.encryption import WORKFLOWS, Contribution, InstitutionCipher, create_workflow
from benchmark.federated.throughput import encrypt_throughput, he_vs_training

CFG = CkksConfig()
RNG = np.random.default_rng(0)
UPDATES = [RNG.normal(0, 0.01, 50) for _ in range(3)]
COUNTS = [10, 30, 60]


@pytest.fixture(scope="module")
def institution_keys():
    return ckks.secret_bytes(ckks.key_pair(CFG))


def setup(mode, institution_keys):
    """Server side and three institutions of ``mode``, after the key exchange."""
    server = create_workflow(mode, CFG)
    keys = institution_keys if server.encrypted else None
    institutions = [InstitutionCipher(f"institution {i}", keys, server.public_context()) for i in range(3)]
    if server.encrypted:
        server.set_institutions_context(institutions[0].public_context())
    return server, institutions


def contributions(institutions, rule, updates=UPDATES):
    return [
        Contribution(inst.name, inst.seal(rule.pack(u, n)), rule.weight(n))
        for inst, u, n in zip(institutions, updates, COUNTS)
    ]


@pytest.mark.parametrize("name", AGGREGATIONS.names())
def test_rule_unpacks_the_weighted_mean_of_packed_updates(name):
    rule = create_aggregation(name)
    weights = np.array([rule.weight(n) for n in COUNTS])
    total = rule.combine([rule.pack(u, n) for u, n in zip(UPDATES, COUNTS)])
    mean = rule.unpack(total, weights.sum(), "server")
    assert np.allclose(mean, np.average(UPDATES, axis=0, weights=weights))
    with pytest.raises(ValueError, match="declared"):
        rule.unpack(total, weights.sum() + 5, "server")


def test_fedavg_weighs_by_sample_count():
    rule = create_aggregation("fedavg")
    assert rule.weight(30) == 30.0
    with pytest.raises(ValueError, match="at least one"):
        rule.weight(0)


@pytest.mark.parametrize("mode", WORKFLOWS.names())
def test_every_workflow_returns_the_fedavg_mean_to_the_institutions(mode, institution_keys):
    server, institutions = setup(mode, institution_keys)
    rule = create_aggregation("fedavg")
    agg = server.aggregate(contributions(institutions, rule), rule)
    mean = rule.unpack(institutions[1].open(agg.sealed), agg.weight, "the server")
    assert agg.accepted == ["institution 0", "institution 1", "institution 2"] and not agg.rejected
    assert np.abs(mean - np.average(UPDATES, axis=0, weights=COUNTS)).max() < 1e-6
    assert agg.weight == sum(COUNTS)


def test_third_party_and_institutions_never_hold_each_others_secret_key(institution_keys):
    server, institutions = setup("third_party", institution_keys)
    third_party_public = ckks.load_context(server.public_context())
    institutions_public = ckks.load_context(institutions[0].public_context())
    assert server.holds_secret_key and not third_party_public.is_private()
    assert not institutions_public.is_private() and institutions[0].keys.is_private()
    assert not institutions[0].recipient.is_private()  # the institution encrypts for the third party, cannot decrypt
    rule = create_aggregation("fedavg")
    sealed = institutions[0].seal(rule.pack(UPDATES[0], 10))
    with pytest.raises(CiphertextError, match="no secret key"):
        ckks.decrypt(institutions[0].recipient, ckks.load_vector(institutions[0].recipient, sealed, "x"), "institution 0")
    with pytest.raises(ValueError, match="declared"):  # the institutions' key cannot read what the third party reads
        rule.unpack(ckks.decrypt(institutions[0].keys, ckks.load_vector(institutions[0].keys, sealed, "x"), "x"), 10, "institution 0")
    agg = server.aggregate(contributions(institutions, rule), rule)
    with pytest.raises(CiphertextError, match="expected"):  # the result is for the institutions only
        ckks.check_transport(agg.sealed, "the server", ckks.key_id(server._keys))


def test_blind_server_holds_only_a_public_context(institution_keys):
    server, institutions = setup("blind", institution_keys)
    assert server.public_context() is None and not server.holds_secret_key
    with pytest.raises(ValueError, match="refuses"):
        server.set_institutions_context(institution_keys)
    rule = create_aggregation("fedavg")
    agg = server.aggregate(contributions(institutions, rule), rule)
    with pytest.raises(CiphertextError, match="no secret key"):
        ckks.decrypt(server._institutions, ckks.load_vector(server._institutions, agg.sealed, "sum"), "the server")


def corrupt(sealed: Sealed) -> Sealed:
    data = bytearray(sealed.data)
    data[len(data) // 2] ^= 0xFF
    return Sealed(bytes(data), sealed.digest, sealed.key_id, sealed.values)


def truncate(sealed: Sealed) -> Sealed:
    return Sealed(sealed.data[: len(sealed.data) // 2], sealed.digest, sealed.key_id, sealed.values)


def foreign_key(sealed: Sealed) -> Sealed:
    """The same values encrypted under a key pair nobody else knows, honestly labelled with its key id."""
    return ckks.encrypt(ckks.key_pair(CFG), np.zeros(sealed.values))


def forged_key_id(sealed: Sealed) -> Sealed:
    """Encrypted under a foreign key but claiming the expected key id (only decryption can tell)."""
    other = ckks.encrypt(ckks.key_pair(CFG), np.full(sealed.values, 1.0))
    return Sealed(other.data, other.digest, sealed.key_id, sealed.values)


@pytest.mark.parametrize(
    "mode,fault,reason",
    [
        ("third_party", corrupt, "corrupted or truncated"),
        ("third_party", truncate, "corrupted or truncated"),
        ("third_party", foreign_key, "wrong key"),
        ("third_party", forged_key_id, "another key"),
        ("blind", corrupt, "corrupted or truncated"),
        ("blind", truncate, "corrupted or truncated"),
        ("blind", foreign_key, "wrong key"),
        ("plaintext", truncate, "corrupted or truncated"),
    ],
)
def test_a_bad_ciphertext_is_rejected_by_name_and_the_round_goes_on(mode, fault, reason, institution_keys):
    server, institutions = setup(mode, institution_keys)
    rule = create_aggregation("fedavg")
    parts = contributions(institutions, rule)
    parts[1] = Contribution(parts[1].sender, fault(parts[1].sealed), parts[1].weight)
    agg = server.aggregate(parts, rule)
    assert list(agg.rejected) == ["institution 1"] and reason in agg.rejected["institution 1"]
    assert agg.accepted == ["institution 0", "institution 2"]
    mean = rule.unpack(institutions[0].open(agg.sealed), agg.weight, "the server")
    expected = np.average([UPDATES[0], UPDATES[2]], axis=0, weights=[COUNTS[0], COUNTS[2]])
    assert np.abs(mean - expected).max() < 1e-6


@pytest.mark.parametrize("mode", WORKFLOWS.names())
def test_non_finite_update_is_refused_before_encryption_naming_the_institution(mode, institution_keys):
    _, institutions = setup(mode, institution_keys)
    update = UPDATES[0].copy()
    update[3] = np.nan
    with pytest.raises(CiphertextError, match="institution 2 holds 1 non-finite"):
        institutions[2].seal(create_aggregation("fedavg").pack(update, 10))


def test_plaintext_server_detects_non_finite_values_by_name(institution_keys):
    server, institutions = setup("plaintext", institution_keys)
    rule = create_aggregation("fedavg")
    parts = contributions(institutions, rule)
    bad = rule.pack(UPDATES[0], 10).astype(np.float32)
    bad[0] = np.inf
    parts[0] = Contribution("institution 0", Sealed(bad.tobytes(), ckks.digest(bad.tobytes()), "", len(bad)), 10.0)
    agg = server.aggregate(parts, rule)
    assert "non-finite" in agg.rejected["institution 0"] and agg.accepted == ["institution 1", "institution 2"]


def test_no_valid_update_is_an_error_listing_the_rejections(institution_keys):
    server, institutions = setup("blind", institution_keys)
    rule = create_aggregation("fedavg")
    parts = [Contribution(c.sender, truncate(c.sealed), c.weight) for c in contributions(institutions, rule)]
    with pytest.raises(ValueError, match="institution 2"):
        server.aggregate(parts, rule)


def test_encrypt_throughput_compares_with_raw_tenseal_on_the_same_values():
    out = encrypt_throughput(5000, CFG, repeats=1)
    assert out["values"] == 5000 and out["values_per_second"] > 0 and out["tenseal_values_per_second"] > 0
    assert out["ratio"] == pytest.approx(out["values_per_second"] / out["tenseal_values_per_second"])


def test_he_vs_training_is_the_median_ratio_per_encrypted_mode():
    m = {"encrypt_seconds": [1.0, 2.0, 3.0], "aggregate_seconds": [0.5, 0.5, 0.5], "decrypt_seconds": [0.5, 0.5, 0.5], "train_seconds": [4.0, 5.0, 6.0]}
    out = he_vs_training({"blind": m, "plaintext": {}})
    assert set(out) == {"blind"} and out["blind"]["he_seconds"] == 3.0 and out["blind"]["ratio"] == pytest.approx(3.0 / 5.0)
