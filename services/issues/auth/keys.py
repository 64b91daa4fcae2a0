"""The issuer's signing keys: loaded from a folder of PEM files (kid = file name), newest signs, all published."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import re
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from services.kit.jwt import public_jwk, sign


@dataclass(frozen=True)
class SigningKey:
    kid: str
    private_pem: str
    public_pem: str


class KeyRing:
    """Every key in the folder is published in the JWKS; the last by name signs new tokens."""

    def __init__(self, keys: list[SigningKey], *, ordered: bool = False) -> None:
        """`ordered`: keys are given oldest first; otherwise they are sorted by kid (file names)."""
        if not keys:
            raise ValueError("no signing keys")
        self.keys = list(keys) if ordered else sorted(keys, key=lambda k: k.kid)

    @property
    def current(self) -> SigningKey:
        return self.keys[-1]

    def sign(self, claims: dict[str, Any]) -> str:
        return sign(claims, self.current.private_pem, self.current.kid)

    def jwks(self) -> dict[str, Any]:
        return {"keys": [public_jwk(k.public_pem, k.kid) for k in self.keys]}

    @classmethod
    def from_folder(cls, folder: Path, *, generate_if_empty: bool) -> KeyRing:
        folder.mkdir(parents=True, exist_ok=True)
        files = sorted(folder.glob("*.pem"))
        if not files and generate_if_empty:
            files = [write_new_key(folder)]
        return cls([load_key(f) for f in files])


def load_key(path: Path) -> SigningKey:
    return _signing_key(path.read_text(), kid=path.stem, source=path.name)


def _signing_key(private_pem: str, *, kid: str | None, source: str) -> SigningKey:
    private = serialization.load_pem_private_key(private_pem.encode(), password=None)
    if not isinstance(private, ec.EllipticCurvePrivateKey) or private.curve.name != "secp256r1":
        raise ValueError(f"{source}: signing keys must be EC P-256 (ES256)")
    public_pem = (
        private.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )
    return SigningKey(kid=kid or jwk_thumbprint(public_pem), private_pem=private_pem, public_pem=public_pem)


def jwk_thumbprint(public_pem: str) -> str:
    """RFC 7638 thumbprint of an EC public key, shortened: a kid that follows from the key itself."""
    jwk = public_jwk(public_pem, kid="")
    canonical = json.dumps(
        {k: jwk[k] for k in ("crv", "kty", "x", "y")}, separators=(",", ":"), sort_keys=True
    )
    return base64.urlsafe_b64encode(hashlib.sha256(canonical.encode()).digest()).rstrip(b"=").decode()[:22]


_PEM_BLOCK = re.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY-----.+?-----END [A-Z ]*PRIVATE KEY-----", re.DOTALL)


def keys_from_pem_bundle(bundle: str) -> list[SigningKey]:
    """Keys from one text of concatenated PEM blocks, oldest first; the last signs (kid = thumbprint).

    For configuration through an environment variable: to rotate, append the new key; later drop the old.
    """
    blocks = _PEM_BLOCK.findall(bundle)
    if not blocks:
        raise ValueError("HUANZHI_ISSUES_SIGNING_KEYS_PEM holds no PEM private key")
    return [
        _signing_key(block + "\n", kid=None, source=f"PEM block {i + 1}") for i, block in enumerate(blocks)
    ]


def write_new_key(folder: Path) -> Path:
    """Generate a P-256 key named `<UTC timestamp>-<random>.pem` (so newer names sort later).

    The timestamp has microseconds: two keys made within one second must still sort by age.
    """
    private = ec.generate_private_key(ec.SECP256R1())
    pem = private.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    name = f"{datetime.now(UTC):%Y%m%dT%H%M%S%f}-{secrets.token_hex(4)}.pem"
    path = folder / name
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(pem)
    return path
