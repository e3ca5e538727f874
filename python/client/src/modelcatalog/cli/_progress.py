"""The transfer progress bar: Rich, with every size and speed in binary units.

Sizes are written by ``_output.human_size`` (``476.8 MiB``, ``41.3 MiB/s``), as everywhere else
in the CLI; Rich's own columns would print decimal speeds (``MB/s``) next to binary sizes. This
module is imported only when a bar is drawn, since Rich takes tens of milliseconds to import.
"""

from rich.progress import (
    BarColumn,
    Progress,
    ProgressColumn,
    Task,
    TaskProgressColumn,
    TextColumn,
    TimeRemainingColumn,
)
from rich.table import Column
from rich.text import Text

from .._text import printable
from ._output import console, human_size


class SizeColumn(ProgressColumn):
    """Bytes done and the total, e.g. ``123.4 MiB / 953.7 MiB``."""

    def render(self, task: Task) -> Text:
        total = "?" if task.total is None else human_size(int(task.total))
        return Text(f"{human_size(int(task.completed))} / {total}", style="progress.download")


class SpeedColumn(ProgressColumn):
    """Throughput, e.g. ``41.3 MiB/s``; ``?`` until there are two samples to measure it."""

    def render(self, task: Task) -> Text:
        speed = task.finished_speed or task.speed
        text = "?" if speed is None else f"{human_size(int(speed))}/s"
        return Text(text, style="progress.data.speed")


class TransferBar:
    """A progress callback for the SDK that draws one bar while used as a context manager.

    With ``resumable`` (a download or an upload), the first call tells where the transfer
    starts: more than zero bytes means it continues an earlier attempt (a partial file, bytes
    the server kept), which is said on a line of its own, and the bar's speed and time
    remaining then count only the bytes moved now.
    """

    def __init__(self, description: str, *, total: int | None, resumable: bool) -> None:
        shown_on = console()
        # One line at any width: the figures never wrap, a long file name is cut short (at most
        # a third of the line) and the bar takes what is left.
        self._progress = Progress(
            TextColumn(
                "{task.description}",
                markup=False,
                table_column=Column(
                    no_wrap=True, overflow="ellipsis", max_width=shown_on.width // 3
                ),
            ),
            BarColumn(bar_width=None),
            TaskProgressColumn(table_column=Column(no_wrap=True)),
            SizeColumn(table_column=Column(no_wrap=True)),
            SpeedColumn(table_column=Column(no_wrap=True)),
            TimeRemainingColumn(table_column=Column(no_wrap=True)),
            console=shown_on,
            transient=False,
        )
        self._task = self._progress.add_task(printable(description), total=total)
        self._first_call = resumable

    def __call__(self, done: int, total: int | None) -> None:
        if self._first_call:
            self._first_call = False
            if done > 0:
                of = f" of {human_size(total)}" if total is not None else ""
                self._progress.console.print(f"resuming from {human_size(done)}{of}")
                self._progress.reset(self._task, completed=done, total=total)
                return
        self._progress.update(self._task, completed=done, total=total)

    def __enter__(self) -> "TransferBar":
        self._progress.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._progress.stop()
