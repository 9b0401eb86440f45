"""The defaults the docs state are the defaults the code and the shipped params file have.

The README's node parameter table, the shipped ``config/depth.yaml`` and ``NodeConfig`` (the
declared ROS parameters) must agree on every name, default and read-only flag, and every
parameter is in the table. The install notes must name the same default model.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from zoedepth_ros.config import flatten
from zoedepth_ros.pipeline.outputs import OUTPUTS, Output
from zoedepth_ros.ros.config import ParameterSpec, parameter_specs

REPO = Path(__file__).resolve().parents[1]


def _shown(value: Any) -> str:
    """A default as the table writes it."""
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, str):
        return f'`{value}`' if value else '`""`'
    return repr(value)


def readme_parameter_table() -> dict[str, tuple[str, str]]:
    """{parameter: (default as written, 'read-only' or 'run time')} from the README table."""
    text = (REPO / 'README.md').read_text()
    start = text.index('| parameter | default |')
    rows = text[start:].split('\n\n', 1)[0].splitlines()[2:]
    table: dict[str, tuple[str, str]] = {}
    for row in rows:
        cells = [cell.strip() for cell in row.strip('|').split('|')]
        names = re.findall(r'`([^`]+)`', cells[0])
        defaults = [d.strip() for d in cells[1].split(' / ')]
        modes = [m.strip() for m in cells[2].split(' / ')]
        assert len(defaults) == len(names), row
        for index, name in enumerate(names):
            table[name] = (defaults[index], modes[min(index, len(modes) - 1)])
    return table


def shipped_parameters() -> dict[str, Any]:
    data = yaml.safe_load((REPO / 'config' / 'depth.yaml').read_text())
    return flatten(data['/**']['ros__parameters'])


SPECS = {spec.name: spec for spec in parameter_specs()}


def test_the_shipped_params_file_holds_the_code_defaults() -> None:
    shipped = shipped_parameters()
    assert shipped.keys() == SPECS.keys()
    for name, spec in SPECS.items():
        assert shipped[name] == spec.default and type(shipped[name]) is spec.type, name


@pytest.mark.parametrize('spec', list(SPECS.values()), ids=list(SPECS))
def test_the_readme_table_states_each_default(spec: ParameterSpec) -> None:
    table = readme_parameter_table()
    assert spec.name in table, f'{spec.name} is missing from the README parameter table'
    default, mode = table[spec.name]
    assert default == _shown(spec.default), spec.name
    assert mode == ('read-only' if spec.read_only else 'run time'), spec.name


def test_the_docs_name_the_default_model() -> None:
    model = SPECS['model'].default
    install = (REPO / 'docs' / 'install.md').read_text()
    readme = (REPO / 'README.md').read_text()
    assert f'defaults\n  to the official `{model}`' in install or \
        f'defaults to the official `{model}`' in install
    assert f'`{model}` is the default of the node' in readme
    for text in (install, readme, (REPO / 'docker' / 'Dockerfile').read_text()):
        assert not re.search(r'default[^.]{0,40}`?zoedepth_demo_nk', text.replace('\n', ' '))


@pytest.mark.parametrize('output', OUTPUTS, ids=lambda output: output.key)
def test_the_readme_topic_table_lists_each_output(output: Output) -> None:
    """Every row of pipeline.outputs.OUTPUTS is in the README's topic table with its type."""
    rows = {}
    for line in (REPO / 'README.md').read_text().splitlines():
        cells = [c.strip() for c in line.replace('\\|', '/').strip().strip('|').split('|')]
        if len(cells) == 4 and cells[0].startswith('`'):
            rows[cells[0].split('`')[1]] = cells[1]
    package, _, name = output.msgtype.split('/')
    assert rows.get(output.topic) == f'`{package}/{name}`', output.topic
