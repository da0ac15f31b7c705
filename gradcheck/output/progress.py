"""Progress of a long check in the CLI: gradcheck.check's progress callback drawn with rich.

In a terminal, an array whose groups are estimated to take more than PROGRESS_AFTER seconds gets a bar
with the groups done and the time left; in a terminal or a log, an array that falls back to one
coordinate per forward (no structure declared, none inferred) for longer than that gets one warning line
with the estimated time and what to do about it.
"""

from __future__ import annotations

import time

from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn

PROGRESS_AFTER = 3.0  # seconds an array's groups are estimated to take before it gets a bar (or a warning)


def seconds_text(t: float) -> str:
    return f"{t:.0f} s" if t < 120 else f"{t / 60:.0f} min"


def bar(out: Console) -> Progress:
    """The run's live display in a terminal: one task for the case being run, one per long array."""
    return Progress(SpinnerColumn(), TextColumn("{task.description}"), BarColumn(),
                    TextColumn("{task.fields[info]}"), console=out, transient=True)


class Watch:
    """progress(array, groups done, groups total, coordinates) for gradcheck.check: a bar (when `bar` is
    a rich Progress) for an array estimated to take more than PROGRESS_AFTER seconds, and one warning line
    when such an array runs one coordinate per forward (total == coordinates)."""

    def __init__(self, out: Console, bar: Progress | None):
        self.out, self.bar = out, bar
        self.case, self.array, self.start, self.task, self.warned = "", None, 0.0, None, False

    def started(self, case: str) -> None:
        self.case = case

    def __call__(self, array: str, done: int, total: int, coordinates: int) -> None:
        now = time.perf_counter()
        if array != self.array or done == 0:
            self._finish()
            self.array, self.start, self.warned = array, now, False
            return
        elapsed = now - self.start
        left = elapsed / max(done, 1) * (total - done)
        if done < total and elapsed + left > PROGRESS_AFTER:
            if not self.warned and total == coordinates and coordinates > 1:
                self.warned = True
                self.out.print(escape(
                    f"  {self.case}: {array}: one coordinate per forward ({coordinates:,} of them, about "
                    f"{seconds_text(elapsed + left)}): no structure declared or inferred groups them. "
                    f"Declare `structure` on the layer (`gradcheck structure {self.case}` prints what can be "
                    f"inferred), or check fewer coordinates (check: {{strategy: sampled}})."),
                    style="yellow" if self.out.is_terminal else None)
            if self.bar is not None and self.task is None:
                self.task = self.bar.add_task(f"{self.case}: {array}", total=total, info="")
        if self.task is not None:
            self.bar.update(self.task, completed=done,
                            info=f"{done:,}/{total:,} groups, about {seconds_text(left)} left")
        if done >= total:
            self._finish()

    def _finish(self) -> None:
        if self.task is not None:
            self.bar.remove_task(self.task)
            self.task = None


__all__ = ["PROGRESS_AFTER", "Watch", "bar", "seconds_text"]
