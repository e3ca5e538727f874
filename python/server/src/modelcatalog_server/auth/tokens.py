"""RS256 access tokens (PyJWT): issue with the current key, verify against current + previous.

Verification pins the algorithm to RS256, picks the key by the ``kid`` header among keys from
configuration only, and requires ``iss``, ``aud``, ``sub``, ``iat``, ``nbf``, ``exp`` and ``jti``.
A token also carries its account's token generation (``gen``); whether that generation is still
current, and whether the token (by ``jti``) was revoked, is the database's to say (see
``hook.Authenticator``).

A token's signature and claims cannot change, and the keys are fixed for the life of the
process, so a token that passed verification is remembered (the last ``VERIFIED_TOKENS_KEPT``,
by their exact text) and accepted again without the RSA work until it expires; revocation is
not decided here and is checked on every call all the same.
"""

from __future__ import annotations

import hashlib
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from ..domain.errors import Unauthenticated
from ..files import write_private_file
from ..recent import Recent

ALGORITHM = "RS256"
#: Tolerated clock difference between the servers that issue and verify a token.
CLOCK_SKEW_SECONDS = 10
MIN_KEY_BITS = 2048
GENERATED_KEY_BITS = 3072
REQUIRED_CLAIMS = ("iss", "aud", "sub", "iat", "nbf", "exp", "jti")
#: Verified tokens remembered (about 1 KiB each), the least recently used forgotten first.
VERIFIED_TOKENS_KEPT = 1024


class KeyFileError(Exception):
    """A configured key file is missing, unreadable or not a usable RSA key."""


@dataclass(frozen=True)
class Principal:
    """The authenticated caller of an RPC, as the token names it, and the token itself: a
    sign-in token (a JWT) or an access token (``domain.access_tokens``), whose scope it says."""

    user_id: str
    username: str
    token_id: str
    token_generation: int
    valid_until_us: int
    """The last moment the token is accepted: its expiry plus the tolerated clock skew."""
    access_token_name: str | None = None
    """The name of the access token the call is made with; None for a sign-in token."""
    read_only: bool = False
    """Whether the token may only read (an access token of scope read)."""
    folder_ids: tuple[str, ...] | None = None
    """The only folders the token may use; None for all of its user's."""


@dataclass(frozen=True)
class IssuedToken:
    """An access token and the moment it stops being accepted."""

    token: str
    expire_time: datetime


def key_id(public_key: rsa.RSAPublicKey) -> str:
    """A stable identifier of a key: the start of the SHA-256 of its DER public key."""
    der = public_key.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return hashlib.sha256(der).hexdigest()[:16]


class TokenService:
    """Issues tokens for signed-in users and turns presented tokens back into principals."""

    def __init__(
        self,
        signing_key: rsa.RSAPrivateKey,
        previous_keys: Sequence[rsa.RSAPublicKey] = (),
        *,
        issuer: str,
        lifetime_seconds: int,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._signing_key = signing_key
        self._signing_kid = key_id(signing_key.public_key())
        self._verification_keys = {
            key_id(key): key for key in (signing_key.public_key(), *previous_keys)
        }
        self._issuer = issuer
        self._lifetime = lifetime_seconds
        self._clock = clock
        self._verified: Recent[str, Principal] = Recent(VERIFIED_TOKENS_KEPT)

    @property
    def signing_key(self) -> rsa.RSAPrivateKey:
        """The current private key; other secrets of the server are derived from it."""
        return self._signing_key

    def issue(self, user_id: str, username: str, generation: int) -> IssuedToken:
        """A new signed token for the user at its current token ``generation``, valid for the
        configured lifetime."""
        now = int(self._clock())
        expires = now + self._lifetime
        claims = {
            "iss": self._issuer,
            "aud": self._issuer,
            "sub": user_id,
            "username": username,
            "iat": now,
            "nbf": now,
            "exp": expires,
            "jti": uuid.uuid4().hex,
            "gen": generation,
        }
        token = jwt.encode(
            claims, self._signing_key, algorithm=ALGORITHM, headers={"kid": self._signing_kid}
        )
        return IssuedToken(token, datetime.fromtimestamp(expires, UTC))

    def verify(self, token: str) -> Principal:
        """The principal of a valid token; ``Unauthenticated`` for anything else."""
        known = self._verified.get(token, self._clock())
        if known is not None:
            return known
        principal = self._verified_now(token)
        self._verified.put(token, principal, principal.valid_until_us / 1_000_000)
        return principal

    def _verified_now(self, token: str) -> Principal:
        """The principal of a token checked in full: key, signature and every claim."""
        try:
            header = jwt.get_unverified_header(token)
            key = self._verification_keys.get(str(header.get("kid")))
            if header.get("alg") != ALGORITHM or key is None:
                raise jwt.InvalidTokenError("unknown key or algorithm")
            claims = jwt.decode(
                token,
                key,
                algorithms=[ALGORITHM],
                audience=self._issuer,
                issuer=self._issuer,
                leeway=CLOCK_SKEW_SECONDS,
                options={"require": list(REQUIRED_CLAIMS)},
            )
            # Tokens issued before generations existed carry none: generation 0, every
            # account's first.
            generation = claims.get("gen", 0)
            if not isinstance(generation, int) or isinstance(generation, bool):
                raise jwt.InvalidTokenError("the token generation is not an integer")
            return Principal(
                str(claims["sub"]),
                str(claims.get("username", "")),
                token_id=str(claims["jti"]),
                token_generation=generation,
                valid_until_us=(int(claims["exp"]) + CLOCK_SKEW_SECONDS) * 1_000_000,
            )
        except jwt.ExpiredSignatureError:
            raise Unauthenticated(
                "the access token has expired; sign in again", reason="TOKEN_EXPIRED"
            ) from None
        except jwt.InvalidTokenError:
            raise Unauthenticated(
                "the access token is not valid for this server; sign in again",
                reason="TOKEN_INVALID",
            ) from None


def load_rsa_private_key(path: Path) -> rsa.RSAPrivateKey:
    """Reads a PEM RSA private key (PKCS#1 from ssh-keygen -m PEM, or PKCS#8 from OpenSSL)."""
    try:
        key = serialization.load_pem_private_key(_read(path), password=None)
    except (ValueError, TypeError) as error:
        raise KeyFileError(f"{path} is not an unencrypted PEM private key: {error}") from None
    if not isinstance(key, rsa.RSAPrivateKey):
        raise KeyFileError(f"{path} is not an RSA private key; access tokens are signed with RS256")
    _check_size(path, key.key_size)
    return key


def load_rsa_public_key(path: Path) -> rsa.RSAPublicKey:
    """Reads a PEM RSA public key, or the public half of a PEM RSA private key."""
    data = _read(path)
    if b"PRIVATE KEY" in data:
        return load_rsa_private_key(path).public_key()
    try:
        key = serialization.load_pem_public_key(data)
    except ValueError as error:
        raise KeyFileError(f"{path} is not a PEM public key: {error}") from None
    if not isinstance(key, rsa.RSAPublicKey):
        raise KeyFileError(f"{path} is not an RSA public key")
    _check_size(path, key.key_size)
    return key


def load_or_create_signing_key(configured: Path | None, data_dir: Path) -> rsa.RSAPrivateKey:
    """The configured key, or the one generated in ``data_dir/jwt/`` on first start."""
    if configured is not None:
        return load_rsa_private_key(configured)
    path = data_dir / "jwt" / "signing-key.pem"
    if not path.exists():
        key = rsa.generate_private_key(public_exponent=65537, key_size=GENERATED_KEY_BITS)
        pem = key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        write_private_file(path, pem)
    return load_rsa_private_key(path)


def _read(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as error:
        raise KeyFileError(f"cannot read key file {path}: {error.strerror}") from error


def _check_size(path: Path, bits: int) -> None:
    if bits < MIN_KEY_BITS:
        raise KeyFileError(f"{path} is a {bits}-bit RSA key; use {MIN_KEY_BITS} bits or more")
