"""Records become exactly the messages betterproto's own constructors build: the same state,
equal, and the same bytes."""

from __future__ import annotations

from typing import Any

import betterproto
from hypothesis import given
from hypothesis import strategies as st

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
