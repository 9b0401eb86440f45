"""`zoedepth infer` end to end on a tiny saved model: files, values, failures, usage."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from zoedepth_ros.cli.main import main
from zoedepth_ros.config import save_config
from zoedepth_ros.inference import DepthEstimator
from zoedepth_ros.model import build_model, get_config
from zoedepth_ros.model.checkpoint import save_checkpoint


@pytest.fixture(scope='module')
def weights(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp('weights')
    cfg = get_config('zoedepth_tiny_nk')
    cfg = type(cfg)(**{**cfg.__dict__, 'img_size': (64, 96)})
    model = build_model(cfg)
    save_config(cfg, directory / 'tiny.yaml')
    return save_checkpoint(model, directory / 'tiny.pt')


@pytest.fixture
def images(tmp_path: Path) -> Path:
    folder = tmp_path / 'images'
    folder.mkdir()
    rng = np.random.default_rng(0)
    for name in ('a', 'b'):
        cv2.imwrite(str(folder / f'{name}.png'), rng.integers(0, 256, (40, 60, 3), np.uint8))
    (folder / 'broken.jpg').write_bytes(b'not an image')
    return folder


def test_writes_every_output_with_consistent_values(weights, images, tmp_path) -> None:
    out = tmp_path / 'out'
    code = main(['infer', '--weights', str(weights), '--ply', '--fx', '50', '--output',
                 str(out), str(images / 'a.png'), str(images / 'b.png')])
    assert code == 0
    depth = np.load(out / 'a_depth.npy')
    assert depth.shape == (40, 60) and depth.dtype == np.float32
    expected = DepthEstimator.from_pretrained(str(weights), device='cpu').predict(
        cv2.cvtColor(cv2.imread(str(images / 'a.png')), cv2.COLOR_BGR2RGB))
    np.testing.assert_allclose(depth, expected.depth_m, rtol=1e-5, atol=1e-6)
    millimetres = cv2.imread(str(out / 'a_depth.png'), cv2.IMREAD_UNCHANGED)
    assert millimetres.dtype == np.uint16
    np.testing.assert_array_equal(millimetres, np.rint(depth * 1000).astype(np.uint16))
    colour = cv2.imread(str(out / 'a_depth_color.png'))
    assert colour.shape[1] == 60 and colour.shape[0] > 40  # scale bar below the image
    header = (out / 'a.ply').read_bytes()[:200].decode(errors='ignore')
    assert 'element vertex 2400' in header and 'property uchar red' in header
    assert not list(out.glob('.*.tmp'))


def test_unreadable_inputs_are_reported_and_skipped(weights, images, tmp_path, caplog) -> None:
    out = tmp_path / 'out'
    assert main(['infer', '--weights', str(weights), '-o', str(out), str(images)]) == 1
    assert sorted(p.name for p in out.glob('*_depth.npy')) == ['a_depth.npy', 'b_depth.npy']
    assert 'skipped broken' in caplog.text


def test_usage_errors_and_missing_weights(tmp_path, capsys) -> None:
    with pytest.raises(SystemExit) as info:
        main(['infer', '--no-such-flag', 'x.png'])
    assert info.value.code == 2
    assert 'usage: zoedepth infer' in capsys.readouterr().err
    assert main(['infer', '--weights', str(tmp_path / 'none.pt'), '-o', str(tmp_path),
                 'x.png']) == 2


def test_threads_set_torchs_intra_op_threads(weights, images, tmp_path) -> None:
    import torch

    before = torch.get_num_threads()
    try:
        assert main(['infer', '--weights', str(weights), '--threads', '1', '-o',
                     str(tmp_path / 'out'), str(images / 'a.png')]) == 0
        assert torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(before)
    assert main(['infer', '--weights', str(weights), '--threads', '-2', '-o',
                 str(tmp_path / 'out'), str(images / 'a.png')]) == 2


def test_folders_are_mirrored_clashes_refused_and_empty_selections_explained(
        weights, tmp_path, caplog) -> None:
    rgb = np.random.default_rng(1).integers(0, 256, (40, 60, 3), np.uint8)
    for sub in ('left', 'right'):
        (tmp_path / 'rig' / sub).mkdir(parents=True)
        cv2.imwrite(str(tmp_path / 'rig' / sub / 'frame.png'), rgb)
    rig = str(tmp_path / 'rig')
    out = tmp_path / 'out'
    # all images in subfolders: said, with the option that reads them
    assert main(['infer', '--weights', str(weights), '-o', str(out), rig]) == 2
    assert 'holds no image at its top level, but 2 in its subfolders: add --recursive' in \
        caplog.text and not out.exists()
    # two files of the same name: refused before the model loads, nothing written
    caplog.clear()
    left, right = (str(tmp_path / 'rig' / sub / 'frame.png') for sub in ('left', 'right'))
    assert main(['infer', '--weights', 'no_such_model', '-o', str(out), left, right]) == 2
    assert '1 output name(s) would be written twice' in caplog.text and 'frame' in caplog.text
    assert not out.exists()
    # recursive: the outputs keep the subfolders, one per image
    assert main(['infer', '--weights', str(weights), '-r', '-o', str(out), rig]) == 0
    written = sorted(p.relative_to(out).as_posix() for p in out.rglob('*_depth.npy'))
    assert written == ['left/frame_depth.npy', 'right/frame_depth.npy']
    caplog.clear()
    assert main(['infer', '--weights', str(weights), '-o', str(out),
                 str(tmp_path / 'nothing*.png')]) == 2
    assert 'no such file or folder, and no image or video matches it' in caplog.text
