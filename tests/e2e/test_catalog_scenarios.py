"""The README scenarios, run with the Python SDK against the real server over TLS."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from modelcatalog import AsyncClient, PermissionDenied, Unauthenticated, Unavailable

from .conftest import RunningServer, start_server

PASSWORD = "correct horse battery"
MISSING_ID = "00000000-0000-4000-8000-000000000000"

ClientFactory = Callable[[], AsyncClient]


@pytest.fixture
def connect(server: RunningServer) -> ClientFactory:
    """Makes SDK clients that trust the server's self-signed certificate."""
    return lambda: AsyncClient(server.address, ca_cert=server.ca_cert, timeout=30)


async def signed_in(connect: ClientFactory, username: str) -> AsyncClient:
    client = connect()
    await client.sign_up(username, PASSWORD)
    await client.sign_in(username, PASSWORD)
    return client


@pytest.fixture
async def users(connect: ClientFactory) -> AsyncIterator[tuple[AsyncClient, AsyncClient]]:
    """Two signed-in users, user1 and user2."""
    user1 = await signed_in(connect, "user1")
    user2 = await signed_in(connect, "user2")
    yield user1, user2
    user1.close()
    user2.close()


async def names(models: AsyncIterator[Any]) -> list[str]:
    return [model.name async for model in models]


async def test_create_model_without_folder_permission(
    users: tuple[AsyncClient, AsyncClient],
) -> None:
    """User 2 cannot create a model in user 1's folder."""
    user1, user2 = users
    folder = await user1.create_folder("user1-folder")
    with pytest.raises(PermissionDenied) as denied:
        await user2.create_model(folder.id, "intruder")
    assert denied.value.reason == "FOLDER_ACCESS_DENIED"
    assert await names(user1.list_models(folder.id)) == []


async def test_create_model_after_grant_folder_permission(
    users: tuple[AsyncClient, AsyncClient],
) -> None:
    """Once user 1 makes user 2 an editor, user 2 can create a model there."""
    user1, user2 = users
    folder = await user1.create_folder("user1-folder")
    await user1.grant_folder_access(folder.id, "user2", "editor")
    model = await user2.create_model(folder.id, "welcome")
    assert model.creator_username == "user2"
    assert await names(user1.list_models(folder.id)) == ["welcome"]


async def test_list_only_authorized_models(users: tuple[AsyncClient, AsyncClient]) -> None:
    """User 1 sees 2 models; user 2's folder stays invisible until shared, then 3."""
    user1, user2 = users
    folder1 = await user1.create_folder("one")
    await user1.create_model(folder1.id, "m1")
    await user1.create_model(folder1.id, "m2")
    folder2 = await user2.create_folder("two")
    await user2.create_model(folder2.id, "m3")
    assert await names(user1.list_models()) == ["m1", "m2"]
    assert [f.name async for f in user1.list_folders()] == ["one"]
    await user2.grant_folder_access(folder2.id, "user1", "viewer")
    assert await names(user1.list_models()) == ["m1", "m2", "m3"]
    assert await names(user1.list_models(page_size=1)) == ["m1", "m2", "m3"]


async def test_explain_access_names_the_grant_and_follows_its_revocation(
    users: tuple[AsyncClient, AsyncClient],
) -> None:
    """The owner is told which grant gives user 2 access to a model; after revocation, none."""
    user1, user2 = users
    folder = await user1.create_folder("shared")
    model = await user1.create_model(folder.id, "resnet")
    await user1.grant_folder_access(folder.id, "user2", "viewer")
    granted = await user2.explain_access(model_id=model.id)
    assert (granted.folder_id, granted.username, granted.grant.granted_by_username) == (
        folder.id,
        "user2",
        "user1",
    )
    assert granted.explanation.startswith("user2 is a viewer of folder 'shared': granted by user1")
    await user1.grant_folder_access(folder.id, "user2", "editor")
    deploy = await user2.create_access_token("deploy", 3600, read_only=True)
    capped = await user2.explain_access(folder.id, access_token_id=deploy.access_token.id)
    assert (capped.role, capped.grant.role, capped.access_token.name) == (1, 2, "deploy")
    await user1.revoke_folder_access(folder.id, "user2")
    revoked = await user1.explain_access(folder.id, username="user2")
    assert revoked.role == 0
    assert revoked.explanation.startswith("user2 has no role in folder 'shared'")
    with pytest.raises(PermissionDenied):
        await user2.explain_access(model_id=model.id)


async def test_strangers_learn_nothing_from_ids(users: tuple[AsyncClient, AsyncClient]) -> None:
    """Another's folder or model and a missing id give the same status and message."""
    user1, stranger = users
    folder = await user1.create_folder("private")
    model = await user1.create_model(folder.id, "secret")
    attempts: dict[str, tuple[Callable[[str], Awaitable[object]], str]] = {
        "get_folder": (stranger.get_folder, folder.id),
        "get_model": (stranger.get_model, model.id),
        "create_model": (lambda folder_id: stranger.create_model(folder_id, "x"), folder.id),
    }
    for name, (call, existing_id) in attempts.items():
        outcomes = []
        for resource_id in (existing_id, MISSING_ID):
            with pytest.raises(PermissionDenied) as denied:
                await call(resource_id)
            outcomes.append((denied.value.status, denied.value.reason, denied.value.message))
        assert outcomes[0] == outcomes[1], name


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _forged_tokens(real_token: str, signing_key: Path) -> dict[str, str]:
    """Tokens an attacker could present, each built around a real one's claims."""
    header = jwt.get_unverified_header(real_token)
    claims = jwt.decode(real_token, options={"verify_signature": False})
    key = serialization.load_pem_private_key(signing_key.read_bytes(), password=None)
    assert isinstance(key, rsa.RSAPrivateKey)
    public_pem = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    other_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    now = int(time.time())
    expired = {**claims, "iat": now - 7200, "nbf": now - 7200, "exp": now - 3600}
    head, _, signature = real_token.split(".")
    tampered_claims = {**claims, "sub": MISSING_ID}
    hs_header = _b64(json.dumps({"alg": "HS256", "typ": "JWT", "kid": header["kid"]}).encode())
    hs_body = _b64(json.dumps(claims).encode())
    hs_signature = hmac.new(public_pem, f"{hs_header}.{hs_body}".encode(), hashlib.sha256)
    none_header = _b64(json.dumps({"alg": "none", "typ": "JWT", "kid": header["kid"]}).encode())
    return {
        "expired": jwt.encode(expired, key, algorithm="RS256", headers={"kid": header["kid"]}),
        "tampered": f"{head}.{_b64(json.dumps(tampered_claims).encode())}.{signature}",
        "wrong key": jwt.encode(
            claims, other_key, algorithm="RS256", headers={"kid": header["kid"]}
        ),
        "alg none": f"{none_header}.{hs_body}.",
        "HS256 with the public key": f"{hs_header}.{hs_body}.{_b64(hs_signature.digest())}",
    }


async def test_forged_and_expired_tokens_are_rejected(
    connect: ClientFactory, signing_key: Path
) -> None:
    """Expired, tampered, wrong-key, alg-none and HS256-with-public-key tokens: UNAUTHENTICATED."""
    async with await signed_in(connect, "alice") as alice:
        await alice.create_folder("mine")
        assert alice.token
        forged = _forged_tokens(alice.token, signing_key)
    for kind, token in forged.items():
        async with connect() as attacker:
            attacker.token = token
            with pytest.raises(Unauthenticated) as rejected:
                await attacker.get_current_user()
            expected = "TOKEN_EXPIRED" if kind == "expired" else "TOKEN_INVALID"
            assert rejected.value.reason == expected, kind
            with pytest.raises(Unauthenticated):
                [folder async for folder in attacker.list_folders()]


async def test_data_and_tokens_survive_a_restart(tmp_path: Path, signing_key: Path) -> None:
    """Accounts, folders and issued tokens stay valid when the server restarts on its data."""
    first = start_server(tmp_path, signing_key=signing_key)
    async with AsyncClient(first.address, ca_cert=first.ca_cert) as alice:
        await alice.sign_up("alice", PASSWORD)
        await alice.sign_in("alice", PASSWORD)
        await alice.create_folder("kept")
        token = alice.token
    assert first.stop() == 0
    second = start_server(tmp_path, data_dir=first.data_dir, signing_key=signing_key)
    try:
        async with AsyncClient(second.address, ca_cert=second.ca_cert, token=token) as alice:
            assert [f.name async for f in alice.list_folders()] == ["kept"]
    finally:
        assert second.stop() == 0


async def test_client_without_the_ca_cannot_connect(server: RunningServer) -> None:
    """A client that does not trust the self-signed certificate fails with a hint."""
    async with AsyncClient(server.address) as client:
        with pytest.raises(Unavailable) as unavailable:
            await client.sign_in("alice", PASSWORD)
    assert "ca_cert" in unavailable.value.message
