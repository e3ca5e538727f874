"""Bad frames on the wire get a clear status and a declared ErrorInfo reason from the real server.

Each case sends raw gRPC message bytes (a 5-byte prefix: compressed flag and length, then the
message) that grpclib's own client would never frame, and reads the status and the
``google.rpc.ErrorInfo`` the server answers with, as any client in any language would.
"""

from __future__ import annotations

import asyncio
import struct

import pytest
from google.rpc.error_details_pb2 import ErrorInfo
from grpclib.client import Channel
from grpclib.const import Cardinality, Status
from grpclib.encoding.proto import ProtoStatusDetailsCodec
from grpclib.exceptions import GRPCError

from .conftest import RunningServer
from .test_skeleton import RawBytes

SIGN_UP = "/modelcatalog.v1.AuthService/SignUp"
CALL_TIMEOUT_SECONDS = 10.0
#: The largest request message the server reads (README "Limits on the wire"). Not imported from
#: the server: its health module and grpcio's would both claim grpc/health/v1 in protobuf's pool.
MAX_REQUEST_MESSAGE_BYTES = (4 << 20) + (64 << 10)


def prefix(length: int, *, compressed: bool = False) -> bytes:
    """A gRPC message prefix: the compressed flag and the big-endian message length."""
    return struct.pack(">?I", compressed, length)


CASES = {
    "oversized message": (
        prefix(MAX_REQUEST_MESSAGE_BYTES + 1),
        Status.RESOURCE_EXHAUSTED,
        "MESSAGE_TOO_LARGE",
    ),
    "undecodable bytes": (
        prefix(4) + b"\x0a\x02\xff\xfe",
        Status.INVALID_ARGUMENT,
        "MALFORMED_REQUEST",
    ),
    "stream cut inside a message": (
        prefix(9) + b"\x0a\x07a",
        Status.INVALID_ARGUMENT,
        "MALFORMED_REQUEST",
    ),
    "stream cut right after a prefix": (
        prefix(9),
        Status.INVALID_ARGUMENT,
        "MALFORMED_REQUEST",
    ),
    "compressed message": (
        prefix(3, compressed=True) + b"\x0a\x01a",
        Status.UNIMPLEMENTED,
        "COMPRESSION_UNSUPPORTED",
    ),
}


async def send_raw(server: RunningServer, data: bytes) -> GRPCError:
    """Sends ``data`` as the whole request body of SignUp; the error the server answers."""
    channel = Channel(
        server.host,
        server.port,
        ssl=server.tls_context(),
        codec=RawBytes(),
        status_details_codec=ProtoStatusDetailsCodec(),
    )
    try:
        async with channel.request(
            SIGN_UP, Cardinality.UNARY_UNARY, bytes, bytes, timeout=CALL_TIMEOUT_SECONDS
        ) as stream:
            await stream.send_request()
            assert stream._stream is not None
            await stream._stream.send_data(data, end_stream=True)
            await stream.recv_message()
    except GRPCError as error:
        return error
    finally:
        channel.close()
    pytest.fail("the server accepted the request")


@pytest.mark.parametrize("case", CASES)
def test_bad_frames_get_a_status_and_a_declared_reason(server: RunningServer, case: str) -> None:
    """The server answers the expected status with an ErrorInfo naming the declared reason."""
    data, status, reason = CASES[case]
    error = asyncio.run(send_raw(server, data))
    assert error.status == status, error.message
    infos = [detail for detail in error.details or [] if isinstance(detail, ErrorInfo)]
    assert [(info.domain, info.reason) for info in infos] == [("modelcatalog.v1", reason)]
    assert "Traceback" not in server.log()
