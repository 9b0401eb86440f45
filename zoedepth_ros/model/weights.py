"""Named weights: resolve a registry name to a local file, downloading it once into a cache.

Nothing else in the package touches the network: models are built without I/O and
checkpoints load from local files. A download goes to a temporary file in the cache
directory, is checked (length, and SHA-256 where one is published) and is renamed into place,
so an interrupted download never leaves a file that looks complete. Upstream publishes no
digests for the ZoeDepth releases: the SHA-256 of the first download (or of a file copied
into the cache by hand) is recorded beside it (``<file>.sha256``) and checked at every later
use, so a cached file that changes or is cut short is refused, not loaded.

Cache directory: ``$ZOEDEPTH_CACHE_DIR``, else ``$XDG_CACHE_HOME/zoedepth_ros``, else
``~/.cache/zoedepth_ros``.
"""

from __future__ import annotations

import hashlib
import os
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from zoedepth_ros.errors import CheckpointError
from zoedepth_ros.io.atomic import atomic_path, write_text

RELEASES = 'https://github.com/isl-org/ZoeDepth/releases/download/v1.0/'
DEFAULT_MODEL = 'ZoeD_M12_NK'
"""What the node, the launch file and the CLI load when no model is named: the official
indoor + outdoor model (downloaded once, about 1.3 GB)."""
DEMO_MODEL = 'zoedepth_demo_nk'
"""The bundled demo model (trained on synthetic scenes only)."""


@dataclass(frozen=True)
class WeightSpec:
    """A named checkpoint.

    Attributes:
        url: where to fetch it (``https://``, ``http://`` or ``file://``); empty for bundled.
        preset: model preset (``zoedepth_ros.model.PRESETS``) or bundled config file name.
        sha256: expected digest, or None where upstream publishes none.
        bundled: file name inside the package's ``assets/models`` (no download).
        sha256_prefix: leading hex digits of the digest where only those are published (the
            torch.hub ``name-<prefix>.pt`` convention); checked like a full digest.
    """

    url: str = ''
    preset: str = ''
    sha256: str | None = None
    bundled: str = ''
    sha256_prefix: str | None = None

    def config_source(self, path: Path) -> str:
        """The model config of the weights at ``path``: a preset, or the bundled YAML file."""
        return str(path.with_suffix('.yaml')) if self.bundled else self.preset


REGISTRY: dict[str, WeightSpec] = {
    'ZoeD_M12_N': WeightSpec(RELEASES + 'ZoeD_M12_N.pt', 'ZoeD_N'),
    'ZoeD_M12_K': WeightSpec(RELEASES + 'ZoeD_M12_K.pt', 'ZoeD_K'),
    'ZoeD_M12_NK': WeightSpec(RELEASES + 'ZoeD_M12_NK.pt', 'ZoeD_NK'),
    'midas_v31_beit_large_384': WeightSpec(
        'https://github.com/isl-org/MiDaS/releases/download/v3_1/dpt_beit_large_384.pt',
        'ZoeD_N'),
    # MiDaS v2.1 small relative depth (training init of the ZoeD_small_* core). The v2_1
    # release first served this file as model-small-70d6b9c8.pt, loaded by MiDaS's hubconf
    # with check_hash=True (so its SHA-256 starts with 70d6b9c8); the same release now names
    # it midas_v21_small_256.pt, and MiDaS's torch.hub mirror of it is
    # AlexeyAB/MiDaS/releases/download/midas_dpt/midas_v21_small-70d6b9c8.pt. Same release,
    # same model, same hash in both names: we take it for one file and check that prefix.
    'midas_v21_small_256': WeightSpec(
        'https://github.com/isl-org/MiDaS/releases/download/v2_1/midas_v21_small_256.pt',
        'ZoeD_small_N', sha256_prefix='70d6b9c8'),
    'zoedepth_demo_nk': WeightSpec(preset='zoedepth_demo_nk.yaml', bundled='zoedepth_demo_nk.pt'),
}
"""Upstream publishes no checksums for the ZoeDepth files (MiDaS small has a hash prefix); the
size, the first-use digest and a strict key check on load guard them instead."""

ProgressCallback = Callable[[int, int | None], None]
"""Called with (bytes so far, total bytes or None) while downloading."""


def cache_dir() -> Path:
    """Directory holding downloaded weights."""
    explicit = os.environ.get('ZOEDEPTH_CACHE_DIR')
    if explicit:
        return Path(explicit)
    base = os.environ.get('XDG_CACHE_HOME') or Path.home() / '.cache'
    return Path(base) / 'zoedepth_ros'


def bundled_path(file_name: str) -> Path:
    """Path of a file shipped inside the package under ``assets/models``."""
    return Path(str(resources.files('zoedepth_ros') / 'assets' / 'models' / file_name))


def sha256_of(path: Path, chunk: int = 1 << 20) -> str:
    digest = hashlib.sha256()
    with path.open('rb') as handle:
        while block := handle.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def digest_mismatch(actual: str, sha256: str | None, sha256_prefix: str | None) -> str | None:
    """What ``actual`` fails to match (the full digest or its published prefix), or None."""
    if sha256 is not None and actual != sha256:
        return f'sha256 {sha256}'
    if sha256_prefix is not None and not actual.startswith(sha256_prefix.lower()):
        return f'a sha256 starting with {sha256_prefix}'
    return None


def download(url: str, destination: Path, sha256: str | None = None,
             progress: ProgressCallback | None = None, timeout_s: float = 60.0,
             sha256_prefix: str | None = None) -> Path:
    """Fetch ``url`` to ``destination`` atomically, verifying ``sha256`` (or only its leading
    ``sha256_prefix`` digits) when given.

    Raises:
        CheckpointError: network or file errors, a short download, a checksum mismatch.
    """
    try:
        with atomic_path(destination) as tmp, tmp.open('wb') as out, \
                urllib.request.urlopen(url, timeout=timeout_s) as response:
            length = response.headers.get('Content-Length') if hasattr(response, 'headers') \
                else None
            total = int(length) if length else None
            done = 0
            while block := response.read(1 << 20):
                out.write(block)
                done += len(block)
                if progress is not None:
                    progress(done, total)
            out.flush()
            if total is not None and done != total:
                raise CheckpointError(f'download of {url} stopped at {done} of {total} bytes')
            if sha256 is not None or sha256_prefix is not None:
                actual = sha256_of(tmp)
                if expected := digest_mismatch(actual, sha256, sha256_prefix):
                    raise CheckpointError(f'checksum mismatch for {url}: expected {expected},'
                                          f' got {actual}; the file was discarded')
    except (urllib.error.URLError, OSError) as err:
        reason = getattr(err, 'reason', None) or err
        raise CheckpointError(f'cannot download {url} ({reason})') from None
    return destination


def progress_reporter(say: Callable[[str], object], name: str,
                      step: float = 0.1) -> ProgressCallback:
    """A ProgressCallback that says one line per ``step`` of the download (or per 100 MB when
    the size is unknown), e.g. ``downloading ZoeD_M12_NK.pt: 420 of 1345 MB (31 %)``."""
    shown = [-1]

    def report(done: int, total: int | None) -> None:
        mark = int(done / total / step) if total else done // 100_000_000
        if mark == shown[0] and done != total:
            return
        shown[0] = mark
        size = f'{done / 1e6:.0f} of {total / 1e6:.0f} MB ({100 * done / total:.0f} %)' \
            if total else f'{done / 1e6:.0f} MB'
        say(f'downloading {name}: {size}')

    return report


def _verified_cache_file(target: Path, sha256: str | None,
                         sha256_prefix: str | None = None) -> Path:
    """``target``, checked against the published digest (or prefix) and the one recorded at
    first use."""
    record = target.with_name(target.name + '.sha256')
    recorded = record.read_text().strip() if record.is_file() else None
    actual = sha256_of(target)
    expected = digest_mismatch(actual, sha256 or recorded, sha256_prefix)
    if expected is not None:
        raise CheckpointError(f'cached {target} does not match its checksum (sha256 {actual}, '
                              f'expected {expected}): it changed or is incomplete; delete it '
                              'and its .sha256 file and retry')
    if not record.is_file():
        write_text(record, actual + '\n')
    return target


def resolve_weights(name_or_path: str, progress: ProgressCallback | None = None,
                    allow_download: bool = True) -> Path:
    """A local checkpoint path for a file path or a registry name (downloading once)."""
    path = Path(name_or_path).expanduser()
    if path.exists():
        return path
    spec = REGISTRY.get(name_or_path)
    if spec is None:
        raise CheckpointError(
            f'{name_or_path!r} is neither an existing file nor a known weights name; known '
            f'names: {sorted(REGISTRY)}. Official weights: {RELEASES} (ZoeD_M12_N.pt, '
            f'ZoeD_M12_K.pt, ZoeD_M12_NK.pt)')
    if spec.bundled:
        return bundled_path(spec.bundled)
    target = cache_dir() / Path(spec.url).name
    if not target.exists():
        offline = (f'Without network, download {spec.url} elsewhere and copy it to {target} '
                   f'(set ZOEDEPTH_CACHE_DIR to move the cache) or pass the file path as the '
                   f'model; the bundled {DEMO_MODEL} (as --model, or the node parameter model) '
                   'needs no download but was trained on synthetic scenes only')
        if not allow_download:
            raise CheckpointError(f'{name_or_path} is not in the cache and downloads are '
                                  f'disabled. {offline}')
        try:
            download(spec.url, target, spec.sha256, progress,
                     sha256_prefix=spec.sha256_prefix)
        except CheckpointError as err:
            raise CheckpointError(f'{err}. {offline}') from None
    return _verified_cache_file(target, spec.sha256, spec.sha256_prefix)
