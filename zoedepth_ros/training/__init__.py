"""Training: losses, optimiser and schedule, the train/eval loop, DDP helpers and the stages.

Import submodules directly (``zoedepth_ros.training.trainer``); this package imports nothing
heavy so that ``zoedepth --help`` stays instant.
"""

from __future__ import annotations
