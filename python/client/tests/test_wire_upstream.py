"""The betterproto internals the wire codec relies on are still there and still behave so."""

from __future__ import annotations

from datetime import UTC, datetime
from importlib.metadata import version

import betterproto

from modelcatalog import v1
from modelcatalog.wire import _upstream


def test_installed_betterproto_is_the_pinned_one() -> None:
    """The internals were checked against exactly this version; an upgrade needs a re-check."""
    assert {name: version(name) for name in _upstream.PINNED} == _upstream.PINNED


def test_instance_state_holds_placeholders_and_the_three_bookkeeping_attributes() -> None:
    """An unset field holds PLACEHOLDER until read; the state keys are the ones the codec writes."""
    request = v1.UploadModelVersionRequest(chunk=b"abc")
    state = _upstream.instance_state(request)
    assert state["header"] is _upstream.PLACEHOLDER
    assert state[_upstream.SERIALIZED_ON_WIRE] is True
    assert state[_upstream.UNKNOWN_FIELDS] == b""
    assert state[_upstream.GROUP_CURRENT] == {"content": "chunk"}
    expected_keys = {"header", "chunk", "trailer", *_bookkeeping()}
    assert set(state) == expected_keys
    assert set(_upstream.instance_state(v1.UploadModelVersionRequest().parse(b""))) == (
        expected_keys
    )
    assert not _upstream.instance_state(v1.Model())[_upstream.SERIALIZED_ON_WIRE]


def test_class_metadata_keeps_its_shape() -> None:
    """Fields in declaration order, default makers, value classes and map entry classes."""
    metadata = _upstream.metadata(v1.ModelVersion)
    assert list(metadata.meta_by_field_name)[:3] == ["model_id", "version", "file_name"]
    labels = metadata.meta_by_field_name["labels"]
    assert (labels.number, labels.proto_type) == (8, betterproto.TYPE_MAP)
    assert metadata.default_gen["labels"] is dict
    assert metadata.default_gen["model_id"] is str
    assert metadata.cls_by_field["create_time"] is datetime
    entry = _upstream.metadata(metadata.cls_by_field["labels"])
    assert {name: meta.number for name, meta in entry.meta_by_field_name.items()} == {
        "key": 1,
        "value": 2,
    }
    header = _upstream.metadata(v1.UploadModelVersionHeader)
    assert header.meta_by_field_name["size_bytes"].optional
    assert header.default_gen["size_bytes"] is type(None)
    assert _upstream.metadata(v1.ListModelsResponse).default_gen["models"] is list
    request = _upstream.metadata(v1.DownloadModelVersionResponse)
    assert request.meta_by_field_name["chunk"].group == "content"
    assert request.cls_by_field["version"] is v1.ModelVersion


def test_a_built_message_behaves_as_a_parsed_one() -> None:
    """A message made from a state dict reads, compares and reports its oneof as betterproto's."""
    state = {
        "header": _upstream.PLACEHOLDER,
        "chunk": b"abc",
        _upstream.SERIALIZED_ON_WIRE: True,
        _upstream.UNKNOWN_FIELDS: b"",
        _upstream.GROUP_CURRENT: {"content": "chunk"},
    }
    built = _upstream.build_message(v1.UploadModelVersionRequest, state)
    parsed = v1.UploadModelVersionRequest().parse(b"\x12\x03abc")
    assert built == parsed
    assert betterproto.which_one_of(built, "content") == ("chunk", b"abc")
    assert betterproto.serialized_on_wire(built)
    assert bytes(built) == b"\x12\x03abc"


def test_timestamps_convert_as_the_codec_reproduces() -> None:
    """The epoch is the default; a Timestamp is read back into an aware UTC datetime."""
    assert datetime(1970, 1, 1, tzinfo=UTC) == _upstream.DATETIME_ZERO
    assert _upstream.timestamp_to_datetime(b"\x08\x01\x10\xe8\x07") == datetime(
        1970, 1, 1, 0, 0, 1, 1, tzinfo=UTC
    )


def test_the_encoding_and_decoding_methods_are_betterprotos() -> None:
    """The methods a class may override to encode or decode itself exist on Message."""
    for name in (*_upstream.ENCODING_METHODS, *_upstream.DECODING_METHODS):
        assert name in vars(betterproto.Message), name
    assert _upstream.overrides(v1.Model, _upstream.ENCODING_METHODS) == []


def test_generated_classes_are_made_by_the_init_dataclasses_generates() -> None:
    """The generated classes' ``__init__`` is recognised as dataclasses'; a hand-written one not."""

    class Custom(v1.GetModelRequest):
        def __init__(self) -> None:
            super().__init__(model_id="fixed")

    assert _upstream.dataclass_init(v1.Model)
    assert not _upstream.dataclass_init(Custom)
    for name in _upstream.CONSTRUCTION_METHODS:
        assert name in vars(betterproto.Message), name


def _bookkeeping() -> set[str]:
    return {_upstream.SERIALIZED_ON_WIRE, _upstream.UNKNOWN_FIELDS, _upstream.GROUP_CURRENT}
