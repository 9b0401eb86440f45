"""The ROS-install requirements resolve to wheels on x86_64 and aarch64; extras say what's missing.

Robots run ROS 2 from apt on x86_64 and aarch64 (Jetson, Raspberry Pi, ARM industrial PCs), with
Humble's Python 3.10 (Ubuntu 22.04, glibc 2.35) or Jazzy's 3.12 (Ubuntu 24.04, glibc 2.39).
pip resolves ``requirements-ros.txt`` for each of them from the package index with
``--dry-run --only-binary :all: --platform``, under the README recipe's ``numpy<2``
constraint: a requirement without a wheel there fails here before it fails on a robot.
"""

from __future__ import annotations

import json
import runpy
import subprocess
import sys
from pathlib import Path

import pytest
import setuptools

from zoedepth_ros.extras import EXTRAS, MissingExtraError, require

REPO = Path(__file__).resolve().parents[1]
SAMPLES = REPO / 'zoedepth_ros' / 'assets' / 'samples'
TARGETS = [('aarch64', '3.10', 35), ('aarch64', '3.12', 39), ('x86_64', '3.10', 35),
           ('x86_64', '3.12', 39)]
"""(machine, Python, glibc minor version): Humble's and Jazzy's Ubuntu."""


def resolve(requirements: list[str], machine: str, python: str, glibc: int,
            tmp_path: Path) -> subprocess.CompletedProcess[str]:
    """pip's resolution for another machine; the report lands in tmp_path/report.json."""
    # pip does not widen manylinux_2_X to older tags by itself: list every one a system with
    # that glibc accepts.
    platforms = [f'manylinux_2_{minor}_{machine}' for minor in range(17, glibc + 1)]
    constraints = tmp_path / 'constraints.txt'
    constraints.write_text('numpy<2\n')  # apt's numpy 1.x stays (README recipe)
    command = [sys.executable, '-m', 'pip', 'install', '--dry-run', '--ignore-installed',
               '--only-binary', ':all:', '--python-version', python, '--implementation', 'cp',
               '--platform', f'manylinux2014_{machine}', '-c', str(constraints),
               '--report', str(tmp_path / 'report.json'), '-q', '--disable-pip-version-check']
    for platform in platforms:
        command += ['--platform', platform]
    return subprocess.run(command + requirements, capture_output=True, text=True, timeout=600)


@pytest.mark.slow
@pytest.mark.parametrize(('machine', 'python', 'glibc'), TARGETS,
                         ids=[f'{m}-py{p}' for m, p, _ in TARGETS])
def test_ros_requirements_have_wheels(machine: str, python: str, glibc: int,
                                      tmp_path: Path) -> None:
    done = resolve(['-r', str(REPO / 'requirements-ros.txt')], machine, python, glibc, tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    report = json.loads((tmp_path / 'report.json').read_text())
    chosen = {item['metadata']['name'].lower(): item for item in report['install']}
    for name in ('torch', 'torchvision', 'timm', 'rosbags', 'onnxruntime', 'matplotlib'):
        assert name in chosen, sorted(chosen)
        assert chosen[name]['download_info']['url'].endswith('.whl')
    assert int(chosen['numpy']['metadata']['version'].split('.')[0]) == 1
    assert not {'trimesh', 'embreex', 'tensorboard'} & chosen.keys()  # extras stay optional


@pytest.mark.slow
def test_the_synth_extra_is_x86_64_only(tmp_path: Path) -> None:
    """What extras.NOTES says: embreex has no aarch64 wheel (revisit when it gets one)."""
    done = resolve(list(EXTRAS['synth']), 'aarch64', '3.12', 39, tmp_path)
    assert done.returncode != 0 and 'embreex' in done.stderr


def test_setup_py_declares_the_same_extras(monkeypatch: pytest.MonkeyPatch) -> None:
    captured: dict[str, object] = {}
    monkeypatch.setattr(setuptools, 'setup', lambda **kwargs: captured.update(kwargs))
    monkeypatch.chdir(REPO)
    runpy.run_path(str(REPO / 'setup.py'))
    extras = captured['extras_require']
    assert {name: tuple(pins) for name, pins in extras.items() if name != 'test'} == EXTRAS


def test_a_missing_extra_names_what_to_install() -> None:
    with pytest.raises(MissingExtraError) as caught:
        require('synth', 'zoedepth_ros_no_such_module', 'Synthetic scenes')
    message = str(caught.value)
    assert message.startswith("Synthetic scenes needs the optional 'synth' packages")
    assert "pip install 'trimesh>=4.0,<5' 'embreex>=2.17'" in message
    assert "'.[synth]'" in message and 'x86_64 only' in message


@pytest.mark.parametrize(('blocked', 'argv', 'extra'), [
    ('embreex', ['synth', '--domain', 'indoor', '--count', '1', '--output', 'OUT'], 'synth'),
    ('tensorboard', ['train', '--config', 'config/train/tiny_test.yaml', '--set',
                     'tensorboard=True', '--set', 'output_dir=OUT', '--set',
                     f"data.train_roots=['{SAMPLES}/indoor', '{SAMPLES}/outdoor']", '--set',
                     f"data.val_roots=['{SAMPLES}/indoor']"], 'train'),
])
def test_commands_without_their_extra_print_one_line(blocked: str, argv: list[str], extra: str,
                                                     tmp_path: Path) -> None:
    argv = [arg.replace('OUT', str(tmp_path / 'out')) for arg in argv]
    script = (f'import sys; sys.modules[{blocked!r}] = None\n'  # as if not installed
              'from zoedepth_ros.cli.main import main\n'
              f'sys.exit(main({argv!r}))\n')
    done = subprocess.run([sys.executable, '-c', script], cwd=REPO, capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == 2, done.stderr[-2000:]
    assert 'Traceback' not in done.stderr
    errors = [line for line in done.stderr.splitlines() if line.startswith('ERROR')]
    assert len(errors) == 1 and f'optional {extra!r} packages' in errors[0], done.stderr
