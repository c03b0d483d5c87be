"""Certificates and SuperNode keys for a Flower deployment run over TLS with authenticated SuperNodes.

:func:`write_tls` makes, for one run: a certificate authority (a self-signed P-384 CA certificate), the
SuperLink's certificate signed by it for the SuperLink's host names and addresses, and one P-384 key pair per
SuperNode in OpenSSH format (the forms ``flower-supernode --auth-supernode-private-key`` and ``flwr supernode
register`` take). The
SuperLink serves TLS with its certificate and, started with ``--enable-supernode-auth``, accepts only the
SuperNodes whose public keys were registered; the SuperNodes and ``flwr`` trust the CA alone
(``--root-certificates``). Keys are written readable by their owner only.
"""

from __future__ import annotations

import datetime
import ipaddress
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from benchmark.io import atomic_path

VALIDITY = datetime.timedelta(days=30)


@dataclass(frozen=True)
class TlsFiles:
    """The CA certificate, the SuperLink's certificate and key, and per SuperNode (private key, public key)."""

    ca_certificate: Path
    server_certificate: Path
    server_key: Path
    node_keys: list[tuple[Path, Path]]


def _write(path: Path, data: bytes, private: bool) -> Path:
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)
        if private:
            tmp.chmod(0o600)
    return path


def _private_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())


def _name(host: str) -> x509.GeneralName:
    """An IP address or DNS name entry of a certificate's subject alternative names."""
    try:
        return x509.IPAddress(ipaddress.ip_address(host))
    except ValueError:
        return x509.DNSName(host)


def _certificate(subject: str, public_key, issuer: str, signer: ec.EllipticCurvePrivateKey, is_ca: bool,
                 hosts: list[str]) -> x509.Certificate:
    now = datetime.datetime.now(datetime.timezone.utc)
    builder = (x509.CertificateBuilder()
               .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)]))
               .issuer_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, issuer)]))
               .public_key(public_key).serial_number(x509.random_serial_number())
               .not_valid_before(now - datetime.timedelta(minutes=5)).not_valid_after(now + VALIDITY)
               .add_extension(x509.BasicConstraints(ca=is_ca, path_length=None), critical=True))
    if hosts:
        builder = builder.add_extension(x509.SubjectAlternativeName([_name(h) for h in hosts]), critical=False)
    return builder.sign(signer, hashes.SHA384())


def write_tls(folder: Path, supernodes: int, hosts: tuple[str, ...] = ("127.0.0.1", "localhost")) -> TlsFiles:
    """A CA, the SuperLink's certificate for ``hosts`` and ``supernodes`` SuperNode key pairs in ``folder``."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    ca_key = ec.generate_private_key(ec.SECP384R1())
    ca = _certificate("facebench federation CA", ca_key.public_key(), "facebench federation CA", ca_key, True, [])
    server_key = ec.generate_private_key(ec.SECP384R1())
    server = _certificate("facebench SuperLink", server_key.public_key(), "facebench federation CA", ca_key, False,
                          list(hosts))
    pem = serialization.Encoding.PEM
    files = TlsFiles(_write(folder / "ca.crt", ca.public_bytes(pem), False),
                     _write(folder / "superlink.crt", server.public_bytes(pem), False),
                     _write(folder / "superlink.key", _private_pem(server_key), True), [])
    for i in range(supernodes):
        key = ec.generate_private_key(ec.SECP384R1())
        public = key.public_key().public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH)
        private = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.OpenSSH,
                                    serialization.NoEncryption())
        files.node_keys.append((_write(folder / f"supernode{i}.key", private, True),
                                _write(folder / f"supernode{i}.pub", public, False)))
    return files
