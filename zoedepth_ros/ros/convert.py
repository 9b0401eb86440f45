"""Field dataclasses from the ROS-free core -> sensor_msgs messages (no copy of the bytes in
Python: publishing copies them once into the C message)."""

from __future__ import annotations

from typing import Any

from sensor_msgs.msg import CameraInfo, Image, PointCloud2, PointField
from std_msgs.msg import Float32MultiArray, MultiArrayDimension, MultiArrayLayout, String

from zoedepth_ros.io.anchoring import AlignmentFields
from zoedepth_ros.io.messages import CameraInfoFields, ImageFields, PackedCloud


def set_data(msg: Any, data: bytes | memoryview) -> None:
    """Give a message's ``uint8[] data`` field the bytes of ``data`` without copying them.

    The generated constructor and ``data`` setter copy into a new ``array.array`` (the setter
    keeps an ``array.array`` only with ``ROS_PYTHON_CHECK_FIELDS=1``). Publishing and
    ``serialize_message`` read the field through the buffer protocol (one copy into the C
    message), which any C-contiguous bytes-like object serves, so the field's slot takes
    ``data`` as it is: bytes, or a byte view of the array it was encoded from, which must
    not change until the message is published.
    """
    msg._data = data


def image_message(fields: ImageFields, header: Any) -> Image:
    """Image with ``header`` (the input's: same stamp and frame id) and the given fields."""
    msg = Image(header=header, height=fields.height, width=fields.width,
                encoding=fields.encoding, is_bigendian=fields.is_bigendian, step=fields.step)
    set_data(msg, fields.data)
    return msg


def camera_info_message(fields: CameraInfoFields, header: Any) -> CameraInfo:
    """CameraInfo with ``header``; binning and roi left zero."""
    return CameraInfo(header=header, width=fields.width, height=fields.height,
                      distortion_model=fields.distortion_model, d=list(fields.d),
                      k=list(fields.k), r=list(fields.r), p=list(fields.p))


def point_cloud_message(cloud: PackedCloud, header: Any) -> PointCloud2:
    """PointCloud2 with ``header`` from a packed cloud."""
    fields = [PointField(name=f.name, offset=f.offset, datatype=f.datatype, count=f.count)
              for f in cloud.fields]
    msg = PointCloud2(header=header, height=cloud.height, width=cloud.width, fields=fields,
                      is_bigendian=cloud.is_bigendian, point_step=cloud.point_step,
                      row_step=cloud.row_step, is_dense=cloud.is_dense)
    set_data(msg, cloud.data)
    return msg


def float_array_message(fields: AlignmentFields) -> Float32MultiArray:
    """Float32MultiArray with one dimension whose label names the values."""
    size = len(fields.values)
    layout = MultiArrayLayout(dim=[MultiArrayDimension(label=fields.label, size=size,
                                                       stride=size)])
    return Float32MultiArray(layout=layout, data=[float(v) for v in fields.values])


def to_message(fields: ImageFields | CameraInfoFields | PackedCloud | AlignmentFields | str,
               header: Any) -> Image | CameraInfo | PointCloud2 | Float32MultiArray | String:
    """The message of one per-frame output (see ``zoedepth_ros.frame.FrameOutputs.encoded``)."""
    if isinstance(fields, AlignmentFields):
        return float_array_message(fields)
    if isinstance(fields, ImageFields):
        return image_message(fields, header)
    if isinstance(fields, CameraInfoFields):
        return camera_info_message(fields, header)
    if isinstance(fields, PackedCloud):
        return point_cloud_message(fields, header)
    return String(data=str(fields))
