"""The rclpy message factory of ``io.builder``: output field values -> rclpy messages.

Byte payloads (``uint8[] data``) go into the message without a copy in Python (publishing
copies them once into the C message); numpy arrays become lists, which the generated setters
take for fixed-size and unbounded arrays alike.
"""

from __future__ import annotations

import importlib
from functools import cache
from typing import Any

import numpy as np

from zoedepth_ros.io import builder
from zoedepth_ros.pipeline.builder import output_message
from zoedepth_ros.pipeline.outputs import EncodedOutput


@cache
def message_class(msgtype: str) -> type:
    """The rclpy class of 'package/msg/Name'."""
    package, kind, name = msgtype.split('/')
    return getattr(importlib.import_module(f'{package}.{kind}'), name)


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


def make(msgtype: str, fields: dict[str, Any]) -> Any:
    """An rclpy message of ``msgtype`` with ``fields`` (see the module docstring)."""
    payload = fields.get('data')
    raw = payload if isinstance(payload, (bytes, memoryview)) else None
    values = {name: value.tolist() if isinstance(value, np.ndarray) else value
              for name, value in fields.items() if not (raw is not None and name == 'data')}
    msg = message_class(msgtype)(**values)
    if raw is not None:
        set_data(msg, raw)
    return msg


def to_message(key: str, fields: EncodedOutput, stamp_ns: int, frame_id: str) -> Any:
    """The rclpy message of one per-frame output (``pipeline.outputs.OUTPUTS`` key)."""
    return output_message(make, key, fields, builder.header(make, stamp_ns, frame_id))
