"""Stop signals of the node processes (standard library only: installed before anything
heavy is imported, so a Ctrl-C during start-up also ends cleanly)."""

from __future__ import annotations

import os
import signal
import time
from types import FrameType

FORCE_EXIT_SIGNAL = 3
"""The signal count that ends the process at once, whatever it is doing."""


class StopSignals:
    """SIGINT/SIGTERM handler: the first stops the node, the second is ignored, the third kills.

    A terminal's Ctrl-C reaches a launched node twice: once from the terminal (SIGINT to the
    whole process group) and once from ``ros2 launch``, which forwards its own SIGINT. The
    second one lands while the node shuts down (destroying the node, joining the worker,
    interpreter exit), where the default handler would raise ``KeyboardInterrupt`` inside that
    cleanup and print a traceback. So only the first one raises; the second is counted and
    ignored; the third (launch escalates to SIGTERM after its ``sigterm_timeout``, or a user
    insists) ends a node that hangs with exit code 128 + signal.

    rclpy's own handler (installed by ``rclpy.init``) runs first, then chains to this one; its
    deferred thread shuts the context down, which ends the executor's spin. This Python handler
    only runs when the main thread next executes bytecode, and on a loaded machine that can be
    after the spin has ended and the node is being destroyed. So :attr:`raising` is cleared as
    soon as the spin ends: from then on a signal is counted, never raised into the cleanup, and
    :meth:`settle` waits for the count of a signal whose rclpy half has already arrived.
    """

    def __init__(self) -> None:
        self.count = 0
        self.first: str | None = None
        self.raising = True
        """Whether the first signal raises ``KeyboardInterrupt`` (start-up and spin). Cleared
        by a plain assignment, which runs no Python call where a pending handler could raise."""

    def install(self) -> None:
        for number in (signal.SIGINT, signal.SIGTERM):
            signal.signal(number, self)

    def release(self) -> None:
        """Ignore both signals for the rest of the process: the node has stopped, and only the
        interpreter's exit remains. Python restores the default handlers (death by the signal,
        exit code -2 in launch's report) during its finalization, but leaves ignored ones."""
        for number in (signal.SIGINT, signal.SIGTERM):
            signal.signal(number, signal.SIG_IGN)

    def settle(self, timeout_s: float) -> None:
        """Wait up to ``timeout_s`` for a first signal to be counted (call with
        :attr:`raising` cleared: the handler then runs inside this sleep without raising)."""
        deadline = time.monotonic() + timeout_s
        while self.count == 0 and time.monotonic() < deadline:
            time.sleep(0.01)

    def __call__(self, number: int, frame: FrameType | None) -> None:
        self.count += 1
        name = signal.Signals(number).name
        if self.count == 1:
            self.first = name
            if self.raising:
                raise KeyboardInterrupt
            return
        if self.count >= FORCE_EXIT_SIGNAL:
            os.write(2, f'[depth_node] {name}: signal {self.count} while stopping, forced exit '
                        f'(code {128 + number})\n'.encode())
            os._exit(128 + number)
