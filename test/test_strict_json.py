"""Every JSON file the package writes is strict: NaN and infinities as null, numpy as numbers."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

from zoedepth_ros.evaluation.datasets import load_baseline
from zoedepth_ros.io.atomic import strict_json, write_json


def strict_load(text: str) -> object:
    def refuse(name: str) -> None:
        raise ValueError(f'non-standard JSON constant {name}')

    return json.loads(text, parse_constant=refuse)


def test_non_finite_numbers_become_null_and_numpy_becomes_json(tmp_path: Path) -> None:
    data = {'abs_rel': float('nan'), 'a1': np.float32(0.5), 'inf': -math.inf,
            'counts': np.arange(3), 'nested': [{'x': np.nan}], 'path': tmp_path, 7: True}
    path = write_json(tmp_path / 'm.json', data)
    assert strict_load(path.read_text()) == {
        'abs_rel': None, 'a1': 0.5, 'inf': None, 'counts': [0, 1, 2], 'nested': [{'x': None}],
        'path': str(tmp_path), '7': True}
    with pytest.raises(TypeError, match='object is not JSON serialisable'):
        strict_json({'x': object()})


def test_a_baseline_with_null_metrics_reads_back_as_nan(tmp_path: Path) -> None:
    path = write_json(tmp_path / 'b.json', {'metrics': {'abs_rel': 0.1, 'a1': float('nan')}})
    values = load_baseline(path)
    assert values['abs_rel'] == 0.1 and math.isnan(values['a1'])
