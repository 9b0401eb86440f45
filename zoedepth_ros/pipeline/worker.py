"""One model serving one or more camera streams: the newest frame of each, one batch.

:class:`BatchWorker` runs one thread. When the model is free, it takes the newest waiting
frame of every stream that has one (each stream keeps only its newest frame: a frame replaced
while waiting counts as dropped there), and runs them through
:func:`~zoedepth_ros.pipeline.predict.predict_frames` as one batch (per image size), each with
its own camera, options and anchoring; each stream then publishes its own frame's outputs.
Every stream with a frame is in every batch, so under overload no camera starves and the
frame each camera gets served is at most one batch old when the batch starts.
"""

from __future__ import annotations

import threading
import time
import traceback
from collections.abc import Sequence
from typing import Protocol

from zoedepth_ros.errors import ZoeDepthError
from zoedepth_ros.inference import DepthEstimator
from zoedepth_ros.pipeline.outputs import FrameOutputs
from zoedepth_ros.pipeline.predict import FrameJob, predict_frames
from zoedepth_ros.pipeline.sync import Frame


class Log(Protocol):
    """The logger methods used (rclpy's logger has them)."""

    def info(self, message: str, *, throttle_duration_sec: float = ...) -> object: ...
    def warning(self, message: str, *, throttle_duration_sec: float = ...) -> object: ...
    def error(self, message: str, *, throttle_duration_sec: float = ...) -> object: ...
    def debug(self, message: str, *, throttle_duration_sec: float = ...) -> object: ...


class Stream(Protocol):
    """What the worker needs of a camera stream (CameraPipeline has it)."""

    log: Log

    def attach(self, wake: threading.Event) -> None:
        """Start accepting frames; set ``wake`` whenever one is waiting."""

    def detach(self) -> None:
        """Stop accepting frames."""

    def take(self) -> Frame | None:
        """The newest waiting frame (removed), or None."""

    def prepare(self, frame: Frame) -> FrameJob | None:
        """The frame's job (None: it cannot be computed yet, e.g. no intrinsics)."""

    def finish(self, frame: Frame, outputs: FrameOutputs) -> None:
        """Hand the frame's outputs on."""

    def reject(self, err: ZoeDepthError) -> None:
        """Count and report an input that cannot be used."""


class BatchWorker:
    """The thread(s) that serve ``streams`` with ``estimator`` (see the module docstring).

    Args:
        streams: the camera streams, in a fixed order (the batch order).
        estimator: the one model.
        log: where a failing batch is reported.
        workers: threads running the model. One (the default) takes the newest frame of every
            camera as one batch: what a GPU wants. On a CPU, where a batch costs as much as
            its frames one by one, several threads (each with ``threads`` torch threads, e.g.
            one per core with ``threads`` 1) run cameras in parallel: each takes at most its
            share (cameras / workers, rounded up) of the cameras, and a camera is served by
            one worker at a time, so its outputs stay in order and its anchoring state has
            one writer.
    """

    def __init__(self, streams: Sequence[Stream], estimator: DepthEstimator, log: Log,
                 workers: int = 1) -> None:
        if workers < 1:
            raise ValueError(f'workers must be at least 1, got {workers}')
        self.streams, self.estimator, self.log = list(streams), estimator, log
        self.workers = workers
        self.max_batch = -(-len(self.streams) // workers)
        self.batches = 0
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._busy: set[int] = set()
        self._next = 0
        self._threads: list[threading.Thread] = []

    @property
    def running(self) -> bool:
        return bool(self._threads)

    def start(self) -> None:
        if self._threads:
            return
        self._wake, self._stop = threading.Event(), threading.Event()
        self._busy, self._next = set(), 0
        for stream in self.streams:
            stream.attach(self._wake)
        self._threads = [threading.Thread(target=self._work, name=f'depth_worker_{index}',
                                          daemon=True) for index in range(self.workers)]
        for thread in self._threads:
            thread.start()

    def stop(self, timeout_s: float = 3.0) -> None:
        """Stop serving; a batch still in the model after ``timeout_s`` is abandoned."""
        threads, self._threads = self._threads, []
        if not threads:
            return
        for stream in self.streams:
            stream.detach()
        self._stop.set()
        self._wake.set()
        deadline = time.monotonic() + timeout_s
        for thread in threads:
            thread.join(timeout=max(0.0, deadline - time.monotonic()))
        if any(thread.is_alive() for thread in threads):
            self.log.warning('the worker is still in a frame: not waiting for it')

    def _claim(self) -> list[tuple[int, Stream, Frame]]:
        """Up to ``max_batch`` idle streams' newest frames, in turn from where the last
        claim stopped (so that with several workers every camera gets its turn)."""
        taken: list[tuple[int, Stream, Frame]] = []
        with self._lock:
            count = len(self.streams)
            for step in range(count):
                index = (self._next + step) % count
                if index in self._busy:
                    continue
                frame = self.streams[index].take()
                if frame is None:
                    continue
                self._busy.add(index)
                taken.append((index, self.streams[index], frame))
                if len(taken) == self.max_batch:
                    self._next = (index + 1) % count
                    break
        return taken

    def _work(self) -> None:
        stop, wake = self._stop, self._wake
        while not stop.is_set():
            if not wake.wait(0.2):
                continue
            wake.clear()
            taken = self._claim()
            if not taken:
                continue
            wake.set()  # frames left for another worker, or to look at again
            try:
                if not stop.is_set():
                    self.run([(stream, frame) for _, stream, frame in taken])
            finally:
                with self._lock:
                    self._busy.difference_update(index for index, _, _ in taken)
                wake.set()  # frames that came while these cameras were busy

    def run(self, taken: list[tuple[Stream, Frame]]) -> list[FrameOutputs | None]:
        """One batch: each (stream, frame)'s outputs (None where the frame was not served)."""
        jobs: list[tuple[int, FrameJob]] = []
        for index, (stream, frame) in enumerate(taken):
            try:
                job = stream.prepare(frame)
            except ZoeDepthError as err:
                stream.reject(err)
                continue
            if job is not None:
                jobs.append((index, job))
        results: list[FrameOutputs | None] = [None] * len(taken)
        if not jobs:
            return results
        self.batches += 1
        for (index, _), outputs in zip(jobs, self._predict([job for _, job in jobs])):
            stream, frame = taken[index]
            if isinstance(outputs, ZoeDepthError):
                stream.reject(outputs)
                continue
            if isinstance(outputs, Exception):
                self._failed(outputs)
                continue
            results[index] = outputs
            try:
                stream.finish(frame, outputs)
            except Exception as err:  # noqa: BLE001 - one stream's sink must not stop the rest
                self._failed(err)
        return results

    def _predict(self, jobs: list[FrameJob]) -> list[FrameOutputs | Exception]:
        """The batch's outputs; when the batch fails, each frame alone, so that one bad frame
        costs only its own camera its outputs (its error in its place)."""
        try:
            return list(predict_frames(self.estimator, jobs))
        except Exception as err:  # noqa: BLE001 - the worker must outlive one bad batch
            if len(jobs) == 1:
                return [err]
        results: list[FrameOutputs | Exception] = []
        for job in jobs:
            try:
                results.append(predict_frames(self.estimator, [job])[0])
            except Exception as err:  # noqa: BLE001
                results.append(err)
        return results

    def _failed(self, err: Exception) -> None:
        if self._stop.is_set():
            return  # shutting down: the sink's context may be gone already
        trace = ''.join(traceback.format_exception(type(err), err, err.__traceback__))
        self.log.error(f'processing a frame failed: {err!r}\n{trace}',
                       throttle_duration_sec=2.0)
