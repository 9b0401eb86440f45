"""Installing the package (what `make setup` and `make demo` do) prints no packaging warning
and installs the bundled assets."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def test_install_is_quiet_and_complete(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, '-m', 'pip', 'install', '--no-deps', '--no-build-isolation',
         '--no-compile', '--target', str(tmp_path / 'site'), str(REPO)],
        capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    output = done.stdout + done.stderr
    assert 'arning' not in output, output  # Warning / warning / BuildBackendWarning
    installed = tmp_path / 'site' / 'zoedepth_ros'
    assert (installed / 'assets' / 'models' / 'zoedepth_demo_nk.pt').is_file()
    assert (installed / 'pipeline' / 'camera.py').is_file()
    assert not list(installed.rglob('__pycache__'))
