"""Replay output: what the node would publish for a bag's frames, written into an output bag.

Every original message is copied (its own type and definition); each colour frame's outputs
(``FrameOutputs.encoded``, made into messages by ``pipeline.builder``, the node's builder) go
under the output namespace at the frame's stamp, frame id and bag time, so a replay of the
output bag interleaves them as the live node would.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from zoedepth_ros.errors import BagError
from zoedepth_ros.io.bag_writer import AtomicBagWriter
from zoedepth_ros.io.bags import RgbdFrame
from zoedepth_ros.pipeline.builder import output_messages
from zoedepth_ros.pipeline.outputs import OUTPUT_BY_KEY, OUTPUTS, EncodedOutput


def copier(out_bag: AtomicBagWriter, namespace: str) -> Callable[[Any, int, bytes], None]:
    """A ``read_rgbd`` callback that copies every original message into ``out_bag``; a topic
    the outputs would write too is refused."""
    outputs = {output_topic(namespace, output.key) for output in OUTPUTS}

    def copy(connection: Any, bag_time: int, raw: bytes) -> None:
        if connection.topic in outputs:
            raise BagError(f'the bag already has {connection.topic}; pick another output '
                           'namespace (--out-namespace)')
        out_bag.write_raw(connection.topic, connection.msgtype, bag_time, raw, connection)

    return copy


def output_topic(namespace: str, key: str) -> str:
    """Fully qualified output topic of ``key`` (a key of ``pipeline.outputs.OUTPUTS``)."""
    return f'{namespace.rstrip("/")}/{OUTPUT_BY_KEY[key].topic}'


def write_outputs(out_bag: AtomicBagWriter, namespace: str, frame: RgbdFrame,
                  encoded: dict[str, EncodedOutput], frame_id: str = '') -> None:
    """One frame's outputs (``FrameOutputs.encoded``) at its stamp and bag time, with its
    frame id (or ``frame_id`` when set, as the node's parameter)."""
    built = output_messages(out_bag.make, encoded, frame.stamp_ns, frame_id or frame.frame_id)
    for key, message in built.items():
        out_bag.write(output_topic(namespace, key), message, frame.bag_time_ns)
