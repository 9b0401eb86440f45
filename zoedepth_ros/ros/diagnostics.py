"""The node's ``diagnostic_msgs/DiagnosticArray`` (diagnostic_updater stand-in).

``diagnostic_array`` turns one period's :class:`~zoedepth_ros.pipeline.stats.Snapshot` of a
camera stream into the message published on ``/diagnostics``. Levels are the
``DiagnosticStatus`` bytes constants.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue

from zoedepth_ros.pipeline.stats import COUNTERS, Snapshot


def _level(snapshot: Snapshot, model_warning: str | None) -> tuple[bytes, str]:
    if not snapshot.totals['received']:
        return DiagnosticStatus.STALE, 'no input image yet'
    if model_warning:
        return DiagnosticStatus.WARN, model_warning
    if snapshot.counts['malformed']:
        return DiagnosticStatus.WARN, f'{snapshot.counts["malformed"]} malformed input(s)'
    if snapshot.fallback_intrinsics:
        return DiagnosticStatus.WARN, 'no camera_info: intrinsics from fov_deg'
    if not snapshot.counts['received']:
        return DiagnosticStatus.WARN, 'no input in the last period'
    return DiagnosticStatus.OK, 'running'


def diagnostic_array(snapshot: Snapshot, name: str, hardware_id: str, info: dict[str, Any],
                     stamp: Any, model_warning: str | None = None) -> DiagnosticArray:
    """DiagnosticArray with one status describing the node over ``snapshot``'s period.

    Args:
        snapshot: statistics of the period.
        name: status name, e.g. ``depth_node: depth``.
        hardware_id: device the model runs on.
        info: fixed key/values (model, device, precision, ...), listed first.
        stamp: ``builtin_interfaces/Time`` for the header.
        model_warning: what users must know about the model (demo or random weights): the
            status is WARN with this message while inputs arrive.
    """
    period = max(snapshot.period_s, 1e-9)
    timings = np.asarray(snapshot.inference_ms, dtype=np.float64)
    values: dict[str, Any] = dict(info)
    values['input_rate_hz'] = f'{snapshot.counts["received"] / period:.2f}'
    values['output_rate_hz'] = f'{snapshot.counts["published"] / period:.2f}'
    age = snapshot.stamp_age_s
    values['stamp_age_s'] = 'n/a' if age is None else f'{age:.3f}'
    values['inference_ms_mean'] = f'{timings.mean():.1f}' if timings.size else 'n/a'
    values['inference_ms_p95'] = f'{np.percentile(timings, 95):.1f}' if timings.size else 'n/a'
    for counter in COUNTERS:
        values[f'{counter}_total'] = snapshot.totals[counter]
    values['domain'] = snapshot.domain or 'n/a'
    values['routed_domain'] = snapshot.routed_domain or 'n/a'
    values['domain_probability'] = f'{snapshot.domain_probability:.3f}'
    values['fallback_intrinsics'] = snapshot.fallback_intrinsics
    alignment = snapshot.alignment
    if alignment is not None:  # metric anchoring, the last frame's
        values.update({'alignment_status': alignment.status,
                       'alignment_scale': f'{alignment.scale:.4f}',
                       'alignment_shift': f'{alignment.shift:.4f}',
                       'alignment_samples': alignment.samples,
                       'alignment_inliers': alignment.inliers,
                       'alignment_residual': f'{alignment.residual:.4f}'})
    level, message = _level(snapshot, model_warning)
    status = DiagnosticStatus(level=level, name=name, message=message, hardware_id=hardware_id,
                              values=[KeyValue(key=k, value=str(v)) for k, v in values.items()])
    array = DiagnosticArray(status=[status])
    array.header.stamp = stamp
    return array
