"""What each party of a federation is given out of band before the first round, and the configs that carry it.

:func:`write_credentials` makes, in one folder: the institutions' shared CKKS key pair (institutions only), the
third party's CKKS key pair (the server in ``third_party`` mode only) and its fingerprint, an Ed25519 signing key
per party and the roster of their public keys (:mod:`benchmark.federated.identity`). :meth:`Credentials.node_config`
is an institution's SuperNode config: its partition, the mode it agreed to (it refuses any other the server asks
for), the third party's key fingerprint it trusts, its key files and the roster; :meth:`Credentials.run_config` is
the ServerApp's. Nothing security-relevant is taken from the other side's messages.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from benchmark.config import CkksConfig
from benchmark.federated import ckks
from benchmark.federated.encryption import SERVER
from benchmark.federated.identity import write_identities


def institution_name(index: int) -> str:
    return f"institution {index}"


@dataclass(frozen=True)
class Credentials:
    institutions: int
    institution_keys: Path
    third_party_keys: Path
    third_party_key_id: str
    signing_keys: dict[str, Path]
    roster: Path

    def node_config(self, index: int, mode: str, data: Path | None = None) -> dict:
        """Institution ``index``'s node config for a federation in ``mode``; ``data``: its own data file
        (:func:`~benchmark.federated.partition.write_partitions`), else it reads the data stage's pooled file."""
        cfg = {"partition-id": index, "num-partitions": self.institutions, "mode": mode,
               "signing-key": str(self.signing_keys[institution_name(index)]), "roster": str(self.roster)}
        if data is not None:
            cfg["data"] = str(data)
        if mode != "plaintext":
            cfg["keys"] = str(self.institution_keys)
        if mode == "third_party":
            cfg["third-party-key"] = self.third_party_key_id
        return cfg

    def run_config(self, params: Path, mode: str, out: Path) -> dict:
        """The ServerApp's run config (``third-party-keys`` in ``third_party`` mode only)."""
        cfg = {"params": str(params), "mode": mode, "out": str(out), "signing-key": str(self.signing_keys[SERVER]),
               "roster": str(self.roster)}
        if mode == "third_party":
            cfg["third-party-keys"] = str(self.third_party_keys)
        return cfg


def write_credentials(folder: Path, institutions: int, cfg: CkksConfig) -> Credentials:
    """Fresh credentials for ``institutions`` institutions and the server in ``folder`` (module docstring)."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    institution_keys, third_party_keys = folder / "institution_keys.bin", folder / "third_party_keys.bin"
    ckks.write_key_pair(str(institution_keys), cfg)
    ckks.write_key_pair(str(third_party_keys), cfg)
    third_party_key_id = ckks.key_id(ckks.load_context(third_party_keys.read_bytes()))
    parties = [institution_name(i) for i in range(institutions)] + [SERVER]
    signing_keys, roster = write_identities(folder / "identities", parties)
    return Credentials(institutions, institution_keys, third_party_keys, third_party_key_id, signing_keys, roster)
