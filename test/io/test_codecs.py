"""Compressed image sizes from headers, and refusing huge images before decoding them."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import cv2
import numpy as np
import pytest

from zoedepth_ros.errors import InputError
from zoedepth_ros.io.codecs import compressed_image_size
from zoedepth_ros.io.messages import compressed_to_rgb


def _encoded(extension: str, image: np.ndarray, *params: int) -> np.ndarray:
    ok, data = cv2.imencode(extension, image, list(params))
    assert ok
    return data.ravel()


@pytest.mark.parametrize('params', [(), (cv2.IMWRITE_JPEG_PROGRESSIVE, 1)])
def test_jpeg_and_png_sizes_from_the_header(params: tuple[int, ...]) -> None:
    image = np.random.default_rng(0).integers(0, 256, (37, 53, 3), dtype=np.uint8)
    assert compressed_image_size(_encoded('.jpg', image, *params)) == (53, 37, 'jpeg')
    assert compressed_image_size(_encoded('.png', image[..., 0])) == (53, 37, 'png')
    with pytest.raises(InputError, match='expected a jpeg or png'):
        compressed_image_size(_encoded('.bmp', image))
    with pytest.raises(InputError, match='ends before its frame header'):
        compressed_image_size(_encoded('.jpg', image)[:20])
    with pytest.raises(InputError, match='IHDR'):
        compressed_image_size(_encoded('.png', image)[:12])


def test_decoded_colours_and_the_pixel_limit() -> None:
    image = np.random.default_rng(1).integers(0, 256, (8, 10, 3), dtype=np.uint8)
    msg = SimpleNamespace(format='png', data=_encoded('.png', image[..., ::-1]).tobytes())
    np.testing.assert_array_equal(compressed_to_rgb(msg), image)
    with pytest.raises(InputError, match='10x8 = 80 pixels exceeds the limit of 79'):
        compressed_to_rgb(msg, max_pixels=79)


CHILD = """
import resource, sys
from types import SimpleNamespace
from zoedepth_ros.errors import InputError
from zoedepth_ros.io.messages import compressed_to_rgb
data = open(sys.argv[1], 'rb').read()
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
try:
    compressed_to_rgb(SimpleNamespace(format='png', data=data), max_pixels=3840 * 2160)
except InputError as err:
    print(str(err))
print((resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) // 1024)
"""


def test_a_huge_png_is_refused_before_it_is_decoded(tmp_path: Path) -> None:
    """12000 x 12000 pixels in a small file: decoding would take 432 MB; it must not happen."""
    big = tmp_path / 'big.png'
    big.write_bytes(_encoded('.png', np.zeros((12000, 12000), np.uint8)).tobytes())
    assert big.stat().st_size < 1_000_000
    done = subprocess.run([sys.executable, '-c', CHILD, str(big)], capture_output=True,
                          text=True, timeout=120, check=True)
    message, growth_mb = done.stdout.strip().splitlines()
    assert '12000x12000 = 144000000 pixels exceeds the limit of 8294400' in message
    assert int(growth_mb) < 50, f'peak memory grew by {growth_mb} MB'
