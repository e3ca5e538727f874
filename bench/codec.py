"""Figure (6): the message codec, per message: microseconds to encode and to decode one.

The subject is ``modelcatalog.wire``, the codec of the SDK's channels and of the server. Its
baselines, in the same process and interleaved: betterproto's own ``bytes(message)`` and
``Message().parse(data)`` (what both ends used before), and protobuf's upb runtime on the
grpcio stubs' classes of the same contract (what the grpcio reference server uses). The
messages are the hot ones: the answers of ``GetModel``, ``ListModels`` (a page of 100) and
``GetModelVersion``, and the 1 MiB chunks of uploads and downloads.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import betterproto
from google.protobuf.message import Message

from modelcatalog import v1, wire
from modelcatalog.v1 import model_service_pb2

from ._report import Comparison
from ._session import MiB, Session

CODECS = ("wire", "betterproto", "upb")
OPERATIONS = ("encode", "decode")
_CREATED = datetime(2026, 5, 1, 12, 30, 15, 123456, tzinfo=UTC)


def _model(index: int) -> v1.Model:
    return v1.Model(
        id=f"0190c0de-{index:04x}-7000-8000-00000000000{index % 10}",
        folder_id="0190c0de-aaaa-7000-8000-000000000000",
        name=f"model-{index:05d}",
        description="a model of the benchmark",
        creator_username="bench",
        create_time=_CREATED,
        latest_version=3,
    )


_VERSION = v1.ModelVersion(
    model_id="0190c0de-0001-7000-8000-000000000000",
    version=2,
    file_name="model.onnx",
    content_type="application/octet-stream",
    size_bytes=123_456_789,
    sha256="ab" * 32,
    description="second",
    labels={"stage": "production", "owner": "vision"},
    creator_username="bench",
    create_time=_CREATED,
)
MESSAGES: dict[str, betterproto.Message] = {
    "GetModelResponse": v1.GetModelResponse(model=_model(1)),
    "ListModelsResponse of 100": v1.ListModelsResponse(
        models=[_model(index) for index in range(100)], next_page_token="t" * 40
    ),
    "GetModelVersionResponse": v1.GetModelVersionResponse(version=_VERSION),
    "upload chunk of 1 MiB": v1.UploadModelVersionRequest(chunk=bytes(MiB)),
    "download chunk of 1 MiB": v1.DownloadModelVersionResponse(chunk=bytes(MiB)),
}

COMPARISONS = [
    Comparison("codec", f"{operation} {name} wire", f"{operation} {name} {baseline}", "µs", "lower")
    for name in MESSAGES
    for operation in OPERATIONS
    for baseline in CODECS[1:]
]


async def run(bench: Session) -> None:
    budget = bench.sizes.unary_seconds / 4
    for _ in range(bench.sizes.repetitions):
        for name, message in MESSAGES.items():
            for operation in OPERATIONS:
                for codec in CODECS:
                    action = _action(codec, operation, message)
                    bench.results.add(f"{operation} {name} {codec}", _microseconds(action, budget))


def _action(codec: str, operation: str, message: betterproto.Message) -> Callable[[], Any]:
    cls = type(message)
    data = bytes(message)
    if codec == "upb":
        upb_class: type[Message] = getattr(model_service_pb2, cls.__name__)
        upb_message = upb_class.FromString(data)
        if operation == "encode":
            return upb_message.SerializeToString
        return lambda: upb_class.FromString(data)
    if codec == "wire":
        if operation == "encode":
            return lambda: wire.encode(message)
        return lambda: wire.decode(data, cls)
    if operation == "encode":
        return message.__bytes__
    return lambda: cls().parse(data)


def _microseconds(action: Callable[[], Any], budget: float) -> float:
    """The mean time of ``action`` over as many calls as ``budget`` seconds allow (at least 3),
    after one call that warms it up (the wire codec compiles a class on first use)."""
    action()
    calls = 0
    started = time.perf_counter()
    elapsed = 0.0
    while calls < 3 or elapsed < budget:
        action()
        calls += 1
        elapsed = time.perf_counter() - started
    return 1e6 * elapsed / calls
