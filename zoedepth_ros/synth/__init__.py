"""Synthetic indoor rooms and outdoor streets with exact metric depth (trimesh + Embree).

Public API::

    from zoedepth_ros.synth import generate
    summary = generate('both', 500, size=(160, 120), seed=0, output='data/synth')
    # -> data/synth/indoor/ and data/synth/outdoor/ in the generic RGB-D folder format

    generate('indoor', 200, size=(320, 240), seed=1, output='bags/room', fmt='bag',
             storage='mcap')   # a rosbag2 with image, camera_info and depth topics

``iter_frames`` yields the rendered frames in memory (see :mod:`.generator`).
Importing this package pulls in trimesh and Embree (the ``synth`` extra, x86_64 only); nothing
else in the package needs them. Without them the import raises ``MissingExtraError``, which
says what to install.
"""

from __future__ import annotations

from zoedepth_ros.extras import require

for _module in ('trimesh', 'embreex'):
    require('synth', _module, 'Synthetic scenes (zoedepth synth, make demo)')

from zoedepth_ros.synth.generator import (  # noqa: E402 - after the check that names the extra
    DOMAINS,
    SynthFrame,
    SynthSummary,
    camera_for,
    generate,
    iter_frames,
)

__all__ = ['DOMAINS', 'SynthFrame', 'SynthSummary', 'camera_for', 'generate', 'iter_frames']
