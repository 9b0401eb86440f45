"""Dependency direction: a ROS-free core, thin adapters, no import cycles.

Every module of the package is checked, imports inside functions included. The table below is
the layering of docs/architecture.md; a module may import what its row allows and nothing its
row forbids.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / 'zoedepth_ros'
ROS = ('rclpy', 'sensor_msgs', 'std_msgs', 'geometry_msgs', 'diagnostic_msgs',
       'builtin_interfaces', 'rosgraph_msgs', 'lifecycle_msgs', 'rcl_interfaces',
       'sensor_msgs_py', 'cv_bridge', 'message_filters', 'tf2_ros', 'launch', 'launch_ros')
P = 'zoedepth_ros.'
ADAPTERS = (P + 'ros', P + 'cli')
HIGH = ADAPTERS + (P + 'training', P + 'evaluation', P + 'synth')

# (module prefix, forbidden module prefixes). The first matching row applies.
RULES: list[tuple[str, tuple[str, ...]]] = [
    ('ros.', ('tqdm', P + 'cli', P + 'training', P + 'evaluation', P + 'synth')),
    ('cli.', ROS),  # ROS tools only through zoedepth_ros.ros, imported inside functions
    ('training.', ROS + ('tqdm', P + 'ros', P + 'cli', P + 'evaluation', P + 'synth')),
    ('evaluation.', ROS + ('tqdm', P + 'ros', P + 'cli', P + 'training', P + 'synth')),
    ('synth.', ROS + ('tqdm', 'torch', P + 'model', P + 'inference', P + 'pipeline', P + 'data',
                      P + 'metrics') + HIGH[:-1]),
    ('data.', ROS + ('tqdm', P + 'model', P + 'inference', P + 'pipeline') + HIGH),
    ('pipeline.', ROS + ('tqdm', 'rosbags', 'cv2', P + 'data') + HIGH),
    ('inference', ROS + ('tqdm', 'rosbags', 'cv2', P + 'io', P + 'pipeline', P + 'data') + HIGH),
    ('model.', ROS + ('tqdm', 'rosbags', 'cv2', P + 'inference', P + 'pipeline', P + 'data',
                      P + 'metrics', P + 'geometry', P + 'pointcloud', P + 'io.messages',
                      P + 'io.bags', P + 'io.files') + HIGH),
    ('io.atomic', ('numpy', 'torch', 'cv2', 'yaml', P)),
    ('io.', ROS + ('tqdm', 'torch', P + 'model', P + 'inference', P + 'pipeline', P + 'data',
                   P + 'metrics', P + 'pointcloud') + HIGH),
    ('pointcloud', ROS + ('rosbags', 'timm', 'cv2', P + 'model', P + 'inference', P + 'pipeline')
     + HIGH),
    ('geometry', ROS + ('rosbags', 'timm', 'cv2', P + 'model', P + 'io', P + 'inference',
                        P + 'pipeline', P + 'pointcloud', P + 'data', P + 'metrics') + HIGH),
    ('metrics', ROS + ('rosbags', 'timm', 'cv2', P + 'model', P + 'io', P + 'inference',
                       P + 'pipeline', P + 'pointcloud', P + 'data') + HIGH),
    ('anchoring.', ROS + ('rosbags', 'timm', 'cv2', P + 'model', P + 'io', P + 'inference',
                         P + 'pipeline', P + 'pointcloud', P + 'data', P + 'metrics') + HIGH),
    ('config', ROS + ('torch', 'numpy', 'timm', 'cv2', P + 'model', P + 'io.messages')),
    ('errors', ROS + ('torch', 'numpy', 'yaml', P)),
    # the camera-name rule: the ros2 launch process imports it (standard library only)
    ('names', ROS + ('torch', 'numpy', 'yaml', P)),
    # setup.py reads its EXTRAS literal; it raises the package's errors and nothing more
    ('extras', ROS + ('torch', 'numpy', 'yaml', 'cv2', P + 'model', P + 'io', P + 'config')
     + HIGH),
]


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix('').parts
    return '.'.join(parts[:-1] if parts[-1] == '__init__' else parts)


def imports(path: Path) -> tuple[set[str], set[str]]:
    """(every imported module, module-level ones) of a source file; ``from package import x``
    counts as ``package.x`` when x is a submodule."""
    tree = ast.parse(path.read_text())
    everything: set[str] = set()
    for node in ast.walk(tree):
        everything.update(_names(node))
    top_level = {name for node in tree.body for name in _names(node)}
    return everything, top_level


def _names(node: ast.AST) -> list[str]:
    if isinstance(node, ast.Import):
        return [alias.name for alias in node.names]
    if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
        names = [node.module]
        for alias in node.names:
            candidate = f'{node.module}.{alias.name}'
            if _is_module(candidate):
                names.append(candidate)
        return names
    return []


def _is_module(name: str) -> bool:
    if not name.startswith(P):
        return False
    relative = Path(*name.split('.')[1:])
    return (PACKAGE / relative).with_suffix('.py').is_file() or (PACKAGE / relative).is_dir()


def banned(modules: set[str], prefixes: tuple[str, ...]) -> list[str]:
    return sorted(m for m in modules
                  if any(m == p or m.startswith(p if p.endswith('.') else p + '.')
                         for p in prefixes))


SOURCES = sorted(PACKAGE.rglob('*.py'))


@pytest.mark.parametrize('path', SOURCES, ids=lambda p: str(p.relative_to(PACKAGE)))
def test_import_rules(path: Path) -> None:
    name = module_name(path)
    everything, module_level = imports(path)
    relative = name[len(P):] if name.startswith(P) else ''
    if not relative.startswith('ros.') and relative != 'ros':
        assert not banned(everything, ROS), f'{name} imports ROS: {banned(everything, ROS)}'
    for prefix, forbidden in RULES:
        if relative == prefix.rstrip('.') or relative.startswith(prefix):
            found = [m for m in banned(everything, forbidden) if m != name]
            assert not found, f'{name} may not import {found}'
            break
    if relative.startswith('cli.'):
        # ROS tools only inside functions (fast --help, CLI usable without ROS)
        assert not banned(module_level, (P + 'ros',) + ROS), name


def test_every_module_is_covered_by_a_rule() -> None:
    uncovered = []
    for path in SOURCES:
        relative = module_name(path)[len(P):]
        if relative and not any(relative == p.rstrip('.') or relative.startswith(p)
                                for p, _ in RULES):
            uncovered.append(relative)
    assert not uncovered, f'modules without a layering rule: {uncovered}'


def test_no_import_cycles() -> None:
    """Tarjan's strongly connected components over package-internal imports (function-local
    imports count: an import moved into a function still welds the two modules)."""
    graph: dict[str, set[str]] = {}
    for path in SOURCES:
        name = module_name(path)
        graph[name] = {m for m in imports(path)[0] if m.startswith(P) and m != name}
    cycles = [sorted(c) for c in _components(graph) if len(c) > 1]
    assert not cycles, f'import cycles: {cycles}'


def _components(graph: dict[str, set[str]]) -> list[list[str]]:
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in graph.get(node, ()):
            if target not in graph:
                continue
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while True:
                item = stack.pop()
                on_stack.discard(item)
                component.append(item)
                if item == node:
                    break
            found.append(component)

    for node in graph:
        if node not in index:
            visit(node)
    return found


def test_package_init_is_light() -> None:
    everything, _ = imports(PACKAGE / '__init__.py')
    assert everything <= {'__future__'}
