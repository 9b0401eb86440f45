"""Image size from a compressed stream's header, read before anything is decoded.

A CompressedImage that claims 12000 x 12000 pixels in a few hundred kilobytes of PNG would
take about 0.4 GB to decode; reading its header first lets the node refuse it at no cost.
JPEG (any SOF marker: baseline, progressive, lossless, arithmetic) and PNG are recognised;
anything else is refused, as ROS's ``compressed`` transport publishes only these two.
"""

from __future__ import annotations

import numpy as np

from zoedepth_ros.errors import InputError

PNG_SIGNATURE = b'\x89PNG\r\n\x1a\n'
_SOF_MARKERS = frozenset(range(0xC0, 0xD0)) - {0xC4, 0xC8, 0xCC}
"""Start-of-frame markers; C4 (Huffman tables), C8 (reserved), CC (arithmetic) are not."""
_STANDALONE = frozenset(range(0xD0, 0xDA)) | {0x01}
"""Markers without a length field (RSTn, SOI, EOI, TEM)."""


def compressed_image_size(data: np.ndarray) -> tuple[int, int, str]:
    """(width, height, 'png' | 'jpeg') from the header of an encoded image.

    Args:
        data: the encoded bytes as a flat uint8 array.

    Raises:
        InputError: neither PNG nor JPEG, or a header cut short.
    """
    head = data[:8].tobytes()
    if head == PNG_SIGNATURE:
        if data.size < 24 or data[12:16].tobytes() != b'IHDR':
            raise InputError('PNG data ends before its IHDR header')
        width, height = (int.from_bytes(data[i:i + 4].tobytes(), 'big') for i in (16, 20))
        return width, height, 'png'
    if head[:2] == b'\xff\xd8':
        return (*_jpeg_size(data), 'jpeg')
    raise InputError(f'compressed data starts with {head[:4].hex()}; expected a jpeg or png '
                     'image')


def _jpeg_size(data: np.ndarray) -> tuple[int, int]:
    """(width, height) from the first SOF segment of a JPEG stream."""
    index, size = 2, int(data.size)
    while index + 3 < size:
        if data[index] != 0xFF:
            raise InputError(f'JPEG marker expected at byte {index}; the data is corrupt')
        marker = int(data[index + 1])
        if marker == 0xFF:  # fill byte before a marker
            index += 1
            continue
        if marker in _STANDALONE:
            index += 2
            continue
        length = (int(data[index + 2]) << 8) | int(data[index + 3])
        if marker in _SOF_MARKERS:
            if index + 9 > size:
                break
            height = (int(data[index + 5]) << 8) | int(data[index + 6])
            width = (int(data[index + 7]) << 8) | int(data[index + 8])
            return width, height
        index += 2 + length
    raise InputError('JPEG data ends before its frame header (SOF)')
