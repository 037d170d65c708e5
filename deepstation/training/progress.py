"""Progress shown while training: a rich bar advancing per epoch, or nothing."""
from __future__ import annotations


class Silent:
    def start(self, total: int, done: int, monitor: str) -> None: ...
    def epoch(self, record: dict) -> None: ...
    def close(self) -> None: ...


class Bar:
    """One line: epoch m/n, train loss, the monitored validation metric, samples/s, elapsed and remaining time.

    Refreshed only when an epoch ends (auto_refresh=False), so no thread competes with training for the GIL.
    """

    def __init__(self, console):
        self.console, self.monitor, self.bar = console, "loss", None

    def start(self, total: int, done: int, monitor: str) -> None:
        from rich.progress import (BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn,
                                   TimeRemainingColumn)

        self.bar = Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                            TextColumn("{task.fields[info]}"), TimeElapsedColumn(), TimeRemainingColumn(),
                            console=self.console, auto_refresh=False)
        self.monitor = monitor
        self.bar.start()
        self.task = self.bar.add_task("epoch", total=total, completed=done, info="")
        self.bar.refresh()

    def epoch(self, record: dict) -> None:
        info = f"loss {record['train']['loss']:.4f}"
        if "valid" in record:
            info += f" · valid {self.monitor} {record['valid'][self.monitor]:.4f}"
        info += f" · {record['samples_per_s']:,.0f} samples/s"
        self.bar.update(self.task, advance=1, info=info)
        self.bar.refresh()

    def close(self) -> None:
        if self.bar:
            self.bar.stop()
