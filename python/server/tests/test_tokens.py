"""Access tokens: RS256 only, keys from configuration only, every required claim checked."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import stat
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from modelcatalog_server.auth import tokens as tokens_module
from modelcatalog_server.auth.tokens import (
    CLOCK_SKEW_SECONDS,
    GENERATED_KEY_BITS,
    REQUIRED_CLAIMS,
    IssuedToken,
    KeyFileError,
    Principal,
    TokenService,
    key_id,
    load_or_create_signing_key,
    load_rsa_private_key,
    load_rsa_public_key,
)
from modelcatalog_server.domain.errors import Unauthenticated

ISSUER = "modelcatalog-test"
LIFETIME = 3600


@dataclass(frozen=True)
class Keys:
    """RSA keys shared by the module: generating them is slow."""

    current: rsa.RSAPrivateKey
    previous: rsa.RSAPrivateKey
    stranger: rsa.RSAPrivateKey
    weak: rsa.RSAPrivateKey
    elliptic: ec.EllipticCurvePrivateKey


@pytest.fixture(scope="module")
def keys() -> Keys:
    def generate(bits: int) -> rsa.RSAPrivateKey:
        return rsa.generate_private_key(public_exponent=65537, key_size=bits)

    return Keys(
        current=generate(2048),
        previous=generate(2048),
        stranger=generate(2048),
        weak=generate(1024),
        elliptic=ec.generate_private_key(ec.SECP256R1()),
    )


@pytest.fixture
def service(keys: Keys) -> TokenService:
    return TokenService(keys.current, issuer=ISSUER, lifetime_seconds=LIFETIME)


# Helpers


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _segment(value: dict[str, Any]) -> str:
    return _b64url(json.dumps(value, separators=(",", ":")).encode())


def _claims(**overrides: Any) -> dict[str, Any]:
    """Claims of a valid token for user u1; an override of None removes the claim."""
    now = int(time.time())
    claims: dict[str, Any] = {
        "iss": ISSUER,
        "aud": ISSUER,
        "sub": "u1",
        "username": "alice",
        "iat": now,
        "nbf": now,
        "exp": now + 600,
        "jti": "a-unique-id",
    }
    claims.update(overrides)
    return {name: value for name, value in claims.items() if value is not None}


def _sign(claims: dict[str, Any], key: rsa.RSAPrivateKey, kid: str | None) -> str:
    headers = {"kid": kid} if kid is not None else None
    return jwt.encode(claims, key, algorithm="RS256", headers=headers)


def _expect_rejected(service: TokenService, token: str, reason: str = "TOKEN_INVALID") -> None:
    with pytest.raises(Unauthenticated) as caught:
        service.verify(token)
    assert caught.value.reason == reason


def _private_pem(key: Any, private_format: serialization.PrivateFormat) -> bytes:
    return bytes(
        key.private_bytes(serialization.Encoding.PEM, private_format, serialization.NoEncryption())
    )


def _public_pem(key: Any, public_format: serialization.PublicFormat) -> bytes:
    return bytes(key.public_key().public_bytes(serialization.Encoding.PEM, public_format))


def _same_public_key(a: rsa.RSAPublicKey, b: rsa.RSAPublicKey) -> bool:
    return a.public_numbers() == b.public_numbers()


# Issue and verify


def test_fresh_token_verifies_to_its_principal(service: TokenService) -> None:
    """A token just issued verifies to the user id and username it was issued for."""
    issued = service.issue("user-123", "alice", 7)
    claims = jwt.decode(issued.token, options={"verify_signature": False})
    assert service.verify(issued.token) == Principal(
        "user-123",
        "alice",
        token_id=claims["jti"],
        token_generation=7,
        valid_until_us=(claims["exp"] + CLOCK_SKEW_SECONDS) * 1_000_000,
    )


def test_issued_token_carries_every_required_claim_and_the_key_id(
    keys: Keys, service: TokenService
) -> None:
    """An issued token is RS256 with the signing key's kid and has all required claims."""
    token = service.issue("u1", "alice", 0).token
    header = jwt.get_unverified_header(token)
    assert header["alg"] == "RS256"
    assert header["kid"] == key_id(keys.current.public_key())
    claims = jwt.decode(token, options={"verify_signature": False})
    assert set(REQUIRED_CLAIMS) <= set(claims)
    assert (claims["iss"], claims["aud"], claims["sub"]) == (ISSUER, ISSUER, "u1")
    assert claims["exp"] - claims["iat"] == LIFETIME


def test_expire_time_is_issue_time_plus_lifetime(keys: Keys) -> None:
    """IssuedToken.expire_time is the clock's (whole) second plus the configured lifetime."""
    service = TokenService(
        keys.current, issuer=ISSUER, lifetime_seconds=900, clock=lambda: 1_700_000_000.9
    )
    issued = service.issue("u1", "alice", 0)
    assert issued == IssuedToken(issued.token, datetime.fromtimestamp(1_700_000_900, UTC))


def test_every_token_has_its_own_jti(service: TokenService) -> None:
    """Two tokens for the same user at the same moment still differ (unique jti)."""
    first = jwt.decode(service.issue("u1", "a", 0).token, options={"verify_signature": False})
    second = jwt.decode(service.issue("u1", "a", 0).token, options={"verify_signature": False})
    assert first["jti"] != second["jti"]


def test_token_without_a_generation_counts_as_generation_zero(
    keys: Keys, service: TokenService
) -> None:
    """A token issued before generations existed (no gen claim) is at generation 0."""
    kid = key_id(keys.current.public_key())
    assert service.verify(_sign(_claims(), keys.current, kid)).token_generation == 0


@pytest.mark.parametrize("generation", ["1", 1.5, True, None])
def test_token_with_a_malformed_generation_is_rejected(
    keys: Keys, service: TokenService, generation: object
) -> None:
    """A gen claim that is not an integer makes the token TOKEN_INVALID."""
    kid = key_id(keys.current.public_key())
    claims = {**_claims(), "gen": generation}
    _expect_rejected(service, _sign(claims, keys.current, kid))


class CountingDecode:
    """PyJWT's ``decode`` (the RSA signature check and the claims), counting its calls."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.calls = 0
        self._decode = jwt.decode
        monkeypatch.setattr(jwt, "decode", self)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        self.calls += 1
        return self._decode(*args, **kwargs)


def test_a_verified_token_is_verified_in_full_once_until_it_expires(
    keys: Keys, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Presented again, a token that passed verification is accepted without another RSA check
    (same principal), until the moment it expires, when it is checked in full again."""
    now = [time.time()]
    service = TokenService(
        keys.current, issuer=ISSUER, lifetime_seconds=LIFETIME, clock=lambda: now[0]
    )
    token = service.issue("u1", "alice", 0).token
    decode = CountingDecode(monkeypatch)
    first = service.verify(token)
    assert [service.verify(token) for _ in range(3)] == [first] * 3
    assert decode.calls == 1
    now[0] = first.valid_until_us / 1_000_000
    service.verify(token)
    assert decode.calls == 2


def test_a_refused_token_is_checked_in_full_every_time(
    keys: Keys, service: TokenService, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A token that failed verification is never remembered: each presentation is refused
    after a full check, and an altered copy of a verified token is refused too."""
    kid = key_id(keys.current.public_key())
    stranger = _sign(_claims(), keys.stranger, kid)
    genuine = service.issue("u1", "alice", 0).token
    service.verify(genuine)
    decode = CountingDecode(monkeypatch)
    for _ in range(2):
        _expect_rejected(service, stranger)
    assert decode.calls == 2
    head, body, signature = genuine.split(".")
    tampered = _segment({**json.loads(base64.urlsafe_b64decode(body + "==")), "sub": "u2"})
    _expect_rejected(service, f"{head}.{tampered}.{signature}")


def test_remembered_tokens_are_bounded_least_recently_used_first(
    keys: Keys, monkeypatch: pytest.MonkeyPatch
) -> None:
    """At most VERIFIED_TOKENS_KEPT tokens are remembered; the one used least recently is the
    one checked in full again."""
    monkeypatch.setattr(tokens_module, "VERIFIED_TOKENS_KEPT", 2)
    service = TokenService(keys.current, issuer=ISSUER, lifetime_seconds=LIFETIME)
    first, second, third = (service.issue(f"u{n}", "alice", 0).token for n in range(3))
    for token in (first, second, first, third):
        service.verify(token)
    decode = CountingDecode(monkeypatch)
    service.verify(first)
    assert decode.calls == 0
    service.verify(second)
    assert decode.calls == 1


def test_expired_token_is_rejected_as_expired(keys: Keys, service: TokenService) -> None:
    """A token whose exp lies further in the past than the leeway fails with TOKEN_EXPIRED."""
    past = TokenService(
        keys.current,
        issuer=ISSUER,
        lifetime_seconds=60,
        clock=lambda: time.time() - 60 - CLOCK_SKEW_SECONDS - 30,
    )
    _expect_rejected(service, past.issue("u1", "alice", 0).token, "TOKEN_EXPIRED")


def test_token_expired_within_the_leeway_still_verifies(keys: Keys, service: TokenService) -> None:
    """A token that expired a moment ago (less than the clock skew leeway) is still accepted."""
    past = TokenService(
        keys.current, issuer=ISSUER, lifetime_seconds=60, clock=lambda: time.time() - 62
    )
    assert service.verify(past.issue("u1", "alice", 0).token).user_id == "u1"


def test_tampered_payload_is_rejected(service: TokenService) -> None:
    """Changing the subject of a signed token invalidates its signature."""
    header, payload, signature = service.issue("u1", "alice", 0).token.split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    claims["sub"] = "u2"
    _expect_rejected(service, f"{header}.{_segment(claims)}.{signature}")


def test_token_signed_with_another_rsa_key_is_rejected(keys: Keys, service: TokenService) -> None:
    """A token signed by an unconfigured key fails even when it names the current kid."""
    kid = key_id(keys.current.public_key())
    _expect_rejected(service, _sign(_claims(), keys.stranger, kid))


@pytest.mark.parametrize("alg", ["none", "None", "NONE"])
def test_unsigned_token_is_rejected(keys: Keys, service: TokenService, alg: str) -> None:
    """A token with alg none (any spelling) and no signature is rejected."""
    header = {"alg": alg, "typ": "JWT", "kid": key_id(keys.current.public_key())}
    _expect_rejected(service, f"{_segment(header)}.{_segment(_claims())}.")


@pytest.mark.parametrize(
    "public_format",
    [serialization.PublicFormat.SubjectPublicKeyInfo, serialization.PublicFormat.PKCS1],
)
def test_hs256_signed_with_the_public_key_is_rejected(
    keys: Keys, service: TokenService, public_format: serialization.PublicFormat
) -> None:
    """Key confusion: HS256 with the public key's PEM as the HMAC secret is rejected."""
    header = {"alg": "HS256", "typ": "JWT", "kid": key_id(keys.current.public_key())}
    signing_input = f"{_segment(header)}.{_segment(_claims())}"
    secret = _public_pem(keys.current, public_format)
    signature = hmac.new(secret, signing_input.encode(), hashlib.sha256).digest()
    _expect_rejected(service, f"{signing_input}.{_b64url(signature)}")


@pytest.mark.parametrize("missing", REQUIRED_CLAIMS)
def test_token_missing_a_required_claim_is_rejected(
    keys: Keys, service: TokenService, missing: str
) -> None:
    """A correctly signed token that lacks any one required claim is rejected."""
    kid = key_id(keys.current.public_key())
    _expect_rejected(service, _sign(_claims(**{missing: None}), keys.current, kid))


@pytest.mark.parametrize(
    "overrides",
    [
        pytest.param({"iss": "someone-else"}, id="issuer"),
        pytest.param({"aud": "someone-else"}, id="audience"),
        pytest.param({"aud": ["someone-else"]}, id="audience-list"),
    ],
)
def test_token_for_another_issuer_or_audience_is_rejected(
    keys: Keys, service: TokenService, overrides: dict[str, Any]
) -> None:
    """A correctly signed token with a foreign iss or aud is rejected."""
    kid = key_id(keys.current.public_key())
    _expect_rejected(service, _sign(_claims(**overrides), keys.current, kid))


def test_token_issued_by_a_service_with_another_issuer_is_rejected(
    keys: Keys, service: TokenService
) -> None:
    """The same key under another issuer name does not produce tokens this service accepts."""
    other = TokenService(keys.current, issuer="other", lifetime_seconds=LIFETIME)
    _expect_rejected(service, other.issue("u1", "alice", 0).token)


@pytest.mark.parametrize("kid", ["0123456789abcdef", "", None])
def test_token_with_unknown_or_missing_kid_is_rejected(
    keys: Keys, service: TokenService, kid: str | None
) -> None:
    """A token signed by the right key but naming an unknown kid, or none, is rejected."""
    _expect_rejected(service, _sign(_claims(), keys.current, kid))


def test_token_not_yet_valid_is_rejected(keys: Keys, service: TokenService) -> None:
    """A token whose nbf lies further in the future than the leeway is rejected."""
    kid = key_id(keys.current.public_key())
    later = int(time.time()) + CLOCK_SKEW_SECONDS + 60
    _expect_rejected(service, _sign(_claims(nbf=later, exp=later + 600), keys.current, kid))


def test_token_issued_in_the_future_is_rejected(keys: Keys, service: TokenService) -> None:
    """A token issued by a clock far ahead (iat and nbf in the future) is rejected."""
    ahead = TokenService(
        keys.current, issuer=ISSUER, lifetime_seconds=LIFETIME, clock=lambda: time.time() + 300
    )
    _expect_rejected(service, ahead.issue("u1", "alice", 0).token)


@pytest.mark.parametrize(
    "token",
    [
        "",
        "garbage",
        "a.b.c",
        "..",
        "Bearer x.y.z",
        "ü.ü.ü",
        f"{_segment({'alg': 'RS256'})}.not-json.sig",
        f"{_b64url(b'[1,2]')}.{_segment({'sub': 'u1'})}.sig",
        f"{_b64url(b'{')}.{_segment({'sub': 'u1'})}.sig",
    ],
)
def test_garbage_is_rejected_as_invalid(service: TokenService, token: str) -> None:
    """Strings that are not JWTs at all fail with TOKEN_INVALID, never another exception."""
    _expect_rejected(service, token)


def test_garbage_with_the_current_kid_is_rejected(keys: Keys, service: TokenService) -> None:
    """A well-formed header naming the current key over a broken payload is rejected."""
    header = {"alg": "RS256", "typ": "JWT", "kid": key_id(keys.current.public_key())}
    _expect_rejected(service, f"{_segment(header)}.{_b64url(b'[]')}.{_b64url(b'x' * 256)}")


# Rotation


def test_token_of_a_previous_key_verifies_after_rotation(keys: Keys) -> None:
    """After rotation, a token signed with the old key verifies when it is a previous key."""
    old = TokenService(keys.previous, issuer=ISSUER, lifetime_seconds=LIFETIME)
    token = old.issue("u1", "alice", 0).token
    rotated = TokenService(
        keys.current,
        [keys.previous.public_key()],
        issuer=ISSUER,
        lifetime_seconds=LIFETIME,
    )
    assert rotated.verify(token).user_id == "u1"
    new_token = rotated.issue("u1", "alice", 0).token
    assert jwt.get_unverified_header(new_token)["kid"] == key_id(keys.current.public_key())
    assert rotated.verify(new_token).user_id == "u1"


def test_token_of_an_unconfigured_key_does_not_verify(keys: Keys) -> None:
    """A token of a key that is neither current nor a configured previous key is rejected."""
    stranger = TokenService(keys.stranger, issuer=ISSUER, lifetime_seconds=LIFETIME)
    rotated = TokenService(
        keys.current,
        [keys.previous.public_key()],
        issuer=ISSUER,
        lifetime_seconds=LIFETIME,
    )
    _expect_rejected(rotated, stranger.issue("u1", "alice", 0).token)
    without_previous = TokenService(keys.current, issuer=ISSUER, lifetime_seconds=LIFETIME)
    old = TokenService(keys.previous, issuer=ISSUER, lifetime_seconds=LIFETIME)
    _expect_rejected(without_previous, old.issue("u1", "alice", 0).token)


def test_key_id_is_stable_and_distinguishes_keys(keys: Keys, tmp_path: Path) -> None:
    """key_id is 16 hex digits, equal for the same key however loaded, different across keys."""
    kid = key_id(keys.current.public_key())
    assert len(kid) == 16
    assert int(kid, 16) >= 0
    path = tmp_path / "public.pem"
    path.write_bytes(_public_pem(keys.current, serialization.PublicFormat.SubjectPublicKeyInfo))
    assert key_id(load_rsa_public_key(path)) == kid
    assert key_id(keys.previous.public_key()) != kid


# PEM loading


@pytest.mark.parametrize(
    ("private_format", "marker"),
    [
        (serialization.PrivateFormat.TraditionalOpenSSL, b"-----BEGIN RSA PRIVATE KEY-----"),
        (serialization.PrivateFormat.PKCS8, b"-----BEGIN PRIVATE KEY-----"),
    ],
)
def test_private_key_loads_from_pkcs1_and_pkcs8(
    keys: Keys, tmp_path: Path, private_format: serialization.PrivateFormat, marker: bytes
) -> None:
    """PKCS#1 (ssh-keygen -m PEM) and PKCS#8 (OpenSSL) private keys both load."""
    pem = _private_pem(keys.current, private_format)
    assert pem.startswith(marker)
    path = tmp_path / "key.pem"
    path.write_bytes(pem)
    loaded = load_rsa_private_key(path)
    assert loaded.private_numbers() == keys.current.private_numbers()


@pytest.mark.parametrize(
    ("public_format", "marker"),
    [
        (serialization.PublicFormat.SubjectPublicKeyInfo, b"-----BEGIN PUBLIC KEY-----"),
        (serialization.PublicFormat.PKCS1, b"-----BEGIN RSA PUBLIC KEY-----"),
    ],
)
def test_public_key_loads_from_spki_and_pkcs1(
    keys: Keys, tmp_path: Path, public_format: serialization.PublicFormat, marker: bytes
) -> None:
    """SPKI ("BEGIN PUBLIC KEY") and PKCS#1 public keys load as previous keys."""
    pem = _public_pem(keys.previous, public_format)
    assert pem.startswith(marker)
    path = tmp_path / "previous.pub.pem"
    path.write_bytes(pem)
    assert _same_public_key(load_rsa_public_key(path), keys.previous.public_key())


@pytest.mark.parametrize(
    "private_format",
    [serialization.PrivateFormat.TraditionalOpenSSL, serialization.PrivateFormat.PKCS8],
)
def test_public_key_is_taken_from_a_private_key_file(
    keys: Keys, tmp_path: Path, private_format: serialization.PrivateFormat
) -> None:
    """A previous key given as a private key file yields its public half."""
    path = tmp_path / "previous.pem"
    path.write_bytes(_private_pem(keys.previous, private_format))
    public = load_rsa_public_key(path)
    assert isinstance(public, rsa.RSAPublicKey)
    assert _same_public_key(public, keys.previous.public_key())


def _missing(_keys: Keys, path: Path) -> None:
    pass


def _not_pem(_keys: Keys, path: Path) -> None:
    path.write_bytes(b"this is not a key\n")


def _ec_private(keys: Keys, path: Path) -> None:
    path.write_bytes(_private_pem(keys.elliptic, serialization.PrivateFormat.PKCS8))


def _ec_private_traditional(keys: Keys, path: Path) -> None:
    path.write_bytes(_private_pem(keys.elliptic, serialization.PrivateFormat.TraditionalOpenSSL))


def _ec_public(keys: Keys, path: Path) -> None:
    path.write_bytes(_public_pem(keys.elliptic, serialization.PublicFormat.SubjectPublicKeyInfo))


def _weak_private(keys: Keys, path: Path) -> None:
    path.write_bytes(_private_pem(keys.weak, serialization.PrivateFormat.TraditionalOpenSSL))


def _weak_public(keys: Keys, path: Path) -> None:
    path.write_bytes(_public_pem(keys.weak, serialization.PublicFormat.SubjectPublicKeyInfo))


def _encrypted(keys: Keys, path: Path) -> None:
    path.write_bytes(
        keys.current.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.BestAvailableEncryption(b"secret"),
        )
    )


def _directory(_keys: Keys, path: Path) -> None:
    path.mkdir()


Writer = Callable[[Keys, Path], None]


@pytest.mark.parametrize(
    "write",
    [_missing, _not_pem, _ec_private, _ec_private_traditional, _weak_private, _encrypted],
)
def test_unusable_private_key_file_raises_key_file_error(
    keys: Keys, tmp_path: Path, write: Writer
) -> None:
    """Missing, non-PEM, EC, 1024-bit RSA or encrypted files fail with a message naming them."""
    path = tmp_path / "signing-key.pem"
    write(keys, path)
    with pytest.raises(KeyFileError) as caught:
        load_rsa_private_key(path)
    assert str(path) in str(caught.value)


@pytest.mark.parametrize(
    "write",
    [_missing, _directory, _not_pem, _ec_public, _ec_private, _weak_public, _weak_private],
)
def test_unusable_public_key_file_raises_key_file_error(
    keys: Keys, tmp_path: Path, write: Writer
) -> None:
    """Missing, non-PEM, EC or 1024-bit RSA previous keys fail with a message naming the file."""
    path = tmp_path / "previous.pem"
    write(keys, path)
    with pytest.raises(KeyFileError) as caught:
        load_rsa_public_key(path)
    assert str(path) in str(caught.value)


# Key file on first start


def test_signing_key_is_created_once_with_owner_only_permissions(tmp_path: Path) -> None:
    """Without a configured key, DATA/jwt/signing-key.pem is created 0600 once and reused."""
    data_dir = tmp_path / "data"
    first = load_or_create_signing_key(None, data_dir)
    path = data_dir / "jwt" / "signing-key.pem"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert first.key_size == GENERATED_KEY_BITS
    before = path.stat()
    second = load_or_create_signing_key(None, data_dir)
    after = path.stat()
    assert second.private_numbers() == first.private_numbers()
    assert (after.st_ino, after.st_mtime_ns) == (before.st_ino, before.st_mtime_ns)
    assert sorted(p.name for p in path.parent.iterdir()) == ["signing-key.pem"]


def test_configured_signing_key_is_loaded_and_nothing_is_created(
    keys: Keys, tmp_path: Path
) -> None:
    """A configured key file is used as is; the data directory gets no generated key."""
    configured = tmp_path / "configured.pem"
    configured.write_bytes(_private_pem(keys.current, serialization.PrivateFormat.PKCS8))
    data_dir = tmp_path / "data"
    loaded = load_or_create_signing_key(configured, data_dir)
    assert loaded.private_numbers() == keys.current.private_numbers()
    assert not (data_dir / "jwt").exists()


def test_configured_signing_key_that_is_missing_is_an_error(tmp_path: Path) -> None:
    """A configured key path that does not exist fails instead of generating a key."""
    configured = tmp_path / "nowhere.pem"
    with pytest.raises(KeyFileError, match=r"nowhere\.pem"):
        load_or_create_signing_key(configured, tmp_path / "data")
    assert not (tmp_path / "data").exists()
