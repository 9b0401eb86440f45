"""Progress over a corpus that several processes share: frames done and total, rate, ETA.

Each rank counts the frames of its share. With more than one rank, each writes its count to
``OUTPUT/.progress/<run>/rank-<r>.json`` every few seconds (the output folder is one that every
node sees), and rank 0 alone shows the sum over all ranks: a bar on a terminal, a log line
every few seconds otherwise. Rank 0 goes on showing it while it waits for the other ranks,
and removes the ``.progress`` folder once every rank is done (a killed run's counts with it).
A single process shows a plain :class:`~zoedepth_ros.cli.progress.Progress`.
"""

from __future__ import annotations

import json
import os
import shutil
import threading
import time
from pathlib import Path

from zoedepth_ros.cli.progress import EVERY_S, ClosedOnExit, Progress
from zoedepth_ros.io.atomic import write_json

PUBLISH_S = 2.0
"""Seconds between a rank's writes of its count."""
REFRESH_S = 1.0
"""Seconds between rank 0's readings of the other ranks' counts."""


def run_folder(output: Path) -> Path:
    """This run's progress folder: torchrun's run id and restart count name it, so a restarted
    job does not read the counts of the attempt before."""
    run = os.environ.get('TORCHELASTIC_RUN_ID', 'run')
    restart = os.environ.get('TORCHELASTIC_RESTART_COUNT', '0')
    return output / '.progress' / f'{run}-{restart}'


class CorpusProgress(ClosedOnExit):
    """``update`` per frame of this rank; ``finish`` when its share is done; ``close`` at the
    end (on rank 0 after the other ranks are done: it then shows the final sum).

    Args:
        output: the corpus output folder.
        rank, world: this process's rank and the number of ranks.
        total: frames of this rank's share.
        every_s: seconds between log lines without a terminal.
        terminal: force the bar (True) or the log lines (False); None: stderr decides.
    """

    def __init__(self, output: Path, rank: int, world: int, total: int,
                 every_s: float = EVERY_S, terminal: bool | None = None) -> None:
        self.rank, self.world, self.total = rank, world, total
        self.done = 0
        self._folder = run_folder(output)
        self.bar = Progress('bag eval corpus', (total or None) if world == 1 else None, 'frame',
                            every_s=every_s, enabled=rank == 0, terminal=terminal)
        self._written = 0.0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        if world > 1:
            if rank != 0:
                self._write()
            else:
                self._thread = threading.Thread(target=self._report, name='corpus-progress',
                                                daemon=True)
                self._thread.start()

    def update(self, count: int = 1) -> None:
        self.done += count
        if self.world == 1:
            self.bar.update(count)
        elif self.rank != 0 and time.monotonic() - self._written >= PUBLISH_S:
            self._write()

    def finish(self) -> None:
        """This rank's share is done: its final count, before it waits for the others."""
        if self.world > 1 and self.rank != 0:
            self._write()

    def counts(self) -> tuple[int, int | None]:
        """Frames done over every rank, and the total once every rank has given its share."""
        done, total, seen = self.done, self.total, 1
        for path in self._folder.glob('rank-*.json'):
            try:
                data = json.loads(path.read_text())
            except (OSError, ValueError):  # a rank's file is replaced atomically; gone: skip
                continue
            done, total, seen = done + data['done'], total + data['total'], seen + 1
        return done, total if seen == self.world else None

    def close(self, finished: bool = True) -> None:
        if self._thread is not None:
            self._stop.set()
            self._thread.join()
            self.bar.set(*self.counts())
            # every rank is done: this run's counts go, and those of killed runs before it
            shutil.rmtree(self._folder.parent, ignore_errors=True)
        self.bar.close(finished)

    def _write(self) -> None:
        write_json(self._folder / f'rank-{self.rank}.json',
                   {'done': self.done, 'total': self.total})
        self._written = time.monotonic()

    def _report(self) -> None:
        while not self._stop.wait(REFRESH_S):
            self.bar.set(*self.counts())
