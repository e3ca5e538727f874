"""Where metadata and blobs live, from the URLs an operator gives (``--database-url``,
``--blob-url``): parsed and checked here, before anything is opened, so a mistake is reported
at start-up in the operator's terms."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError

DATABASE_URL_FORMS = "sqlite:///PATH or postgresql+asyncpg://USER:PASSWORD@HOST:PORT/DATABASE"
BLOB_URL_FORMS = "file:///PATH (or a plain directory) or s3://BUCKET/PREFIX"


def database_url(url: str) -> URL:
    """``url`` parsed, with the driver this server uses, if it names a database this server
    can use; ValueError with the reason otherwise."""
    try:
        parsed = make_url(url)
    except ArgumentError:
        raise ValueError(f"{url!r} is not a database URL: use {DATABASE_URL_FORMS}") from None
    backend = parsed.get_backend_name()
    if backend == "sqlite":
        if not parsed.database or parsed.database == ":memory:":
            raise ValueError(
                "a SQLite database URL needs a file path: sqlite:///relative/path or "
                "sqlite:////absolute/path"
            )
        return parsed.set(drivername="sqlite+pysqlite")
    if backend == "postgresql":
        # "postgresql://" without a driver is taken as asyncpg here.
        if "+" in parsed.drivername and parsed.get_driver_name() != "asyncpg":
            raise ValueError(
                f"PostgreSQL is used through asyncpg: write postgresql+asyncpg://..., not "
                f"{parsed.drivername}://..."
            )
        if not parsed.database:
            raise ValueError("a PostgreSQL database URL needs a database name: .../DATABASE")
        return parsed.set(drivername="postgresql+asyncpg")
    raise ValueError(f"unsupported database {parsed.drivername!r}: use {DATABASE_URL_FORMS}")


def sqlite_path(url: URL) -> Path | None:
    """The file of a SQLite database URL, None for another database."""
    if url.get_backend_name() != "sqlite" or url.database is None:
        return None
    return Path(url.database)


@dataclass(frozen=True)
class BlobLocation:
    """A checked ``--blob-url``: a local directory, or an S3 bucket and key prefix."""

    url: str
    directory: Path | None = None

    @property
    def is_s3(self) -> bool:
        return self.directory is None


def blob_location(url: str) -> BlobLocation:
    """``url`` checked; ValueError with the reason when it names no place for blobs."""
    parts = urlsplit(url)
    if parts.scheme == "s3":
        parse_s3_url(url)
        return BlobLocation(url)
    if parts.scheme == "file":
        if parts.netloc not in ("", "localhost") or not parts.path:
            raise ValueError(f"{url!r} is not a local directory: use file:///PATH")
        return BlobLocation(url, Path(parts.path))
    if parts.scheme == "" and url.strip():
        return BlobLocation(url, Path(url).expanduser())
    raise ValueError(f"unsupported blob store {url!r}: use {BLOB_URL_FORMS}")


_BUCKET = re.compile(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]")
_PREFIX_SEGMENT = re.compile(r"[A-Za-z0-9!_.*'()-]+")


def parse_s3_url(url: str) -> tuple[str, str]:
    """The bucket and key prefix (empty, or ending in ``/``) of ``s3://bucket/prefix``.

    Raises ValueError, saying what is wrong, for anything else.
    """
    parts = urlsplit(url)
    if parts.scheme != "s3":
        raise ValueError(f"the blob URL {url!r} must start with s3:// (s3://bucket/prefix)")
    if parts.query or parts.fragment or "@" in parts.netloc or ":" in parts.netloc:
        raise ValueError(
            f"the blob URL {url!r} must be s3://bucket/prefix only: the endpoint, region and "
            "credentials come from AWS_ENDPOINT_URL, AWS_REGION, AWS_ACCESS_KEY_ID and "
            "AWS_SECRET_ACCESS_KEY"
        )
    bucket = parts.netloc
    if not _BUCKET.fullmatch(bucket) or ".." in bucket:
        raise ValueError(
            f"the blob URL {url!r} names no valid bucket: 3 to 63 lower-case letters, digits, "
            "dots and hyphens, starting and ending with a letter or digit"
        )
    segments = [segment for segment in parts.path.split("/") if segment]
    for segment in segments:
        if not _PREFIX_SEGMENT.fullmatch(segment) or segment in (".", ".."):
            raise ValueError(
                f"the blob URL {url!r} has a prefix part {segment!r} that is not a plain name "
                "(letters, digits and !_.*'()- only)"
            )
    prefix = "".join(f"{segment}/" for segment in segments)
    if len(prefix) > 512:
        raise ValueError(f"the blob URL {url!r} has a prefix longer than 512 characters")
    return bucket, prefix
