"""Weights registry and download: file:// and a real HTTP server on 127.0.0.1 only."""

from __future__ import annotations

import hashlib
import http.server
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from zoedepth_ros.errors import CheckpointError
from zoedepth_ros.model import weights

PAYLOAD = b'zoedepth-weights' * 4096


@pytest.fixture
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    directory = tmp_path / 'cache'
    monkeypatch.setenv('ZOEDEPTH_CACHE_DIR', str(directory))
    return directory


@pytest.fixture
def server(tmp_path: Path) -> Iterator[str]:
    root = tmp_path / 'www'
    root.mkdir()
    (root / 'model.pt').write_bytes(PAYLOAD)

    class Handler(http.server.SimpleHTTPRequestHandler):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, directory=str(root), **kwargs)

        def log_message(self, *args) -> None:
            pass

    httpd = http.server.ThreadingHTTPServer(('127.0.0.1', 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f'http://127.0.0.1:{httpd.server_address[1]}'
    httpd.shutdown()


def register(monkeypatch: pytest.MonkeyPatch, url: str, sha256: str | None) -> None:
    monkeypatch.setitem(weights.REGISTRY, 'test_model', weights.WeightSpec(url, 'ZoeD_N', sha256))


def test_http_download_is_cached_and_checked(cache, server, monkeypatch) -> None:
    digest = hashlib.sha256(PAYLOAD).hexdigest()
    register(monkeypatch, f'{server}/model.pt', digest)
    seen: list[tuple[int, int | None]] = []
    path = weights.resolve_weights('test_model', progress=lambda d, t: seen.append((d, t)))
    assert path == cache / 'model.pt' and path.read_bytes() == PAYLOAD
    assert seen[-1] == (len(PAYLOAD), len(PAYLOAD))
    # Second resolution uses the cache: downloads disabled, still resolved.
    assert weights.resolve_weights('test_model', allow_download=False) == path


def test_checksum_mismatch_leaves_nothing(cache, tmp_path, monkeypatch) -> None:
    source = tmp_path / 'model.pt'
    source.write_bytes(PAYLOAD)
    register(monkeypatch, source.as_uri(), '0' * 64)
    with pytest.raises(CheckpointError, match='checksum mismatch'):
        weights.resolve_weights('test_model')
    assert not any(cache.iterdir())


def test_file_url_and_unreachable_server(cache, tmp_path, monkeypatch) -> None:
    source = tmp_path / 'model.pt'
    source.write_bytes(PAYLOAD)
    register(monkeypatch, source.as_uri(), None)
    assert weights.resolve_weights('test_model').read_bytes() == PAYLOAD
    monkeypatch.setitem(weights.REGISTRY, 'offline',
                        weights.WeightSpec('http://127.0.0.1:9/x.pt', 'ZoeD_N'))
    with pytest.raises(CheckpointError) as error:
        weights.resolve_weights('offline')
    # One message: what failed, where a hand-downloaded file goes, the bundled alternative.
    text = str(error.value)
    assert text.startswith('cannot download http://127.0.0.1:9/x.pt')
    assert f'copy it to {cache / "x.pt"}' in text and 'zoedepth_demo_nk (as --model' in text
    assert sorted(p.name for p in cache.iterdir()) == ['model.pt', 'model.pt.sha256']


def test_first_use_digest_guards_the_cached_file(cache, tmp_path, monkeypatch) -> None:
    source = tmp_path / 'model.pt'
    source.write_bytes(PAYLOAD)
    register(monkeypatch, source.as_uri(), None)  # upstream publishes no digest
    path = weights.resolve_weights('test_model')
    record = path.with_name('model.pt.sha256')
    assert record.read_text().strip() == hashlib.sha256(PAYLOAD).hexdigest()
    path.write_bytes(PAYLOAD[:-10])  # cut short after the first use
    with pytest.raises(CheckpointError, match='does not match its checksum'):
        weights.resolve_weights('test_model', allow_download=False)
    record.unlink()  # a file copied into the cache by hand is accepted and recorded
    path.write_bytes(PAYLOAD)
    assert weights.resolve_weights('test_model', allow_download=False) == path
    assert record.is_file()


def test_progress_is_one_line_per_tenth() -> None:
    lines: list[str] = []
    report = weights.progress_reporter(lines.append, 'ZoeD_M12_NK.pt')
    for done in range(0, 1_345_000_001, 1_000_000):
        report(done, 1_345_000_000)
    assert len(lines) == 11 and lines[-1] == 'downloading ZoeD_M12_NK.pt: 1345 of 1345 MB (100 %)'
    unknown: list[str] = []
    report = weights.progress_reporter(unknown.append, 'x.pt')
    for done in range(0, 250_000_001, 1_000_000):
        report(done, None)
    assert unknown[-1] == 'downloading x.pt: 200 MB' and len(unknown) == 3


def test_names_and_paths(cache, tmp_path) -> None:
    local = tmp_path / 'mine.pt'
    local.write_bytes(b'x')
    assert weights.resolve_weights(str(local)) == local
    with pytest.raises(CheckpointError, match='known names'):
        weights.resolve_weights('no_such_model')
    with pytest.raises(CheckpointError, match='downloads are disabled'):
        weights.resolve_weights('ZoeD_M12_NK', allow_download=False)
    assert weights.DEFAULT_MODEL == 'ZoeD_M12_NK' and weights.DEMO_MODEL in weights.REGISTRY
    assert weights.REGISTRY['ZoeD_M12_NK'].url.endswith('/v1.0/ZoeD_M12_NK.pt')


def test_sha256_prefix_is_checked_like_a_digest(cache, tmp_path, monkeypatch) -> None:
    source = tmp_path / 'model-small.pt'
    source.write_bytes(PAYLOAD)
    digest = hashlib.sha256(PAYLOAD).hexdigest()
    wrong = format((int(digest[:8], 16) + 1) % 16**8, '08x')
    monkeypatch.setitem(weights.REGISTRY, 'bad_prefix', weights.WeightSpec(
        source.as_uri(), 'ZoeD_small_N', sha256_prefix=wrong))
    with pytest.raises(CheckpointError, match=f'checksum mismatch.*starting with {wrong}'):
        weights.resolve_weights('bad_prefix')
    assert not any(cache.iterdir())
    monkeypatch.setitem(weights.REGISTRY, 'good_prefix', weights.WeightSpec(
        source.as_uri(), 'ZoeD_small_N', sha256_prefix=digest[:8].upper()))
    path = weights.resolve_weights('good_prefix')
    assert path.read_bytes() == PAYLOAD
    assert path.with_name('model-small.pt.sha256').read_text().strip() == digest
    # The cached file is checked against the prefix (and the first-use digest) at every use.
    path.write_bytes(PAYLOAD[:-1])
    path.with_name('model-small.pt.sha256').unlink()
    with pytest.raises(CheckpointError, match=f'starting with {digest[:8].upper()}'):
        weights.resolve_weights('good_prefix', allow_download=False)


def test_midas_small_weights_are_registered() -> None:
    spec = weights.REGISTRY['midas_v21_small_256']
    assert spec.url == ('https://github.com/isl-org/MiDaS/releases/download/v2_1/'
                        'midas_v21_small_256.pt')
    assert spec.sha256_prefix == '70d6b9c8' and spec.preset == 'ZoeD_small_N'
