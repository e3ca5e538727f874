"""The transfer progress bar: binary units throughout, and a resumed download says so."""

import re

import pytest
from rich.progress import Task, TaskID

from modelcatalog.cli._output import transfer_progress
from modelcatalog.cli._progress import SizeColumn, SpeedColumn

MIB = 1024 * 1024
DECIMAL_UNITS = re.compile(r"\d\s*(kB|MB|GB|TB)\b")


def _task(*, completed: float, total: float | None, speed: float | None) -> Task:
    return Task(
        TaskID(0), "download", total, completed, _get_time=lambda: 0.0, finished_speed=speed
    )


def test_speed_and_size_columns_use_binary_units() -> None:
    """41.3 MiB per second shows as 41.3 MiB/s (Rich's own column says 43.3 MB/s)."""
    task = _task(completed=500 * MIB, total=1000 * MIB, speed=41.3 * MIB)
    assert SpeedColumn().render(task).plain == "41.3 MiB/s"
    assert SizeColumn().render(task).plain == "500.0 MiB / 1000.0 MiB"
    assert SpeedColumn().render(_task(completed=0, total=None, speed=None)).plain == "?"
    assert SizeColumn().render(_task(completed=512, total=None, speed=None)).plain == "512 B / ?"


def test_bar_prints_no_decimal_units(capsys: pytest.CaptureFixture[str]) -> None:
    """A whole transfer's bar shows its sizes and speed in KiB/MiB/GiB, never kB/MB/GB."""
    total = 500 * MIB
    with transfer_progress("upload weights.bin", enabled=True, total=total) as progress:
        for done in range(MIB, total + 1, 100 * MIB):
            progress(done, total)
        progress(total, total)
    text = capsys.readouterr().out  # not a terminal: Rich prints the final bar once
    assert "500.0 MiB / 500.0 MiB" in text
    assert re.search(r"\d (B|KiB|MiB|GiB|TiB)/s", text), text
    assert not DECIMAL_UNITS.search(text), text


def test_resumed_download_says_where_it_resumes(capsys: pytest.CaptureFixture[str]) -> None:
    """A download whose first report is 123.4 MiB of 953.7 MiB prints `resuming from ...`."""
    have, total = int(123.4 * MIB), int(953.7 * MIB)
    with transfer_progress("download version 3", enabled=True, resumable=True) as progress:
        progress(have, total)
        progress(total, total)
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "resuming from 123.4 MiB of 953.7 MiB"
    assert "953.7 MiB / 953.7 MiB" in lines[-1]


@pytest.mark.parametrize(
    ("resumable", "first_report"), [(True, 0), (False, MIB)], ids=["fresh download", "upload"]
)
def test_no_resume_line_for_a_fresh_download_or_an_upload(
    capsys: pytest.CaptureFixture[str], resumable: bool, first_report: int
) -> None:
    """A download starting at byte 0, or an upload's first chunk, is no resumption."""
    with transfer_progress("transfer", enabled=True, resumable=resumable) as progress:
        progress(first_report, 2 * MIB)
        progress(2 * MIB, 2 * MIB)
    assert "resuming" not in capsys.readouterr().out


def test_disabled_progress_prints_nothing(capsys: pytest.CaptureFixture[str]) -> None:
    """With the bar off (--quiet, or no terminal) not even a resumption is printed."""
    with transfer_progress("download", enabled=False, resumable=True) as progress:
        progress(MIB, 2 * MIB)
    assert capsys.readouterr().out == ""


def test_bar_fits_one_line_of_an_80_column_terminal(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """At 80 columns the bar of a long file name stays one line, its figures whole."""
    monkeypatch.setenv("COLUMNS", "80")
    total = 500 * MIB
    name = "download resnet-152-finetuned-imagenet-epoch-40-with-a-long-name.tar.gz"
    with transfer_progress(name, enabled=True, total=total) as progress:
        progress(total // 5, total)
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 1, lines
    assert len(lines[0]) <= 80
    assert "100.0 MiB / 500.0 MiB" in lines[0]
