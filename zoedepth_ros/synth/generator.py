"""Synthetic RGB-D dataset generation: random scenes, camera paths, rendering and writing.

Frames come in groups of ``frames_per_scene`` views along one smooth camera path through one
random scene. Scene ``i`` of a domain is drawn from ``numpy.random.default_rng([seed,
domain_code, i])``, so the same seed gives the same images and depths bit for bit, and a
shorter run is a prefix of a longer one with the same ``frames_per_scene``. A simulated sparse
sensor (:mod:`.sensors`) draws its noise from a separate per-frame generator, so it changes
none of the images.
"""

from __future__ import annotations

import math
import multiprocessing
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from zoedepth_ros.errors import InputError
from zoedepth_ros.geometry import PinholeCamera
from zoedepth_ros.io.atomic import atomic_directory
from zoedepth_ros.io.rgbd_folder import FolderWriter
from zoedepth_ros.synth.indoor import build_indoor_scene
from zoedepth_ros.synth.outdoor import build_outdoor_scene
from zoedepth_ros.synth.render import Renderer
from zoedepth_ros.synth.scenes import CameraPose
from zoedepth_ros.synth.sensors import SPARSE_MODES, check_mode, measure
from zoedepth_ros.synth.writers import STORAGES, BagWriter

DOMAINS = ('indoor', 'outdoor')
FORMATS = ('folder', 'bag')
#: Horizontal field of view per domain (NYU's Kinect: ~63 deg; KITTI's ~81 deg is wider).
HFOV_DEG = {'indoor': 62.0, 'outdoor': 75.0}
#: Metres per stored depth unit in the folder format (millimetres; KITTI's 1/256 m).
DEPTH_SCALE = {'indoor': 0.001, 'outdoor': 1.0 / 256.0}
MAX_DEPTH_M = {'indoor': 10.0, 'outdoor': 80.0}
FRAME_PERIOD_NS = 100_000_000  # 10 Hz
FIRST_STAMP_NS = 1_700_000_000 * 1_000_000_000
_BUILDERS = {'indoor': build_indoor_scene, 'outdoor': build_outdoor_scene}


@dataclass(frozen=True)
class SynthFrame:
    """One rendered frame.

    Attributes:
        index: frame number within its domain (0-based).
        stem: file stem, e.g. 'indoor_000042'.
        rgb: (H, W, 3) uint8 RGB image.
        depth_m: (H, W) float32 z-depth in metres, NaN where invalid (sky, beyond range).
        camera: intrinsics of the image.
        pose: camera pose in the scene's world frame.
        scene_index: which random scene the frame shows.
        stamp_ns: capture time (10 Hz from a fixed epoch).
        sparse: the simulated sparse sensor's reading (:func:`.sensors.measure`): lidar
            (M, 3) float32 points in the optical frame, a ToF (H, W) float32 image (NaN = no
            sample), or None without a sensor.
    """

    index: int
    stem: str
    rgb: np.ndarray
    depth_m: np.ndarray
    camera: PinholeCamera
    pose: CameraPose
    scene_index: int
    stamp_ns: int
    sparse: np.ndarray | None = None


@dataclass(frozen=True)
class SynthSummary:
    """What :func:`generate` wrote.

    Attributes:
        output: the output directory.
        datasets: one folder root or bag directory per domain.
        domains: the domains generated.
        frames: frames written in total.
        size: (width, height) of the images.
        fmt: 'folder' or 'bag'.
        seconds: wall time of the whole run.
    """

    output: Path
    datasets: tuple[Path, ...]
    domains: tuple[str, ...]
    frames: int
    size: tuple[int, int]
    fmt: str
    seconds: float

    @property
    def frames_per_s(self) -> float:
        """Generation rate including writing."""
        return self.frames / self.seconds if self.seconds > 0 else float('inf')

    def __str__(self) -> str:
        width, height = self.size
        return (f'{self.frames} {width}x{height} frames ({", ".join(self.domains)}) as '
                f'{self.fmt} in {self.output} in {self.seconds:.1f} s '
                f'({self.frames_per_s:.1f} frames/s)')


def camera_for(domain: str, size: tuple[int, int],
               hfov_deg: float | None = None) -> PinholeCamera:
    """The pinhole camera of ``domain`` at ``size`` = (width, height): square pixels, centred,
    horizontal field of view ``hfov_deg`` (default: the domain's, :data:`HFOV_DEG`)."""
    _check_domain(domain)
    fov = HFOV_DEG[domain] if hfov_deg is None else float(hfov_deg)
    return PinholeCamera.from_fov(int(size[0]), int(size[1]), fov)


def iter_frames(domain: str, count: int, size: tuple[int, int] = (160, 120), seed: int = 0,
                frames_per_scene: int = 4, workers: int = 1, *, sparse: str = 'none',
                hfov_deg: float | None = None) -> Iterator[SynthFrame]:
    """Render ``count`` frames of ``domain``, ``frames_per_scene`` views per random scene.

    Args:
        domain: 'indoor' or 'outdoor'.
        count: number of frames.
        size: (width, height) in pixels.
        seed: non-negative integer seed.
        frames_per_scene: views along each scene's camera path (>= 1).
        workers: processes rendering scenes in parallel (results are identical and in order).
        sparse: simulated sparse sensor, one of ``SPARSE_MODES`` ('none', 'lidar16', 'tof');
            its reading is :attr:`SynthFrame.sparse`.
        hfov_deg: horizontal field of view (default: the domain's, :data:`HFOV_DEG`).

    Yields:
        :class:`SynthFrame` in order.
    """
    camera_for(domain, size, hfov_deg)  # checks the domain and the field of view
    check_mode(sparse)
    if frames_per_scene < 1 or count < 0 or seed < 0 or workers < 1:
        raise InputError(f'need count >= 0, seed >= 0, frames_per_scene >= 1 and workers >= 1;'
                         f' got count={count}, seed={seed}, frames_per_scene={frames_per_scene},'
                         f' workers={workers}')
    size = (int(size[0]), int(size[1]))
    jobs = [(domain, scene, min(frames_per_scene, count - scene * frames_per_scene), size, seed,
             frames_per_scene, sparse, hfov_deg)
            for scene in range(math.ceil(count / frames_per_scene))]
    if workers == 1 or len(jobs) < 2:
        for job in jobs:
            yield from render_scene(*job)
        return
    context = multiprocessing.get_context('spawn')  # safe beside torch/ROS threads
    pool = ProcessPoolExecutor(max_workers=min(workers, len(jobs)), mp_context=context)
    try:
        for frames in pool.map(render_scene, *zip(*jobs), chunksize=1):
            yield from frames
    finally:
        pool.shutdown(cancel_futures=True)


def render_scene(domain: str, scene_index: int, views: int, size: tuple[int, int], seed: int,
                 frames_per_scene: int, sparse: str = 'none',
                 hfov_deg: float | None = None) -> list[SynthFrame]:
    """Build scene ``scene_index`` of ``domain`` and render its first ``views`` frames (with
    the reading of the ``sparse`` sensor)."""
    rng = np.random.default_rng([seed, DOMAINS.index(domain), scene_index])
    scene, path = _BUILDERS[domain](rng)
    camera = camera_for(domain, size, hfov_deg)
    renderer = Renderer(scene, camera)
    frames = []
    for view in range(views):
        index = scene_index * frames_per_scene + view
        pose = path.pose(view / max(1, frames_per_scene - 1))
        rgb, depth = renderer.render(pose, rng)
        reading = None
        if sparse != 'none':  # its own generator: the images do not depend on the sensor
            sensor_rng = np.random.default_rng([seed, DOMAINS.index(domain), index,
                                                SPARSE_MODES.index(sparse)])
            reading = measure(sparse, domain, depth, camera, sensor_rng)
        frames.append(SynthFrame(index=index, stem=f'{domain}_{index:06d}', rgb=rgb,
                                 depth_m=depth, camera=camera, pose=pose,
                                 scene_index=scene_index,
                                 stamp_ns=FIRST_STAMP_NS + index * FRAME_PERIOD_NS,
                                 sparse=reading))
    return frames


def generate(domain: str, count: int, size: tuple[int, int] = (160, 120), seed: int = 0,
             output: Path | str | None = None, fmt: str = 'folder', storage: str = 'sqlite3',
             *, frames_per_scene: int | None = None, test_fraction: float = 0.1,
             overwrite: bool = False, workers: int = 1,
             progress: Callable[[int], None] | None = None, sparse: str = 'none',
             hfov_deg: float | None = None) -> SynthSummary:
    """Generate a synthetic RGB-D dataset (folder format) or a rosbag2.

    With ``domain='both'`` the output holds ``indoor/`` and ``outdoor/`` sub-datasets (or
    bags) of ``count`` frames each; otherwise ``output`` itself is the dataset root (or bag).
    Everything is written to a temporary sibling directory and renamed into place at the end.

    Args:
        domain: 'indoor', 'outdoor' or 'both'.
        count: frames per domain.
        size: (width, height) in pixels.
        seed: non-negative integer seed.
        output: directory to create (must not exist or be empty, unless ``overwrite``).
        fmt: 'folder' (generic RGB-D folder format) or 'bag' (rosbag2).
        storage: bag storage, 'sqlite3' or 'mcap' (bags only).
        frames_per_scene: views per random scene; default 4 for folders, 40 for bags
            (4 s of smooth motion at 10 Hz; the next scene follows as a cut, stamps keep
            increasing; pass ``count`` for one continuous scene).
        test_fraction: share of scenes listed in test.txt (whole scenes; folder only).
        overwrite: replace an existing non-empty ``output``.
        workers: rendering processes (the output does not depend on it).
        progress: called with the number of frames just finished (for a progress bar).
        sparse: simulated sparse sensor written beside the camera topics, 'none', 'lidar16'
            or 'tof' (bags only; see :mod:`.sensors` for the models and topics).
        hfov_deg: horizontal field of view of the camera (default: the domain's,
            :data:`HFOV_DEG`); CameraInfo and dataset.yaml carry the intrinsics.

    Returns:
        A :class:`SynthSummary`.
    """
    domains = DOMAINS if domain == 'both' else (domain,)
    for name in domains:
        camera_for(name, size, hfov_deg)  # checks the domain and the field of view
    if fmt not in FORMATS or storage not in STORAGES:
        raise InputError(f'format {fmt!r} / storage {storage!r}: expected a format in '
                         f'{FORMATS} and a storage in {STORAGES}')
    check_mode(sparse)
    if sparse != 'none' and fmt != 'bag':
        raise InputError(f'a sparse sensor (--sparse {sparse}) is written to bags only; '
                         "use --format bag (fmt='bag')")
    if output is None or count < 1:
        raise InputError(f'generate() needs an output directory and count >= 1; got '
                         f'output={output}, count={count}')
    output = Path(output)
    per_scene = frames_per_scene or (4 if fmt == 'folder' else 40)
    start = time.perf_counter()
    datasets = []
    try:
        with atomic_directory(output, overwrite) as staging:
            staging.mkdir()
            for name in domains:
                target = staging if domain != 'both' else staging / name
                _write_domain(name, count, size, seed, target, fmt, storage, per_scene,
                              test_fraction, workers, progress, sparse, hfov_deg)
                datasets.append(output if domain != 'both' else output / name)
    except FileExistsError:
        raise InputError(f'output {output} exists and is not empty; choose a new directory '
                         'or pass overwrite') from None
    return SynthSummary(output=output, datasets=tuple(datasets), domains=domains,
                        frames=count * len(domains), size=(int(size[0]), int(size[1])),
                        fmt=fmt, seconds=time.perf_counter() - start)


def _write_domain(domain: str, count: int, size: tuple[int, int], seed: int, target: Path,
                  fmt: str, storage: str, frames_per_scene: int, test_fraction: float,
                  workers: int, progress: Callable[[int], None] | None, sparse: str,
                  hfov_deg: float | None) -> None:
    camera = camera_for(domain, size, hfov_deg)
    bag = None
    if fmt == 'folder':
        writer: FolderWriter | BagWriter = FolderWriter(target, domain, camera,
                                                        DEPTH_SCALE[domain], MAX_DEPTH_M[domain])
    else:
        if target.exists():  # the empty staging directory: rosbags creates the bag itself
            target.rmdir()
        writer = bag = BagWriter(target, camera, storage, sparse=sparse, domain=domain)
    period = max(2, round(1.0 / test_fraction)) if test_fraction > 0 else 0
    for frame in iter_frames(domain, count, size, seed, frames_per_scene, workers,
                             sparse=sparse, hfov_deg=hfov_deg):
        test = period > 0 and frame.scene_index % period == period - 1
        writer.write(frame.stem, frame.rgb, frame.depth_m, 'test' if test else 'train',
                     frame.stamp_ns)
        if bag is not None and frame.sparse is not None:
            bag.write_sparse(frame.sparse, frame.stamp_ns)
        if progress is not None:
            progress(1)
    writer.close()


def _check_domain(domain: str) -> None:
    if domain not in DOMAINS:
        raise InputError(f'unknown domain {domain!r}; expected one of {DOMAINS} (or both)')
