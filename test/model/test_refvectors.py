"""Parity with the original ZoeDepth code on the shared reference vectors.

The reference directory (original-format checkpoints of small random-weight models, inputs
and the original implementation's outputs) is read from $ZOEDEPTH_REFVECTORS, default
``../shared/refvectors`` beside the repository. CI always has it; a clone without it skips
this module and still pins the numerics through test/test_golden.py.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
import torch
from oracles import assert_close

from zoedepth_ros.inference import DepthEstimator
from zoedepth_ros.model.checkpoint import original_state_dict
from zoedepth_ros.model.loading import load_model

REPO = Path(__file__).resolve().parents[2]
REFVECTORS = Path(os.environ.get('ZOEDEPTH_REFVECTORS', REPO.parent / 'shared' / 'refvectors'))

pytestmark = pytest.mark.skipif(not (REFVECTORS / 'inputs.pt').is_file(),
                                reason=f'reference vectors not found at {REFVECTORS} '
                                       f'(set ZOEDEPTH_REFVECTORS)')

CONFIGS = ('tiny_n', 'tiny_k')


@pytest.fixture(scope='module')
def inputs() -> dict[str, torch.Tensor]:
    data = torch.load(REFVECTORS / 'inputs.pt', weights_only=True)
    data['img_batch_ac'] = torch.cat([data['img_a'], data['img_c']])
    return data


@pytest.fixture(scope='module', params=CONFIGS)
def case(request: pytest.FixtureRequest) -> tuple[str, torch.nn.Module, dict[str, torch.Tensor]]:
    name = request.param
    model = load_model(str(REFVECTORS / name / 'orig_ckpt.pt')).model
    reference = torch.load(REFVECTORS / name / 'orig_outputs.pt', weights_only=True)
    return name, model, reference


@pytest.mark.parametrize('run', ['a', 'b', 'batch_ac'])
def test_forward_matches_original(case, inputs, run: str) -> None:
    _, model, reference = case
    with torch.inference_mode():
        out = model(inputs[f'img_{run}'])
    produced = {'metric_depth': out.metric_depth, 'rel_depth': out.relative_depth,
                'bin_centers_s8': out.bin_centers[:, :, ::8, ::8],
                'probs_s8': out.probs[:, :, ::8, ::8]}
    compared = [key for key in produced if f'{run}/{key}' in reference]
    assert 'metric_depth' in compared and 'rel_depth' in compared
    for key in compared:
        assert_close(f'{run}/{key}', produced[key], reference[f'{run}/{key}'])


def test_intermediates_match_original(inputs) -> None:
    """The references store intermediates for tiny_n only."""
    model = load_model(str(REFVECTORS / 'tiny_n' / 'orig_ckpt.pt')).model
    reference = torch.load(REFVECTORS / 'tiny_n' / 'orig_outputs.pt', weights_only=True)
    with torch.inference_mode():
        assert_close('a/prepped', model.prepare(inputs['img_a']), reference['a/prepped'])
        assert_close('b/prepped', model.prepare(inputs['img_b']), reference['b/prepped'])
        tokens = model.encoder.forward_tokens(reference['a/prepped'])
        out = model(inputs['img_a'])
    for i, hooked in enumerate(tokens):
        assert_close(f'beit_hook_{i}', hooked, reference[f'a/beit_hook_{i}'])
    r4, r3, r2, r1 = out.decoder.fused
    assert_close('l4_rn', out.decoder.bottleneck, reference['a/l4_rn'])
    assert_close('r4', r4, reference['a/r4'])
    assert_close('r3', r3, reference['a/r3'])
    assert_close('r2_s2', r2[:, :, ::2, ::2], reference['a/r2_s2'])
    assert_close('r1_s4', r1[:, :, ::4, ::4], reference['a/r1_s4'])
    assert_close('out_conv_s8', out.decoder.head_features[:, :, ::8, ::8],
                 reference['a/out_conv_s8'])


@pytest.mark.parametrize('run', ['a', 'b'])
def test_original_infer_matches(case, inputs, run: str) -> None:
    _, model, reference = case
    padded_flip = DepthEstimator(model, device='cpu', preprocess='original_infer')
    plain = DepthEstimator(model, device='cpu', preprocess='original_infer', flip=False,
                           pad=False)
    image = inputs[f'img_{run}']
    assert_close(f'{run}/infer_default', padded_flip.predict_tensor(image).depth,
                 reference[f'{run}/infer_default'])
    assert_close(f'{run}/infer_nopad_noflip', plain.predict_tensor(image).depth,
                 reference[f'{run}/infer_nopad_noflip'])


def write_hf_copy(name: str, directory: Path, style: str) -> Path:
    """Convert the reference checkpoint to a transformers directory with key_map.json."""
    from safetensors.torch import save_file

    rows = json.loads((REFVECTORS / name / 'key_map.json').read_text())['rows']
    state = torch.load(REFVECTORS / name / 'orig_ckpt.pt', weights_only=True)['model']
    column = 'hf_key' if style == 'v5' else 'hf_key_legacy'
    converted = {}
    for row in rows:
        if row['op'] == 'drop':
            continue
        tensor = state[row['orig_key']]
        if row['op'].startswith('rows['):
            start, stop = (int(v) for v in row['op'][5:-1].split(':'))
            tensor = tensor[start:stop]
        converted[row[column]] = tensor.contiguous()
    directory.mkdir(parents=True)
    save_file(converted, str(directory / 'model.safetensors'))
    (directory / 'config.json').write_text((REFVECTORS / name / 'hf_config.json').read_text())
    return directory


@pytest.mark.parametrize('style', ['v4', 'v5'])
def test_transformers_layout_loads_same_weights(case, inputs, tmp_path, style: str) -> None:
    name, model, reference = case
    directory = write_hf_copy(name, tmp_path / f'{name}-{style}', style)
    hf_model = load_model(str(directory)).model
    ours, theirs = original_state_dict(model), original_state_dict(hf_model)
    assert ours.keys() == theirs.keys()
    # transformers drops the unused ImageNet head and fc_norm; every other tensor is identical.
    for key in (k for k in ours if '.fc_norm.' not in k and '.model.head.' not in k):
        torch.testing.assert_close(theirs[key], ours[key], rtol=0, atol=0, msg=key)
    with torch.inference_mode():
        out = hf_model(inputs['img_b'])
    assert_close('b/metric_depth (transformers layout)', out.metric_depth,
                 reference['b/metric_depth'])
    hf_reference = torch.load(REFVECTORS / name / 'hf_outputs.pt', weights_only=True)
    error = (out.metric_depth - hf_reference['b/metric_depth']).abs().max().item()
    assert error <= 1e-3 * hf_reference['b/metric_depth'].abs().max().item()


@pytest.mark.parametrize('variant', ['n', 'k', 'nk'])
def test_full_size_key_sets_match_release(variant: str) -> None:
    from zoedepth_ros.model import ZoeDepth, get_config
    from zoedepth_ros.model.checkpoint import UNUSED_INDEX_SUFFIX, original_key_shapes

    expected = {}
    tsv = REFVECTORS / 'keys' / f'zoed_m12_{variant}_state_dict_keys.tsv'
    for line in tsv.read_text().splitlines():
        key, _, shape = line.partition('\t')
        if key and not key.endswith(UNUSED_INDEX_SUFFIX) and shape.startswith('['):
            expected[key] = tuple(json.loads(shape))
    with torch.device('meta'):
        model = ZoeDepth(get_config({'n': 'ZoeD_N', 'k': 'ZoeD_K', 'nk': 'ZoeD_NK'}[variant]))
    assert original_key_shapes(model) == expected
    assert len(expected) == {'n': 511, 'k': 511, 'nk': 591}[variant]
