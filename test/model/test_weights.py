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
    with pytest.raises(CheckpointError, match='cannot download'):
        weights.resolve_weights('offline')
    assert sorted(p.name for p in cache.iterdir()) == ['model.pt']


def test_names_and_paths(cache, tmp_path) -> None:
    local = tmp_path / 'mine.pt'
    local.write_bytes(b'x')
    assert weights.resolve_weights(str(local)) == local
    with pytest.raises(CheckpointError, match='known names'):
        weights.resolve_weights('no_such_model')
    with pytest.raises(CheckpointError, match='downloads are disabled'):
        weights.resolve_weights('ZoeD_M12_NK', allow_download=False)
    assert weights.REGISTRY['ZoeD_M12_NK'].url.endswith('/v1.0/ZoeD_M12_NK.pt')
