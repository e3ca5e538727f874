"""version upload/download: arguments passed to the SDK, progress bars, and what is printed."""

import fcntl
import hashlib
import json
import signal
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from cli_testing import MODEL_ID, CliHarness
from grpclib.const import Status
from rpc_testing import grpc_error

from modelcatalog import ProgressCallback
from modelcatalog._transport import CHUNK_SIZE
from modelcatalog.cli import _output

pytest_plugins = ["cli_fixtures"]

PAYLOAD = b"weights" * 1000


@pytest.fixture
def harness(harness: CliHarness) -> CliHarness:
    """alice is logged in, with resnet50.onnx in the current folder."""
    (harness.tmp_path / "resnet50.onnx").write_bytes(PAYLOAD)
    return harness


@pytest.fixture
def bars(monkeypatch: pytest.MonkeyPatch) -> list[bool]:
    """Whether each progress bar the CLI asked for was enabled."""
    enabled_flags: list[bool] = []
    real = _output.transfer_progress

    @contextmanager
    def spy(
        description: str, *, enabled: bool, total: int | None = None, resumable: bool = False
    ) -> Iterator[ProgressCallback]:
        enabled_flags.append(enabled)
        with real(description, enabled=enabled, total=total, resumable=resumable) as callback:
            yield callback

    monkeypatch.setattr(_output, "transfer_progress", spy)
    return enabled_flags


def test_upload_prints_version_and_digest(harness: CliHarness) -> None:
    """upload passes description, labels and content type, and prints number and SHA-256."""
    result = harness.run(
        "version",
        "upload",
        MODEL_ID,
        "resnet50.onnx",
        "--description",
        "epoch 40",
        "--label",
        "stage=dev",
        "--label",
        "arch=resnet=50",
        "--content-type",
        "application/onnx",
    )
    assert result.exit_code == 0, result.stderr
    digest = hashlib.sha256(PAYLOAD).hexdigest()
    assert f"as version 1 of model {MODEL_ID}" in result.stdout
    assert f"sha256 {digest}" in result.stdout
    (call,) = harness.backend.transfers
    assert call["labels"] == {"stage": "dev", "arch": "resnet=50"}
    assert (call["description"], call["content_type"]) == ("epoch 40", "application/onnx")


def test_upload_json_and_label_errors(harness: CliHarness) -> None:
    """--json prints the version; a label without '=' is a usage error before any upload."""
    uploaded = harness.run("version", "upload", MODEL_ID, "resnet50.onnx", "--json")
    bad = harness.run("version", "upload", MODEL_ID, "resnet50.onnx", "--label", "novalue")
    missing = harness.run("version", "upload", MODEL_ID, "missing.onnx")
    assert json.loads(uploaded.stdout)["sha256"] == hashlib.sha256(PAYLOAD).hexdigest()
    assert bad.exit_code == missing.exit_code == 2
    assert "KEY=VALUE" in bad.stderr
    assert len(harness.backend.transfers) == 1


def test_progress_is_off_when_stdout_is_not_a_terminal(
    harness: CliHarness, bars: list[bool]
) -> None:
    """Under CliRunner (no TTY) the bar is disabled and stdout holds only the result line."""
    upload = harness.run("version", "upload", MODEL_ID, "resnet50.onnx")
    download = harness.run("version", "download", MODEL_ID, "1", "-o", "copy.onnx")
    assert bars == [False, False]
    assert upload.stdout.count("\n") == download.stdout.count("\n") == 1
    assert "%" not in upload.stdout + download.stdout


def test_progress_is_on_for_a_terminal_unless_quiet(
    harness: CliHarness, bars: list[bool], monkeypatch: pytest.MonkeyPatch
) -> None:
    """With a TTY the bar shows bytes and rate; --quiet and --json turn it off."""
    monkeypatch.setattr(_output, "stdout_is_terminal", lambda: True)
    # One and a half chunks: progress is reported twice, so the bar can measure a rate.
    (harness.tmp_path / "big.onnx").write_bytes(b"w" * (CHUNK_SIZE + CHUNK_SIZE // 2))
    shown = harness.run("version", "upload", MODEL_ID, "big.onnx")
    harness.run("version", "upload", MODEL_ID, "resnet50.onnx", "--quiet")
    harness.run("version", "download", MODEL_ID, "1", "-o", "a.onnx", "-q")
    harness.run("version", "download", MODEL_ID, "1", "-o", "b.onnx", "--json")
    assert bars == [True, False, False, False]
    assert "100%" in shown.stdout
    assert "1.5 MiB / 1.5 MiB" in shown.stdout  # bytes done / total
    assert "/s" in shown.stdout  # throughput


def test_download_defaults_to_the_uploaded_file_name(harness: CliHarness) -> None:
    """Without -o the file is written under its uploaded name, in the current folder."""
    harness.run("version", "upload", MODEL_ID, "resnet50.onnx")
    (harness.tmp_path / "resnet50.onnx").unlink()
    (harness.tmp_path / "resnet50.onnx.part").write_bytes(PAYLOAD[:1000])  # an earlier attempt
    result = harness.run("version", "download", MODEL_ID, "1")
    assert result.exit_code == 0, result.stderr
    assert (harness.tmp_path / "resnet50.onnx").read_bytes() == PAYLOAD
    assert "to resnet50.onnx" in result.stdout
    assert "resumed from 1000 B" in result.stdout
    assert "verified" in result.stdout
    assert harness.backend.transfers[-1]["offset"] == 1000  # resumed by default
    assert not (harness.tmp_path / "resnet50.onnx.part").exists()


def test_download_into_a_folder_without_resume(harness: CliHarness) -> None:
    """-o DIR writes DIR/<file name>; --no-resume is passed to the SDK; --json has the path."""
    harness.run("version", "upload", MODEL_ID, "resnet50.onnx")
    (harness.tmp_path / "out").mkdir()
    (harness.tmp_path / "out" / "resnet50.onnx.part").write_bytes(b"junk")  # resuming would fail
    result = harness.run("version", "download", MODEL_ID, "1", "-o", "out", "--no-resume", "--json")
    assert result.exit_code == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["path"] == str(Path("out") / "resnet50.onnx")
    assert data["version"]["version"] == 1
    assert harness.backend.transfers[-1]["offset"] == 0  # started over
    assert (harness.tmp_path / "out" / "resnet50.onnx").read_bytes() == PAYLOAD


def test_download_never_writes_outside_the_destination(harness: CliHarness) -> None:
    """A stored file name with folders or '..' is reduced to a plain name in the current folder."""
    harness.run("version", "upload", MODEL_ID, "resnet50.onnx")
    harness.backend.versions[0].file_name = "../../etc/evil"
    result = harness.run("version", "download", MODEL_ID, "1")
    assert result.exit_code == 0, result.stderr
    assert "to evil " in result.stdout
    assert (harness.tmp_path / "evil").read_bytes() == PAYLOAD
    assert not (harness.tmp_path / "../../etc/evil").exists()
    harness.backend.versions[0].file_name = ".."
    dots = harness.run("version", "download", MODEL_ID, "1")
    assert f"to {MODEL_ID}-v1 " in dots.stdout
    assert (harness.tmp_path / f"{MODEL_ID}-v1").read_bytes() == PAYLOAD


def test_download_keeps_a_file_named_by_the_server_without_force(harness: CliHarness) -> None:
    """Without -o an existing file of the uploaded name is kept (exit 6) unless --force."""
    harness.run("version", "upload", MODEL_ID, "resnet50.onnx")
    mine = harness.tmp_path / "resnet50.onnx"
    mine.write_bytes(b"my own work")
    kept = harness.run("version", "download", MODEL_ID, "1")
    assert kept.exit_code == 6
    assert kept.stderr == (
        "error: resnet50.onnx exists already; pass --force to replace it, or -o to save the"
        " download elsewhere\n"
    )
    assert mine.read_bytes() == b"my own work"
    forced = harness.run("version", "download", MODEL_ID, "1", "--force")
    assert forced.exit_code == 0, forced.stderr
    assert mine.read_bytes() == PAYLOAD


def test_dotfile_names_from_the_server_are_not_used(harness: CliHarness) -> None:
    """A version named ".bashrc" is saved as MODEL_ID-v1, leaving the dotfile alone."""
    harness.run("version", "upload", MODEL_ID, "resnet50.onnx")
    harness.backend.versions[0].file_name = ".bashrc"
    (harness.tmp_path / ".bashrc").write_text("export EDITOR=vi\n")
    result = harness.run("version", "download", MODEL_ID, "1", "--force")
    assert result.exit_code == 0, result.stderr
    assert f"to {MODEL_ID}-v1 " in result.stdout
    assert (harness.tmp_path / ".bashrc").read_text() == "export EDITOR=vi\n"


def test_download_while_another_writes_the_file_exits_6(harness: CliHarness) -> None:
    """A download to a file another download is writing exits 6 and leaves its .part alone."""
    harness.run("version", "upload", MODEL_ID, "resnet50.onnx")
    part = harness.tmp_path / "out.onnx.part"
    part.write_bytes(PAYLOAD[:100])
    with part.open("rb") as held:
        fcntl.flock(held.fileno(), fcntl.LOCK_EX)  # as the other download holds it
        result = harness.run("version", "download", MODEL_ID, "1", "-o", "out.onnx")
    assert result.exit_code == 6
    assert result.stderr.startswith("error: another download to out.onnx is in progress;")
    assert part.read_bytes() == PAYLOAD[:100]
    assert not (harness.tmp_path / "out.onnx").exists()


def test_digest_mismatch_exits_8(harness: CliHarness) -> None:
    """A DataLoss from the SDK's SHA-256 check exits 8 with one line on stderr."""
    harness.run("version", "upload", MODEL_ID, "resnet50.onnx")
    harness.backend.blobs[1] = b"W" + PAYLOAD[1:]  # no longer the bytes of its SHA-256
    result = harness.run("version", "download", MODEL_ID, "1", "-o", "x.onnx")
    assert result.exit_code == 8
    assert len(result.stderr.splitlines()) == 1
    assert "SHA-256" in result.stderr


def test_unknown_version_exits_5(harness: CliHarness) -> None:
    """Downloading or showing a version that does not exist exits 5 with a hint."""
    result = harness.run("version", "show", MODEL_ID, "9")
    download = harness.run("version", "download", MODEL_ID, "9")
    assert result.exit_code == download.exit_code == 5
    assert "version list" in result.stderr


def test_version_list_table(harness: CliHarness) -> None:
    """version list shows newest first under a header, with a short digest."""
    harness.run("version", "upload", MODEL_ID, "resnet50.onnx")
    harness.run("version", "upload", MODEL_ID, "resnet50.onnx")
    result = harness.run("version", "list", MODEL_ID)
    header, _rule, first, second = result.stdout.splitlines()
    assert header.split() == ["VERSION", "FILE", "SIZE", "SHA256", "CREATOR", "CREATED"]
    assert first.split()[0] == "2"
    assert second.split()[0] == "1"
    assert hashlib.sha256(PAYLOAD).hexdigest()[:12] in first


@contextmanager
def _ctrl_c_progress(
    description: str, *, enabled: bool, total: int | None = None, resumable: bool = False
) -> Iterator[ProgressCallback]:
    """A progress callback that sends this process SIGINT (Ctrl-C) once bytes have moved."""

    def progress(done: int, total: int | None) -> None:
        if done:
            signal.raise_signal(signal.SIGINT)

    yield progress


def test_ctrl_c_during_download_exits_130_and_rerunning_resumes(
    harness: CliHarness, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Ctrl-C mid-download exits 130 with one line saying the same command resumes; it does."""
    data = b"w" * (CHUNK_SIZE + 100)
    (harness.tmp_path / "big.onnx").write_bytes(data)
    harness.run("version", "upload", MODEL_ID, "big.onnx")
    real = _output.transfer_progress
    monkeypatch.setattr(_output, "transfer_progress", _ctrl_c_progress)
    interrupted = harness.run("version", "download", MODEL_ID, "1", "-o", "copy.onnx")
    assert interrupted.exit_code == 130
    assert interrupted.stderr == (
        "error: interrupted; the bytes received are kept, run the same command again to resume"
        " the download\n"
    )
    kept = (harness.tmp_path / "copy.onnx.part").stat().st_size
    assert kept >= CHUNK_SIZE  # a write under way when Ctrl-C came may still land
    monkeypatch.setattr(_output, "transfer_progress", real)
    resumed = harness.run("version", "download", MODEL_ID, "1", "-o", "copy.onnx")
    assert resumed.exit_code == 0, resumed.stderr
    assert harness.backend.transfers[-1]["offset"] == kept
    assert (harness.tmp_path / "copy.onnx").read_bytes() == data


def test_ctrl_c_during_upload_exits_130_and_rerunning_resumes(
    harness: CliHarness, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Ctrl-C mid-upload exits 130 with one line, not Click's `Aborted!`, and makes no version;
    the same command again resumes where the server's bytes end, stores the file and forgets
    the upload's request id."""
    data = b"w" * (2 * CHUNK_SIZE + 100)
    (harness.tmp_path / "big.onnx").write_bytes(data)
    real = _output.transfer_progress
    monkeypatch.setattr(_output, "transfer_progress", _ctrl_c_progress)
    result = harness.run("version", "upload", MODEL_ID, "big.onnx")
    assert result.exit_code == 130
    assert result.stderr == (
        "error: interrupted; the server keeps the bytes it received for a while: run the same"
        " command again to resume the upload\n"
    )
    assert harness.backend.versions == []
    # What the server kept of it (the fake keeps what it had read when the stream broke).
    (state,) = (harness.config_home / "modelcatalog" / "uploads").iterdir()
    request_id = state.read_text().strip()
    held = harness.backend.held.setdefault(request_id, data[:CHUNK_SIZE])
    monkeypatch.setattr(_output, "transfer_progress", real)
    resumed = harness.run("version", "upload", MODEL_ID, "big.onnx")
    assert resumed.exit_code == 0, resumed.stderr
    assert harness.backend.transfers[-1]["offset"] == len(held) > 0
    assert harness.backend.blobs[1] == data
    assert not state.exists()


@pytest.mark.parametrize(
    ("status", "reason", "kept"),
    [
        (Status.INVALID_ARGUMENT, "INVALID_FIELD", False),
        (Status.PERMISSION_DENIED, "FOLDER_ACCESS_DENIED", False),
        (Status.UNAVAILABLE, "UPLOAD_IN_PROGRESS", True),
    ],
)
def test_a_refused_upload_forgets_its_request_id_and_a_broken_one_keeps_it(
    harness: CliHarness, status: Status, reason: str, kept: bool
) -> None:
    """The request id stays on disk only while running the command again can resume the
    upload: not after the server refused it."""
    (harness.tmp_path / "model.onnx").write_bytes(b"w" * 100)
    harness.backend.error = grpc_error(status, "no", reason)
    result = harness.run("version", "upload", MODEL_ID, "model.onnx", "--quiet")
    assert result.exit_code != 0
    uploads = harness.config_home / "modelcatalog" / "uploads"
    assert (uploads.exists() and any(uploads.iterdir())) == kept
