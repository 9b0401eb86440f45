"""Replay output: what the node would publish for a bag's frames, written into an output bag.

Every original message is copied (its own type and definition); each colour frame's outputs
(``frame.FrameOutputs.encoded``) go under the output namespace at the frame's stamp, frame id
and bag time, so a replay of the output bag interleaves them as the live node would.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from zoedepth_ros.errors import BagError
from zoedepth_ros.frame import OUTPUT_TOPICS
from zoedepth_ros.io.bag_writer import AtomicBagWriter
from zoedepth_ros.io.bags import RgbdFrame


def copier(out_bag: AtomicBagWriter, namespace: str) -> Callable[[Any, int, bytes], None]:
    """A ``read_rgbd`` callback that copies every original message into ``out_bag``; a topic
    the outputs would write too is refused."""
    outputs = {output_topic(namespace, name) for name in OUTPUT_TOPICS}

    def copy(connection: Any, bag_time: int, raw: bytes) -> None:
        if connection.topic in outputs:
            raise BagError(f'the bag already has {connection.topic}; pick another output '
                           'namespace (--out-namespace)')
        out_bag.write_raw(connection.topic, connection.msgtype, bag_time, raw, connection)

    return copy


def output_topic(namespace: str, key: str) -> str:
    """Fully qualified output topic of ``key`` (a key of ``frame.OUTPUT_TOPICS``)."""
    return f'{namespace.rstrip("/")}/{OUTPUT_TOPICS[key]}'


def write_outputs(out_bag: AtomicBagWriter, namespace: str, frame: RgbdFrame,
                  encoded: dict[str, Any]) -> None:
    """One frame's outputs (``FrameOutputs.encoded``) at its stamp, frame id and bag time."""
    header = out_bag.header(frame.stamp_ns, frame.frame_id)
    for key, fields in encoded.items():
        out_bag.write(output_topic(namespace, key), out_bag.message(fields, header),
                      frame.bag_time_ns)
