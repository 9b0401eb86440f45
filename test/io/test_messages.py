"""Message conversion: cv_bridge-equivalent encodings, CameraInfo handling, depth encoders."""

from __future__ import annotations

import struct
from types import SimpleNamespace

import cv2
import numpy as np
import pytest
from rosbags.typesys import Stores, get_typestore

from zoedepth_ros.errors import InputError
from zoedepth_ros.geometry import PinholeCamera
from zoedepth_ros.io.messages import (
    camera_info_fields,
    camera_info_from_camera,
    check_camera_info_size,
    compressed_to_rgb,
    depth_image_from_msg,
    depth_to_millimetres,
    encode_depth,
    encode_float_image,
    encode_preview,
    image_to_rgb,
    scale_camera_info,
)

RNG = np.random.default_rng(0)
RGB = RNG.integers(0, 256, size=(5, 7, 3), dtype=np.uint8)


def image_msg(pixels: np.ndarray, encoding: str, pad: int = 0, bigendian: bool = False,
              **overrides: object) -> SimpleNamespace:
    """Image-like message with ``pad`` extra bytes at the end of each row."""
    height, width = pixels.shape[:2]
    dtype = pixels.dtype.newbyteorder('>' if bigendian else '<')
    rows = pixels.astype(dtype).reshape(height, -1).view(np.uint8)
    rows = np.concatenate([rows, np.full((height, pad), 0xAB, np.uint8)], axis=1)
    fields = dict(height=height, width=width, encoding=encoding, is_bigendian=int(bigendian),
                  step=rows.shape[1], data=rows.tobytes())
    fields.update(overrides)
    return SimpleNamespace(**fields)


def info_msg(k: list[float], p: list[float], width: int = 640, height: int = 480,
             d: tuple[float, ...] = (0.1, -0.2, 0.0, 0.0, 0.01)) -> SimpleNamespace:
    return SimpleNamespace(width=width, height=height, distortion_model='plumb_bob', d=list(d),
                           k=np.array(k), r=np.eye(3).ravel(), p=np.array(p))


@pytest.mark.parametrize('pad', [0, 3])
@pytest.mark.parametrize('encoding,pixels', [
    ('rgb8', RGB), ('bgr8', RGB[..., ::-1]),
    ('rgba8', np.dstack([RGB, np.full(RGB.shape[:2], 9, np.uint8)])),
    ('bgra8', np.dstack([RGB[..., ::-1], np.full(RGB.shape[:2], 9, np.uint8)])),
])
def test_colour_encodings_give_rgb_with_padded_step(encoding: str, pixels: np.ndarray,
                                                    pad: int) -> None:
    rgb = image_to_rgb(image_msg(np.ascontiguousarray(pixels), encoding, pad=pad))
    assert rgb.dtype == np.uint8 and rgb.flags.c_contiguous and rgb.flags.writeable
    np.testing.assert_array_equal(rgb, RGB)


def test_mono8_is_replicated() -> None:
    gray = RGB[..., 0]
    rgb = image_to_rgb(image_msg(gray[..., None], 'mono8', pad=1))
    np.testing.assert_array_equal(rgb, np.stack([gray] * 3, axis=-1))


@pytest.mark.parametrize('bigendian', [False, True])
def test_16_bit_scaled_like_cv_bridge(bigendian: bool) -> None:
    values = np.array([0, 128, 129, 385, 25828, 25829, 65534, 65535], np.uint16)
    expected = np.rint(values * (255.0 / 65535.0)).astype(np.uint8)  # cv::convertTo rounding
    assert list(expected[:6]) == [0, 0, 1, 1, 100, 101]
    mono = image_to_rgb(image_msg(values.reshape(2, 4, 1), 'mono16', bigendian=bigendian))
    np.testing.assert_array_equal(mono[..., 1], expected.reshape(2, 4))
    colour = np.stack([values, values[::-1], values], axis=-1).reshape(2, 4, 3)
    bgr = image_to_rgb(image_msg(colour[..., ::-1].copy(), 'bgr16', pad=2, bigendian=bigendian))
    np.testing.assert_array_equal(bgr[..., 0], expected.reshape(2, 4))
    np.testing.assert_array_equal(bgr[..., 1], expected[::-1].reshape(2, 4))


def test_yuv422_orders_uyvy_and_yuy2() -> None:
    # Two pixels sharing neutral chroma: Y=16 is black and Y=235 white (BT.601 video range).
    uyvy = np.array([[[128, 16], [128, 235]]], np.uint8)
    yuy2 = np.array([[[16, 128], [235, 128]]], np.uint8)
    for encoding, pixels in (('yuv422', uyvy), ('uyvy', uyvy), ('yuv422_yuy2', yuy2)):
        rgb = image_to_rgb(image_msg(pixels, encoding, pad=4))
        assert rgb.shape == (1, 2, 3)
        np.testing.assert_allclose(rgb[0, 0], [0, 0, 0], atol=1)
        np.testing.assert_allclose(rgb[0, 1], [255, 255, 255], atol=1)


def test_rclpy_and_rosbags_messages_are_accepted() -> None:
    from sensor_msgs.msg import Image

    msg = Image(height=5, width=7, encoding='rgb8', step=21, data=RGB.tobytes())
    np.testing.assert_array_equal(image_to_rgb(msg), RGB)
    typestore = get_typestore(Stores.ROS2_HUMBLE)
    types = typestore.types
    header = types['std_msgs/msg/Header'](types['builtin_interfaces/msg/Time'](1, 2), 'cam')
    bag_msg = types['sensor_msgs/msg/Image'](header, 5, 7, 'rgb8', 0, 21, RGB.ravel().copy())
    np.testing.assert_array_equal(image_to_rgb(bag_msg), RGB)


@pytest.mark.parametrize('overrides,match', [
    ({'encoding_': 'bayer_rggb8'}, "unsupported image encoding 'bayer_rggb8'"),
    ({'step': 20}, 'step 20 is smaller than'),
    ({'data': RGB.tobytes()[:-5]}, 'expected step x height = 21 x 5 = 105'),
    ({'height': 0}, 'expected a positive width and height'),
    ({'width': -1}, 'expected a positive width and height'),
])
def test_bad_images_raise_input_error(overrides: dict, match: str) -> None:
    with pytest.raises(InputError, match=match):
        image_to_rgb(image_msg(RGB, overrides.pop('encoding_', 'rgb8'), **overrides))


def test_pixel_limit_and_odd_yuv_width() -> None:
    with pytest.raises(InputError, match='exceeds the limit of 34 pixels'):
        image_to_rgb(image_msg(RGB, 'rgb8'), max_pixels=34)
    assert image_to_rgb(image_msg(RGB, 'rgb8'), max_pixels=35).shape == (5, 7, 3)
    with pytest.raises(InputError, match='must be even'):
        image_to_rgb(image_msg(np.zeros((2, 3, 2), np.uint8), 'yuv422'))


def test_compressed_png_exact_jpeg_close_and_corrupt_refused() -> None:
    columns, rows = np.meshgrid(np.arange(32) * 8, np.arange(24) * 10)
    smooth = np.dstack([rows, columns, np.full((24, 32), 77)]).astype(np.uint8)
    png = cv2.imencode('.png', smooth[..., ::-1])[1].tobytes()
    jpeg = cv2.imencode('.jpg', smooth[..., ::-1], [cv2.IMWRITE_JPEG_QUALITY, 95])[1].tobytes()
    np.testing.assert_array_equal(compressed_to_rgb(SimpleNamespace(format='png', data=png)),
                                  smooth)
    decoded = compressed_to_rgb(SimpleNamespace(format='rgb8; jpeg compressed bgr8', data=jpeg))
    assert decoded.shape == smooth.shape
    assert np.abs(decoded.astype(int) - smooth).mean() < 3.0
    for data in (jpeg[:40], b'', b'not an image at all'):
        with pytest.raises(InputError, match='cannot decode CompressedImage'):
            compressed_to_rgb(SimpleNamespace(format='jpeg', data=data))
    with pytest.raises(InputError, match='depth image'):
        compressed_to_rgb(SimpleNamespace(format='16UC1; compressedDepth png', data=png))
    with pytest.raises(InputError, match='exceeds the limit'):
        compressed_to_rgb(SimpleNamespace(format='png', data=png), max_pixels=100)


def test_depth_from_32fc1_and_16uc1() -> None:
    depth = np.array([[1.5, np.nan, np.inf], [0.0, -2.0, 80.25]], np.float32)
    for bigendian in (False, True):
        out = depth_image_from_msg(image_msg(depth[..., None], '32FC1', pad=4,
                                             bigendian=bigendian))
        assert out.dtype == np.float32
        np.testing.assert_array_equal(out, [[1.5, np.nan, np.nan], [np.nan, np.nan, 80.25]])
    millimetres = np.array([[0, 1], [1500, 65535]], np.uint16)
    out = depth_image_from_msg(image_msg(millimetres[..., None], '16UC1', pad=2))
    np.testing.assert_allclose(out, [[np.nan, 0.001], [1.5, 65.535]], rtol=1e-6)
    with pytest.raises(InputError, match="unsupported depth encoding 'rgb8'"):
        depth_image_from_msg(image_msg(RGB, 'rgb8'))


K = [500.0, 0.0, 320.0, 0.0, 510.0, 240.0, 0.0, 0.0, 1.0]
P = [400.0, 0.0, 300.0, 0.0, 0.0, 410.0, 200.0, 0.0, 0.0, 0.0, 1.0, 0.0]


def test_camera_uses_p_and_fills_zero_p_from_k() -> None:
    camera = camera_info_fields(info_msg(K, P)).camera
    assert (camera.fx, camera.fy, camera.cx, camera.cy) == (400.0, 410.0, 300.0, 200.0)
    fields = camera_info_fields(info_msg(K, [0.0] * 12))
    assert fields.p == (500.0, 0.0, 320.0, 0.0, 0.0, 510.0, 240.0, 0.0, 0.0, 0.0, 1.0, 0.0)
    assert fields.camera == PinholeCamera(500.0, 510.0, 320.0, 240.0, 640, 480)
    # A CameraInfo without a size describes whatever image it comes with.
    sizeless = camera_info_fields(info_msg(K, P, 0, 0))
    check_camera_info_size(sizeless, 64, 48)
    assert scale_camera_info(sizeless, 64, 48).camera == PinholeCamera(400.0, 410.0, 300.0,
                                                                       200.0, 64, 48)


@pytest.mark.parametrize('k,p', [
    ([0.0] * 9, [0.0] * 12),
    (K, [0.0, 0, 300, 0, 0, 410, 200, 0, 0, 0, 1, 0]),
    (K, [np.nan, 0, 300, 0, 0, 410, 200, 0, 0, 0, 1, 0]),
    (K, [400.0, 0, 300, 0, 0, -1, 200, 0, 0, 0, 1, 0]),
])
def test_camera_info_with_bad_focal_lengths_is_refused(k: list, p: list) -> None:
    with pytest.raises(InputError, match='positive focal lengths'):
        camera_info_fields(info_msg(k, p))


def test_camera_info_of_another_size_is_refused() -> None:
    with pytest.raises(InputError, match='CameraInfo is for 640x480 images but the image is '
                                         '320x200'):
        check_camera_info_size(camera_info_fields(info_msg(K, P)), 320, 200)
    # Calibrated at full resolution, images downscaled by the driver: scaled, not refused.
    full = camera_info_fields(info_msg(K, P))
    check_camera_info_size(full, 320, 240)
    check_camera_info_size(full, 213, 160)  # 640 / 3 rounds down: within one pixel
    assert scale_camera_info(full, 320, 240).camera == PinholeCamera(200.0, 205.0, 150.0, 100.0,
                                                                     320, 240)
    with pytest.raises(InputError, match='k has 8 values; expected 9'):
        camera_info_fields(info_msg(K[:8], P))


def test_scale_camera_info_like_image_proc_resize() -> None:
    p = [400.0, 0.0, 300.0, -40.0, 0.0, 410.0, 200.0, 0.0, 0.0, 0.0, 1.0, 0.0]
    scaled = scale_camera_info(camera_info_fields(info_msg(K, p)), 160, 240)  # sx 1/4, sy 1/2
    assert (scaled.width, scaled.height) == (160, 240)
    assert scaled.k == (125.0, 0.0, 80.0, 0.0, 255.0, 120.0, 0.0, 0.0, 1.0)
    assert scaled.p == (100.0, 0.0, 75.0, -10.0, 0.0, 205.0, 100.0, 0.0, 0.0, 0.0, 1.0, 0.0)
    assert scaled.d == (0.1, -0.2, 0.0, 0.0, 0.01)
    assert scaled.r == tuple(np.eye(3).ravel()) and scaled.distortion_model == 'plumb_bob'


def test_camera_info_from_fov_camera() -> None:
    fields = camera_info_from_camera(PinholeCamera.from_fov(64, 48, 90.0))
    assert fields.p[0] == pytest.approx(32.0) and fields.k[4] == pytest.approx(32.0)
    assert fields.p[2] == 31.5 and fields.p[6] == 23.5 and fields.p[10] == 1.0
    assert fields.d == (0.0,) * 5 and (fields.width, fields.height) == (64, 48)


def test_encode_32fc1_little_endian_round_trip() -> None:
    depth = np.array([[1.25, np.nan, 3.0]], np.float32)
    fields = encode_depth(depth, '32FC1')
    assert (fields.encoding, fields.step, fields.is_bigendian) == ('32FC1', 12, 0)
    assert struct.unpack('<f', fields.data[:4])[0] == 1.25
    assert np.isnan(struct.unpack('<f', fields.data[4:8])[0])
    back = depth_image_from_msg(SimpleNamespace(**vars(fields)))
    np.testing.assert_array_equal(back, depth)
    assert encode_float_image(np.ones((2, 3))).data == np.ones(6, '<f4').tobytes()


def test_encode_16uc1_rounds_and_zeroes_invalid_and_out_of_range() -> None:
    # 70 m and 65.5356 m do not fit 16-bit millimetres: invalid (0), never clamped to 65535
    depth = np.array([[1.2344, 1.2346, 70.0, np.nan, 65.5356],
                      [-1.0, 0.0004, np.inf, 65.5354, 0.0006]])
    expected = [[1234, 1235, 0, 0, 0], [0, 0, 0, 65535, 1]]
    np.testing.assert_array_equal(depth_to_millimetres(depth), expected)
    fields = encode_depth(depth, '16UC1')
    assert (fields.encoding, fields.step, fields.width, fields.height) == ('16UC1', 10, 5, 2)
    assert struct.unpack('<10H', fields.data) == tuple(np.ravel(expected))
    with pytest.raises(InputError, match="unsupported depth output encoding 'mono8'"):
        encode_depth(depth, 'mono8')


def test_preview_colours_near_red_far_blue_invalid_black() -> None:
    depth = np.array([[0.5, 9.0, np.nan]], np.float32)
    fields = encode_preview(depth, 0.5, 10.0)
    assert (fields.encoding, fields.step) == ('bgr8', 9)
    bgr = np.frombuffer(fields.data, np.uint8).reshape(1, 3, 3)
    near, far, invalid = bgr[0]
    assert near[2] > near[0] and far[0] > far[2]
    assert list(invalid) == [0, 0, 0]
