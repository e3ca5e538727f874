"""Server settings: one validated object from flags, ``MODELCATALOG_*`` variables and defaults.

A flag wins over its environment variable, which wins over the default. Every option is
declared once, in ``_OPTIONS``, so ``--help``, the environment and validation cannot drift apart.
"""

from __future__ import annotations

import argparse
import ipaddress
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

ENV_PREFIX = "MODELCATALOG_"
LOG_LEVELS = ("debug", "info", "warning", "error")


@dataclass(frozen=True)
class ListenAddress:
    """A host and TCP port to listen on; port 0 lets the system choose a free one."""

    host: str
    port: int

    def __str__(self) -> str:
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"


@dataclass(frozen=True)
class Settings:
    """Everything the server needs to start, validated."""

    listen: ListenAddress = ListenAddress("127.0.0.1", 50051)
    log_level: str = "info"


def parse_listen_address(text: str) -> ListenAddress:
    """Parses ``HOST:PORT``, with IPv6 hosts in brackets (``[::1]:50051``)."""
    host, sep, port_text = text.strip().rpartition(":")
    if not sep or not host:
        raise argparse.ArgumentTypeError(f"{text!r} is not HOST:PORT (for example 127.0.0.1:50051)")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
        try:
            ipaddress.IPv6Address(host)
        except ValueError:
            raise argparse.ArgumentTypeError(
                f"{host!r} in {text!r} is not an IPv6 address"
            ) from None
    elif ":" in host:
        raise argparse.ArgumentTypeError(
            f"write the IPv6 address in {text!r} in brackets: [{host}]:PORT"
        )
    if not port_text.isdigit() or int(port_text) > 65535:
        raise argparse.ArgumentTypeError(f"the port in {text!r} must be a number from 0 to 65535")
    return ListenAddress(host, int(port_text))


def _log_level(text: str) -> str:
    level = text.strip().lower()
    if level not in LOG_LEVELS:
        raise argparse.ArgumentTypeError(f"{text!r} is not one of {', '.join(LOG_LEVELS)}")
    return level


@dataclass(frozen=True)
class _Option:
    field: str
    flag: str
    parse: Callable[[str], Any]
    help: str
    metavar: str

    @property
    def env(self) -> str:
        return ENV_PREFIX + self.field.upper()


_OPTIONS = (
    _Option(
        "listen",
        "--listen",
        parse_listen_address,
        "address to serve gRPC on; IPv6 in brackets, port 0 picks a free port",
        "HOST:PORT",
    ),
    _Option("log_level", "--log-level", _log_level, f"one of {', '.join(LOG_LEVELS)}", "LEVEL"),
)


def build_parser(environ: Mapping[str, str]) -> argparse.ArgumentParser:
    """The command-line parser, with defaults taken from ``environ`` where it sets them."""
    parser = argparse.ArgumentParser(
        prog="modelcatalog-server",
        description=(
            "Serve the modelcatalog gRPC API. Every option can also be set with the environment "
            "variable named in its help; a flag wins over the variable."
        ),
    )
    defaults = Settings()
    for option in _OPTIONS:
        default = getattr(defaults, option.field)
        parser.add_argument(
            option.flag,
            dest=option.field,
            type=option.parse,
            default=environ.get(option.env, str(default)),
            metavar=option.metavar,
            help=f"{option.help} (env {option.env}; default {default})",
        )
    return parser


def parse_settings(
    argv: Sequence[str] | None = None, environ: Mapping[str, str] | None = None
) -> Settings:
    """Builds the settings from flags and environment; exits with status 2 on bad input."""
    parser = build_parser(os.environ if environ is None else environ)
    namespace = parser.parse_args(argv)
    return Settings(**{option.field: getattr(namespace, option.field) for option in _OPTIONS})
