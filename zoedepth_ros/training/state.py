"""Training-state files for exact ``--resume``: weights + optimiser, schedule, step and RNG.

Weights go through the model package's ``save_checkpoint`` (original ZoeDepth layout) into
``checkpoints/step_<N>.pt``; the state file ``train_state.pt`` is written after them (atomically)
and names that weights file, so a crash between the two leaves the previous pair intact.
"""

from __future__ import annotations

import os
import random
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from zoedepth_ros.errors import CheckpointError
from zoedepth_ros.model.checkpoint import atomic_torch_save, save_checkpoint

if TYPE_CHECKING:
    from zoedepth_ros.model.zoedepth import ZoeDepth

STATE_FILE = 'train_state.pt'
STATE_VERSION = 1
KEEP_WEIGHTS = 2
"""Step checkpoints kept in ``checkpoints/`` (older ones are removed)."""


def capture_rng() -> dict[str, Any]:
    """Python, numpy and torch (CPU and every CUDA device) generator states."""
    state: dict[str, Any] = {'python': random.getstate(), 'numpy': np.random.get_state(),
                             'torch': torch.get_rng_state()}
    if torch.cuda.is_available():
        state['cuda'] = torch.cuda.get_rng_state_all()
    return state


def restore_rng(state: dict[str, Any]) -> None:
    """Inverse of :func:`capture_rng`."""
    random.setstate(state['python'])
    np.random.set_state(state['numpy'])
    torch.set_rng_state(state['torch'])
    if 'cuda' in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state['cuda'])


def write_state(output: Path, model: ZoeDepth, optimizer: torch.optim.Optimizer,
                scheduler: Any, step: int, config: dict[str, Any], best_score: float,
                rng: dict[str, Any]) -> Path:
    """Write ``checkpoints/step_<step>.pt`` then ``train_state.pt``; returns the state path."""
    weights = output / 'checkpoints' / f'step_{step:07d}.pt'
    save_checkpoint(model, weights, extra={'step': step})
    state = {'version': STATE_VERSION, 'step': step, 'weights': weights.name,
             'optimizer': optimizer.state_dict(), 'scheduler': scheduler.state_dict(),
             'rng': rng, 'config': config, 'best_score': best_score}
    path = output / STATE_FILE
    atomic_torch_save(state, path)
    for old in sorted(weights.parent.glob('step_*.pt'))[:-KEEP_WEIGHTS]:
        old.unlink(missing_ok=True)
    return path


def read_state(resume: str | os.PathLike[str]) -> tuple[dict[str, Any], Path]:
    """Load a state file (or ``DIR/train_state.pt``); returns (state, weights path)."""
    path = Path(resume)
    if path.is_dir():
        path = path / STATE_FILE
    if not path.is_file():
        raise CheckpointError(f'no training state at {path}; --resume expects the '
                              f'{STATE_FILE} of a run or its output directory')
    try:
        state = torch.load(path, map_location='cpu', weights_only=False)
    except Exception as err:  # noqa: BLE001 - any unpickling failure means a bad file
        raise CheckpointError(f'{path} is not a readable training state: {err}') from None
    if not isinstance(state, dict) or state.get('version') != STATE_VERSION:
        raise CheckpointError(f'{path} is not a version-{STATE_VERSION} training state')
    weights = path.parent / 'checkpoints' / state['weights']
    if not weights.is_file():
        raise CheckpointError(f'{path} names weights {weights}, which do not exist')
    return state, weights


def saved_config(resume: str | os.PathLike[str]) -> dict[str, Any]:
    """The resolved configuration stored in a training state."""
    return read_state(resume)[0]['config']
