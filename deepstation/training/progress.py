"""Progress shown while training: a rich bar advancing per epoch in a terminal, a plain line now and then in a pipe
or a file, or nothing."""
from __future__ import annotations

import time


class Silent:
    def start(self, total: int, done: int, monitor: str) -> None: ...
    def epoch(self, record: dict) -> None: ...
    def close(self) -> None: ...


class Bar:
    """In a terminal, one line redrawn as each epoch ends: epoch m/n, train loss, the monitored validation metric,
    samples/s, elapsed and remaining time. Refreshed only then (auto_refresh=False), so no thread competes with
    training for the GIL.

    To a pipe or a file, where a redrawn bar shows nothing until the end: the same figures as a plain line, at most
    one every EVERY_S seconds, and always the last epoch's."""

    EVERY_S = 10.0

    def __init__(self, console, clock=time.monotonic):
        self.console, self.monitor, self.bar, self.clock = console, "loss", None, clock
        self.total = self.done = self.first = 0
        self.began = self.said_at = 0.0
        self.unsaid: dict | None = None  # the latest epoch's record, while no line has shown it

    def start(self, total: int, done: int, monitor: str) -> None:
        self.monitor, self.total, self.done, self.first = monitor, total, done, done
        if not self.console.is_terminal:
            self.began = self.said_at = self.clock()
            return
        from rich.progress import (BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn,
                                   TimeRemainingColumn)

        self.bar = Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                            TextColumn("{task.fields[info]}"), TimeElapsedColumn(), TimeRemainingColumn(),
                            console=self.console, auto_refresh=False)
        self.bar.start()
        self.task = self.bar.add_task("epoch", total=total, completed=done, info="")
        self.bar.refresh()

    def epoch(self, record: dict) -> None:
        self.done = int(record.get("epoch", self.done + 1))
        if self.bar is not None:
            self.bar.update(self.task, advance=1, info=self._figures(record))
            self.bar.refresh()
            return
        self.unsaid = record
        if self.done >= self.total or self.clock() - self.said_at >= self.EVERY_S:
            self._say()

    def close(self) -> None:
        if self.bar is not None:
            self.bar.stop()
            self.bar = None
        elif self.unsaid is not None:  # stopped early (patience, time budget, an error): its last epoch still shows
            self._say()

    def _say(self) -> None:
        now = self.clock()
        elapsed, ran = now - self.began, self.done - self.first
        left = (self.total - self.done) * elapsed / ran if ran else None
        line = f"epoch {self.done}/{self.total} · {self._figures(self.unsaid)} · elapsed {_clock(elapsed)}"
        line += f" · ETA {_clock(left)}" if left else ""
        self.console.print(line, markup=False, highlight=False, soft_wrap=True)
        self.said_at, self.unsaid = now, None

    def _figures(self, record: dict) -> str:
        info = f"loss {record['train']['loss']:.4f}"
        value = record.get("valid", {}).get(self.monitor)
        if value is not None:
            info += f" · valid {self.monitor} {value:.4f}"
        return info + f" · {record['samples_per_s']:,.0f} samples/s"


def _clock(seconds: float) -> str:
    """h:mm:ss, as the bar shows it."""
    seconds = int(round(seconds))
    return f"{seconds // 3600}:{seconds % 3600 // 60:02d}:{seconds % 60:02d}"
