"""The grpclib and h2 internals the transport relies on are still there and still behave so."""

from __future__ import annotations

import inspect
from importlib.metadata import version

import grpclib.server
from grpclib.protocol import Stream

from modelcatalog_server.transport import _upstream
from modelcatalog_server.transport._http2 import GuardedConnection


def test_installed_versions_are_the_pinned_ones() -> None:
    """The internals were checked against exactly these versions; an upgrade needs a re-check."""
    assert {name: version(name) for name in _upstream.PINNED} == _upstream.PINNED


def test_h2_still_dispatches_frames_and_headers_through_the_overridden_methods() -> None:
    """Rate limits and stream refusal hook these two methods and the closed-stream table."""
    connection = GuardedConnection.__mro__[2]
    assert GuardedConnection.__mro__[1] is _upstream.TunedConnection
    assert connection is _upstream.H2Connection
    for name in ("_receive_frame", "_receive_headers_frame", "_open_streams"):
        assert callable(getattr(connection, name))
    # The encoder's table is capped after h2 applied the client's HEADER_TABLE_SIZE to it.
    assert "self.encoder.header_table_size = setting.new_value" in inspect.getsource(
        connection._acknowledge_settings
    )
    receive = inspect.getsource(connection.receive_data)
    assert "self._receive_frame(frame)" in receive
    assert "_terminate_connection(e.error_code)" in receive  # GOAWAY carries our error code
    assert "self._update_header_buffer(f)" in inspect.getsource(_upstream.FrameBuffer.__next__)
    fresh = connection()
    assert fresh._frame_dispatch_table[_upstream.DataFrame] == fresh._receive_data_frame
    assert "self._frame_dispatch_table[frame.__class__]" in inspect.getsource(
        connection._receive_frame
    )
    assert fresh.highest_inbound_stream_id == 0
    assert isinstance(fresh._closed_streams, dict)


def test_grpclib_handler_accept_and_release_are_as_the_transport_expects() -> None:
    """The handler is built per connection with this signature, and releases in ``finally``.

    ``GuardedHandler`` releases a stream when its task ends, because grpclib's request handler
    only releases it from inside the task: a task cancelled before it starts never does.
    """
    accept = inspect.signature(_upstream.GrpclibHandler.accept)
    assert list(accept.parameters) == ["self", "stream", "headers", "release_stream"]
    # The method's source, not the class's: for a class, inspect parses the whole module with
    # ast, which CPython 3.11.2 can fail with "AST constructor recursion depth mismatch" when
    # another thread compiles at the same moment (CPython gh-106905); it did once in CI.
    assert "self._tasks[stream] = " in inspect.getsource(_upstream.GrpclibHandler.accept)
    request_handler = inspect.getsource(grpclib.server.request_handler)
    assert "finally:\n        release_stream()" in request_handler


def test_stream_counts_received_bytes_and_reads_through_recv_data() -> None:
    """Progress is measured with ``data_received``; guards wrap ``recv_data``."""
    assert Stream.data_received == 0
    assert inspect.iscoroutinefunction(Stream.recv_data)
    processor_source = inspect.getsource(_upstream.EventsProcessor.process_data_received)
    assert "stream.data_received += size" in processor_source


def test_frame_buffer_keeps_unparsed_bytes_in_front_and_checks_lengths_late() -> None:
    """The early frame-length check reads the next header from ``FrameBuffer._data``, where h2
    keeps unparsed bytes and consumes frames from the front; h2's own check comes only once the
    whole frame has arrived, which is why the early one exists."""
    buffer = _upstream.FrameBuffer(server=False)
    buffer.max_frame_size = 16384
    announced = (1 << 20).to_bytes(3, "big") + bytes([0, 0]) + (1).to_bytes(4, "big")
    buffer.add_data(announced + b"x" * 100)
    assert _upstream.next_frame_header(buffer) == announced
    assert list(buffer) == []  # no error yet: h2 waits for the whole frame
    source = inspect.getsource(_upstream.FrameBuffer.__next__)
    assert source.index("raise StopIteration") < source.index("self._validate_frame_length")
    assert "del self._data[:9+length]" in source


def test_stream_counts_sent_bytes_where_the_metrics_read_them() -> None:
    """The metrics read a call's ``data_sent``, which ``send_data`` adds every DATA frame to."""
    assert Stream.data_sent == 0
    assert "self.data_sent += f_chunk_len" in inspect.getsource(Stream.send_data)
