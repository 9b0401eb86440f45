"""The output messages of one frame, made by the one message builder (``io.builder``) for
rclpy (the node) and rosbags (``bag eval --out-bag``) alike (ROS-free)."""

from __future__ import annotations

from typing import Any

from zoedepth_ros.io import builder
from zoedepth_ros.io.builder import MessageFactory
from zoedepth_ros.io.messages import CameraInfoFields, ImageFields, PackedCloud
from zoedepth_ros.pipeline.outputs import OUTPUT_BY_KEY, AlignmentFields, EncodedOutput


def output_message(make: MessageFactory, key: str, fields: EncodedOutput, head: Any) -> Any:
    """The message of output ``key`` (see ``pipeline.outputs.OUTPUTS``) from its encoded
    fields; the header is used by the stamped types."""
    if isinstance(fields, ImageFields):
        return builder.image(make, fields, head)
    if isinstance(fields, CameraInfoFields):
        return builder.camera_info(make, fields, head)
    if isinstance(fields, PackedCloud):
        return builder.point_cloud(make, fields, head)
    if isinstance(fields, AlignmentFields):
        return builder.float_array(make, fields.label, fields.values)
    return make(OUTPUT_BY_KEY[key].msgtype, {'data': str(fields)})


def output_messages(make: MessageFactory, encoded: dict[str, EncodedOutput], stamp_ns: int,
                    frame_id: str) -> dict[str, Any]:
    """Messages of one frame's encoded outputs, stamped and framed like its input."""
    head = builder.header(make, stamp_ns, frame_id)
    return {key: output_message(make, key, fields, head) for key, fields in encoded.items()}
