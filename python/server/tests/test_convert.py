"""Records become exactly the messages betterproto's own constructors build: the same state,
equal, and the same bytes."""

from __future__ import annotations

from typing import Any

import betterproto
from hypothesis import given
from hypothesis import strategies as st

from modelcatalog import wire
from modelcatalog_server.services import _convert
from modelcatalog_server.storage.records import (
    FolderRecord,
    MemberRecord,
    ModelRecord,
    Role,
    UserRecord,
    VersionRecord,
)

texts = st.text(max_size=40)
# Stored times: from the epoch to year 9999, in microseconds.
times = st.integers(min_value=0, max_value=253_402_300_799_999_999)
counts = st.integers(min_value=0, max_value=2**63 - 1)
roles = st.sampled_from(Role)

users = st.builds(UserRecord, texts, texts, times)
folders = st.builds(FolderRecord, texts, texts, texts, texts, times, roles, times)
members = st.builds(MemberRecord, texts, texts, roles, times)
models = st.builds(ModelRecord, texts, texts, texts, texts, texts, times, counts, roles, times)
versions = st.builds(
    VersionRecord,
    texts,
    counts,
    texts,
    texts,
    counts,
    texts,
    texts,
    st.dictionaries(texts, texts, max_size=4),
    texts,
    times,
    times,
)


def state(message: betterproto.Message) -> dict[str, Any]:
    """Everything a message holds, as betterproto keeps it."""
    return dict(object.__getattribute__(message, "__dict__"))


def assert_same(built: betterproto.Message, expected: betterproto.Message) -> None:
    assert type(built) is type(expected)
    assert state(built) == state(expected)
    assert built == expected
    assert bytes(built) == bytes(expected)


def constructed(built: betterproto.Message) -> betterproto.Message:
    """The message betterproto's constructor builds from the same field values."""
    fields = {
        name: value
        for name, value in state(built).items()
        if name not in ("_serialized_on_wire", "_unknown_fields", "_group_current")
    }
    return type(built)(**fields)


@given(users, folders, members, models, versions)
def test_converted_records_equal_constructed_messages(
    user: UserRecord,
    folder: FolderRecord,
    member: MemberRecord,
    model: ModelRecord,
    version: VersionRecord,
) -> None:
    """Every record converter builds the message betterproto's constructor builds."""
    for built in (
        _convert.user(user),
        _convert.folder(folder),
        _convert.member(member),
        _convert.model(model),
        _convert.version(version),
    ):
        assert_same(built, constructed(built))


@given(models, roles, st.text(min_size=250, max_size=300))
def test_a_remembered_model_encoding_is_the_models_encoding(
    record: ModelRecord, other_role: Role, long_text: str
) -> None:
    """``encoded_model`` is the bytes of the model's message, remembered or not, whatever
    the caller's role (which the message does not show)."""
    expected = wire.encode(_convert.model(record))
    assert _convert.encoded_model(record) == expected
    assert _convert.encoded_model(record._replace(caller_role=other_role)) == expected
    described = record._replace(description=long_text)
    assert _convert.encoded_model(described) == wire.encode(_convert.model(described))


def test_remembered_model_encodings_are_bounded() -> None:
    """However many models are listed, only the last ``REMEMBERED_MODELS`` are kept, and one
    with a long name or description (its encoding large) never is."""
    many = _convert.REMEMBERED_MODELS + 10
    records = [
        ModelRecord(f"m{n}", "f", f"model-{n}", "", "alice", n, 0, Role.VIEWER, n)
        for n in range(many)
    ]
    for record in records:
        _convert.encoded_model(record)
    remembered = _convert._remembered_models
    assert len(remembered) == _convert.REMEMBERED_MODELS
    assert remembered.get(("m0", "f", "model-0", "", "alice", 0, 0, 0), 0.0) is None
    long = records[-1]._replace(id="long", description="x" * 300)
    _convert.encoded_model(long)
    long_key = (
        "long",
        "f",
        long.name,
        long.description,
        "alice",
        long.created_us,
        0,
        long.updated_us,
    )
    assert remembered.get(long_key, 0.0) is None
