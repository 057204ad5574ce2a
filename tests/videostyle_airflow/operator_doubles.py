"""Stand-ins for what the task runner gives an operator: its task instance and its task log."""

import time
from types import SimpleNamespace
from typing import Any


class TaskInstance(SimpleNamespace):
    """The slice of the task runner's task instance an operator uses: the attributes given
    (dag_id, run_id, ...), and XComs, recorded in `xcoms`."""

    def __init__(self, **attributes: Any) -> None:
        super().__init__(**attributes)
        self.xcoms: dict[str, Any] = {}

    def xcom_push(self, key: str, value: Any) -> None:
        self.xcoms[key] = value


class RecordedLog:
    """An operator's task log, each line with the time it was written: (when, line)."""

    def __init__(self) -> None:
        self.lines: list[tuple[float, str]] = []

    def info(self, message: str, *args: Any) -> None:
        self.lines.append((time.monotonic(), message % args))

    warning = error = info

    @property
    def text(self) -> list[str]:
        return [line for _, line in self.lines]
