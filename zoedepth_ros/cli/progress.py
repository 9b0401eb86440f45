"""Progress of the long verbs: a bar on a terminal, a log line every few seconds otherwise.

Without a terminal (CI, ``nohup``, a log file) a bar prints nothing useful, so
:class:`Progress` logs ``<what>: <done>/<total> <unit>s (<percent>), <rate>/s, ETA <time>``
every ``every_s`` seconds and once at the end; on a terminal it is a tqdm bar (with the log
messages printed above it).
"""

from __future__ import annotations

import logging
import math
import sys
import time
from abc import ABC, abstractmethod
from contextlib import ExitStack
from types import TracebackType
from typing import Any, TypeVar

logger = logging.getLogger('zoedepth.progress')

EVERY_S = 5.0


def duration(seconds: float) -> str:
    """'42 s', '3 min 05 s', '2 h 07 min'."""
    if not math.isfinite(seconds):
        return '?'
    seconds = max(0, int(round(seconds)))
    if seconds < 60:
        return f'{seconds} s'
    minutes, seconds = divmod(seconds, 60)
    if minutes < 60:
        return f'{minutes} min {seconds:02d} s'
    hours, minutes = divmod(minutes, 60)
    return f'{hours} h {minutes:02d} min'


Closed = TypeVar('Closed', bound='ClosedOnExit')


class ClosedOnExit(ABC):
    """``with`` support for a progress display: ``close(finished=...)`` on leaving the block,
    finished unless an exception (Ctrl-C included) left it."""

    def __enter__(self: Closed) -> Closed:
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 traceback: TracebackType | None) -> None:
        self.close(finished=kind is None)

    @abstractmethod
    def close(self, finished: bool = True) -> None:
        """End the display; ``finished``: the work completed (a last line is due)."""


class Progress(ClosedOnExit):
    """``with Progress('eval', total, 'frame') as bar: ... bar.update()``.

    Args:
        desc: what is being done.
        total: how many units in all (None: unknown).
        unit: the unit's name.
        initial: units already done (a resumed run).
        every_s: seconds between log lines without a terminal.
        enabled: False: silent (e.g. ranks other than 0).
        terminal: force the bar (True) or the log lines (False); None: stderr decides.
    """

    def __init__(self, desc: str, total: int | None, unit: str = 'item', initial: int = 0,
                 every_s: float = EVERY_S, enabled: bool = True,
                 terminal: bool | None = None) -> None:
        self.desc, self.total, self.unit, self.every_s = desc, total, unit, every_s
        self.done, self.enabled = initial, enabled
        self._initial = initial
        self._start = self._last = time.monotonic()
        self._postfix = ''
        self._logged: int | None = None  # the count of the last line logged
        self._stack = ExitStack()
        self._bar: Any = None
        use_bar = sys.stderr.isatty() if terminal is None else terminal
        if enabled and use_bar:
            from tqdm import tqdm  # optional at this level: only terminals draw a bar
            from tqdm.contrib.logging import logging_redirect_tqdm

            self._stack.enter_context(logging_redirect_tqdm())
            self._bar = self._stack.enter_context(tqdm(
                total=total, initial=initial, desc=desc, unit=unit, dynamic_ncols=True))

    def update(self, count: int = 1) -> None:
        self.done += count
        if self._bar is not None:
            self._bar.update(count)
        elif self.enabled and time.monotonic() - self._last >= self.every_s:
            self._log()

    def set(self, done: int, total: int | None) -> None:
        """Absolute counts, for a count kept elsewhere (a corpus summed over processes)."""
        self.done, self.total = done, total
        if self._bar is not None:
            self._bar.total, self._bar.n = total, done
            self._bar.refresh()
        elif self.enabled and time.monotonic() - self._last >= self.every_s:
            self._log()

    def note(self, **values: str) -> None:
        """Values shown beside the count (loss, lr...)."""
        self._postfix = ', '.join(f'{name} {value}' for name, value in values.items())
        if self._bar is not None:
            self._bar.set_postfix(values, refresh=False)

    def close(self, finished: bool = True) -> None:
        if (self._bar is None and self.enabled and finished and self.done > self._initial
                and self.done != self._logged):
            self._log()
        self._stack.close()
        self._bar = None

    def line(self) -> str:
        """The log line of the current state."""
        now = time.monotonic()
        rate = (self.done - self._initial) / max(now - self._start, 1e-9)
        count = f'{self.done}/{self.total}' if self.total else f'{self.done}'
        text = f'{self.desc}: {count} {self.unit}s'
        if self.total:
            text += f' ({100.0 * self.done / self.total:.0f} %)'
            left = (self.total - self.done) / rate if rate > 0 else math.inf
            text += f', {rate:.3g}/s, ETA {duration(left)}'
        else:
            text += f', {rate:.3g}/s'
        return f'{text}, {self._postfix}' if self._postfix else text

    def _log(self) -> None:
        self._last, self._logged = time.monotonic(), self.done
        logger.info('%s', self.line())
