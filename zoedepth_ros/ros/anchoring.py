"""The node's sparse metric inputs: ``sparse_depth`` (Image) and ``sparse_points`` (PointCloud2).

Callbacks decode each message once into the stream's :class:`~zoedepth_ros.anchoring.SampleStream`
(the newest few); the worker asks for the samples nearest its image's stamp
(:meth:`SparseInputs.samples_for`). Points are brought into the camera's optical frame by the
fixed extrinsic when enabled, else by tf2 when it is installed and the cloud's frame differs
from the image's, else taken as they are (the cloud must then be in the optical frame; a
one-time warning says so). The fit itself is :mod:`zoedepth_ros.anchoring` (through
``frame.predict_frame``).
"""

from __future__ import annotations

from typing import Any

import numpy as np
from rclpy.time import Time

from zoedepth_ros.anchoring import AlignOptions, HeadAligners, SampleStream, SparseSamples
from zoedepth_ros.errors import InputError
from zoedepth_ros.geometry import PinholeCamera, rigid_transform
from zoedepth_ros.io import messages
from zoedepth_ros.io.anchoring import cloud_xyz
from zoedepth_ros.ros.config import AnchorConfig

try:  # tf2 is part of every ROS 2 install, but not of the pip-installed test environment
    import tf2_ros
except ImportError:  # pragma: no cover - depends on the installation
    tf2_ros = None


def align_options(cfg: AnchorConfig) -> AlignOptions:
    """The alignment options of the node's ``anchor`` parameters."""
    return AlignOptions(mode='scale' if cfg.mode == 'off' else cfg.mode,
                        min_samples=cfg.min_samples, inlier_threshold=cfg.inlier_threshold,
                        time_constant_s=cfg.time_constant_s, jump_ratio=cfg.jump_ratio,
                        jump_frames=cfg.jump_frames, hold_s=cfg.hold_s)


class SparseInputs:
    """Sparse inputs of one camera stream and the aligners that smooth their fits (per head).

    Args:
        cfg: the ``anchor`` parameters.
        tf_node: the node, for a tf2 buffer + listener when tf2 is importable (None: no tf2).
    """

    def __init__(self, cfg: AnchorConfig, tf_node: Any | None = None) -> None:
        self.cfg = cfg
        self.aligners = HeadAligners(align_options(cfg))
        self.stream = SampleStream(transform=self._to_optical)
        self._tf = None
        if tf_node is not None and tf2_ros is not None and not cfg.extrinsic.enabled:
            buffer = tf2_ros.Buffer()
            self._tf = (buffer, tf2_ros.TransformListener(buffer, tf_node))

    def configure(self, cfg: AnchorConfig) -> None:
        """Apply changed run-time parameters (the smoothing keeps its state)."""
        self.cfg = cfg
        self.aligners.configure(align_options(cfg))

    @property
    def active(self) -> bool:
        """Whether any sparse message has arrived."""
        return len(self.stream) > 0

    def add_depth(self, msg: Any) -> None:
        """A ``sparse_depth`` Image: its samples (InputError for a bad message)."""
        samples = SparseSamples.from_depth_image(messages.depth_image_from_msg(msg))
        self.stream.add_samples(messages.stamp_ns(msg.header), samples)

    def add_points(self, msg: Any, camera_frame: str | None) -> None:
        """A ``sparse_points`` cloud, brought into the optical frame when possible."""
        self.stream.add_points(messages.stamp_ns(msg.header), cloud_xyz(msg),
                               str(msg.header.frame_id), camera_frame)

    def _to_optical(self, xyz: np.ndarray, source: str, target: str | None,
                    stamp_ns: int) -> np.ndarray | None:
        """The fixed extrinsic when enabled, else tf2 (when installed) for a cloud in another
        frame than the camera's, else None (kept in its frame; reported when used)."""
        ext = self.cfg.extrinsic
        if ext.enabled:
            return rigid_transform(xyz, (ext.x, ext.y, ext.z), (ext.qx, ext.qy, ext.qz, ext.qw))
        if self._tf is None or not target or not source or source == target:
            return None
        buffer, _ = self._tf
        try:
            transform = buffer.lookup_transform(target, source,
                                                Time(nanoseconds=stamp_ns)).transform
        except Exception as err:  # noqa: BLE001 - tf2's lookup exceptions vary by version
            raise InputError(f'no transform {source} -> {target} at the cloud stamp: {err}'
                             ) from None
        t, q = transform.translation, transform.rotation
        return rigid_transform(xyz, (t.x, t.y, t.z), (q.x, q.y, q.z, q.w))

    def samples_for(self, stamp_ns: int, camera: PinholeCamera, camera_frame: str
                    ) -> tuple[SparseSamples | None, str | None]:
        """Samples nearest ``stamp_ns`` within ``sync_tolerance_s`` (see
        :meth:`SampleStream.samples_for`)."""
        return self.stream.samples_for(stamp_ns, int(self.cfg.sync_tolerance_s * 1e9), camera,
                                       camera_frame)
