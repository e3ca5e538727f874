"""Targets are parsed strictly and connections use TLS unless plaintext is asked for."""

import re
import ssl
from pathlib import Path

import pytest
from grpclib.testing import ChannelFor

from modelcatalog import Client, ServerError, v1
from modelcatalog._transport import CHUNK_SIZE, open_channel, parse_target, tls_context


@pytest.mark.parametrize(
    ("target", "expected"),
    [
        ("127.0.0.1:50051", ("127.0.0.1", 50051)),
        ("models.example.com:443", ("models.example.com", 443)),
        ("[::1]:50051", ("::1", 50051)),
        ("localhost:1", ("localhost", 1)),
    ],
)
def test_targets_split_into_host_and_port(target: str, expected: tuple[str, int]) -> None:
    """host:port and [ipv6]:port give the host without brackets and the port as an int."""
    assert parse_target(target) == expected


@pytest.mark.parametrize(
    "target",
    ["localhost", ":50051", "host:", "host:http", "host:0", "host:65536", "[::1]", "[::1:50051"],
)
def test_malformed_targets_are_refused(target: str) -> None:
    """A target without a host or a valid port raises ValueError."""
    with pytest.raises(ValueError, match="host:port"):
        parse_target(target)


def test_bare_ipv6_needs_brackets() -> None:
    """An IPv6 address without brackets is ambiguous and raises ValueError saying so."""
    with pytest.raises(ValueError, match="brackets"):
        parse_target("::1:50051")


def test_tls_context_verifies_and_speaks_h2_only_over_tls_1_2_or_later() -> None:
    """The default context checks the certificate and host name and refuses TLS < 1.2."""
    context = tls_context()
    assert context.verify_mode is ssl.CERT_REQUIRED
    assert context.check_hostname
    assert context.minimum_version is ssl.TLSVersion.TLSv1_2


def test_missing_ca_cert_fails_at_once(tmp_path: Path) -> None:
    """A CA certificate path that does not exist raises before any connection is tried."""
    with pytest.raises(FileNotFoundError):
        tls_context(tmp_path / "missing-ca.pem")


def test_ca_cert_that_is_not_a_certificate_is_named(tmp_path: Path) -> None:
    """A CA file that holds no PEM certificate raises ValueError naming the file."""
    bad = tmp_path / "ca.pem"
    bad.write_text("not a certificate\n")
    with pytest.raises(ValueError, match=re.escape(str(bad))):
        tls_context(bad)


async def test_channels_ping_the_server_for_as_long_as_calls_last() -> None:
    """A channel pings each minute while calls run, even sending no data, and gives up in 20 s."""
    channel = open_channel("127.0.0.1:50051", insecure=True)
    config = channel._config
    channel.close()
    assert config._keepalive_time == 60
    assert config._keepalive_timeout == 20
    assert not config._keepalive_permit_without_calls  # idle connections stay quiet
    assert config._http2_max_pings_without_data == 0  # a download sends no data: no limit
    assert config._http2_min_sent_ping_interval_without_data < 60


def test_insecure_with_ca_cert_is_a_contradiction() -> None:
    """insecure=True with a ca_cert raises ValueError instead of silently dropping TLS."""
    with pytest.raises(ValueError, match="insecure"):
        open_channel("127.0.0.1:50051", ca_cert="ca.pem", insecure=True)


def test_chunk_size_is_one_mebibyte() -> None:
    """Streams move 1 MiB per message, the measured sweet spot."""
    assert CHUNK_SIZE == 1 << 20


async def test_close_leaves_a_borrowed_channel_open() -> None:
    """Closing a client from from_channel keeps the caller's channel usable."""
    async with ChannelFor([v1.AuthServiceBase()]) as channel:
        async with Client.from_channel(channel):
            pass
        with pytest.raises(ServerError, match="UNIMPLEMENTED"):
            await Client.from_channel(channel).get_current_user()
