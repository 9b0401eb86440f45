"""Dependency direction of architecture.md: a ROS-free core and thin adapters."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / 'zoedepth_ros'
ROS = ('rclpy', 'sensor_msgs', 'std_msgs', 'geometry_msgs', 'diagnostic_msgs',
       'builtin_interfaces', 'rosgraph_msgs', 'lifecycle_msgs', 'sensor_msgs_py', 'cv_bridge',
       'message_filters')


def imports(path: Path) -> tuple[set[str], set[str]]:
    """(every imported module, module-level imported modules) of a source file."""
    tree = ast.parse(path.read_text())
    everything: set[str] = set()
    top_level: set[str] = set()
    for node in ast.walk(tree):
        names = []
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module]
        everything.update(names)
    for node in tree.body:
        if isinstance(node, ast.Import):
            top_level.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            top_level.add(node.module)
    return everything, top_level


def banned(modules: set[str], prefixes: tuple[str, ...]) -> list[str]:
    return sorted(m for m in modules if any(m == p or m.startswith(p + '.') for p in prefixes))


def sources(pattern: str) -> list[Path]:
    return sorted(PACKAGE.glob(pattern))


RULES = [
    # (files, forbidden anywhere, forbidden at module level)
    ('**/*.py', (), ()),
    ('model/*.py', ROS + ('cv2', 'PIL', 'rosbags', 'tqdm', 'zoedepth_ros.ros'), ()),
    ('inference.py', ROS + ('rosbags', 'tqdm', 'cv2', 'zoedepth_ros.ros'), ()),
    ('training/*.py', ROS + ('tqdm', 'zoedepth_ros.ros', 'zoedepth_ros.cli'), ()),
    ('evaluation.py', ROS + ('tqdm', 'zoedepth_ros.ros', 'zoedepth_ros.cli'), ()),
    ('data/messages.py', ROS + ('rosbags', 'torch', 'zoedepth_ros.ros'), ()),
    ('data/*.py', ROS + ('zoedepth_ros.ros', 'zoedepth_ros.cli'), ()),
    ('geometry.py', ROS + ('rosbags', 'timm', 'torch', 'zoedepth_ros.model'), ()),
    ('metrics.py', ROS + ('rosbags', 'timm', 'zoedepth_ros.model'), ()),
    ('config.py', ROS + ('torch', 'numpy', 'timm', 'zoedepth_ros.model'), ()),
    ('errors.py', ROS + ('torch', 'numpy', 'yaml'), ()),
    # The CLI may start ROS tools, but only through zoedepth_ros.ros, imported lazily.
    ('cli/*.py', ROS, ('zoedepth_ros.ros', 'torch', 'timm')),
]


@pytest.mark.parametrize('pattern, anywhere, top_level', RULES)
def test_import_rules(pattern: str, anywhere: tuple[str, ...], top_level: tuple[str, ...]
                      ) -> None:
    files = sources(pattern)
    assert files, f'no files match {pattern}'
    for path in files:
        everything, module_level = imports(path)
        relative = path.relative_to(PACKAGE)
        if relative.parts[0] != 'ros':
            found = banned(everything, ROS)
            assert not found, f'{relative} imports ROS: {found}'
        assert not banned(everything, anywhere), f'{relative}: {banned(everything, anywhere)}'
        found = banned(module_level, top_level)
        assert not found, f'{relative}: {found}'


def test_package_init_is_light() -> None:
    everything, _ = imports(PACKAGE / '__init__.py')
    assert everything <= {'__future__'}
