"""Random outdoor streets: road, pavements, buildings, vehicles, poles, trees and sky.

The street runs along +x with the road centred on y = 0 and its surface at z = 0. The camera
drives along a lane at 1.4-1.8 m height (KITTI's camera is at 1.65 m). Rays that hit nothing
see the sky (invalid depth); surfaces beyond 80 m are invalid too, like KITTI's lidar range.
"""

from __future__ import annotations

import math

import numpy as np

from zoedepth_ros.synth.scenes import (
    BRICKS,
    NOISE,
    SOLID,
    WINDOWS,
    CameraPath,
    Lights,
    Material,
    Scene,
    SceneBuilder,
    random_color,
    shade_of,
)

MAX_DEPTH_M = 80.0
_STREET_END_M = 220.0


def _grey(rng: np.random.Generator, low: float, high: float) -> tuple[float, float, float]:
    value = rng.uniform(low, high)
    tint = rng.uniform(-0.03, 0.03, size=3)
    return tuple(float(v) for v in np.clip(value + tint, 0.0, 1.0))  # type: ignore[return-value]


def _ground(builder: SceneBuilder, rng: np.random.Generator, road_half: float,
            pavement: float) -> None:
    road = builder.material(Material(_grey(rng, 0.08, 0.2), _grey(rng, 0.15, 0.3), NOISE,
                                     rng.uniform(0.05, 0.3)))
    walk = builder.material(Material(_grey(rng, 0.3, 0.55), _grey(rng, 0.2, 0.4),
                                     int(rng.choice([NOISE, BRICKS])), rng.uniform(0.3, 0.8)))
    grass = builder.material(Material(random_color(rng, (0.3, 0.6), (0.15, 0.35), (0.1, 0.4)),
                                      _grey(rng, 0.1, 0.2), NOISE, 1.0))
    paint = builder.material(Material((0.85, 0.85, 0.8), (0.7, 0.7, 0.65), SOLID, 1.0))
    builder.box((-300.0, -300.0, -0.2), (500.0, 300.0, -0.02), grass)
    builder.box((-40.0, -road_half, -0.1), (_STREET_END_M, road_half, 0.0), road)
    for side in (-1.0, 1.0):
        inner, outer = side * road_half, side * (road_half + pavement)
        builder.box((-40.0, min(inner, outer), -0.1), (_STREET_END_M, max(inner, outer), 0.15),
                    walk)
    dash, period = rng.uniform(2.0, 4.0), rng.uniform(8.0, 12.0)
    for x in np.arange(-30.0, _STREET_END_M, period):
        builder.box((x, -0.06, 0.0), (x + dash, 0.06, 0.005), paint)


def _buildings(builder: SceneBuilder, rng: np.random.Generator, kerb: float) -> None:
    glass = (0.05, 0.07, 0.1)
    for side in (-1.0, 1.0):
        x = rng.uniform(-40.0, -20.0)
        while x < _STREET_END_M:
            length = rng.uniform(6.0, 25.0)
            setback = rng.uniform(0.0, 4.0) if rng.uniform() < 0.6 else 0.0
            depth, height = rng.uniform(8.0, 20.0), rng.uniform(4.0, 30.0)
            facade = random_color(rng, (0.05, 0.4), (0.25, 0.85))
            pattern = int(rng.choice([WINDOWS, WINDOWS, BRICKS, NOISE]))
            second = glass if pattern == WINDOWS else shade_of(facade, rng.uniform(0.5, 0.8))
            scale = rng.uniform(2.5, 4.0) if pattern == WINDOWS else rng.uniform(0.3, 1.5)
            material = builder.material(Material(facade, second, pattern, scale))
            near, far = side * (kerb + setback), side * (kerb + setback + depth)
            builder.box((x, min(near, far), 0.0), (x + length, max(near, far), height), material)
            x += length + (rng.uniform(0.0, 1.0) if rng.uniform() < 0.6 else rng.uniform(4, 15))


def _car(builder: SceneBuilder, rng: np.random.Generator, x: float, y: float) -> None:
    body = builder.material(Material(random_color(rng, (0.2, 0.9), (0.1, 0.9)), (0, 0, 0)))
    dark = builder.material(Material((0.03, 0.03, 0.04), (0.1, 0.1, 0.1), SOLID, 1.0))
    truck = rng.uniform() < 0.15
    length = rng.uniform(6.0, 9.0) if truck else rng.uniform(3.8, 4.8)
    half_w = rng.uniform(1.1, 1.25) if truck else rng.uniform(0.85, 0.95)
    roof = rng.uniform(2.6, 3.4) if truck else rng.uniform(0.95, 1.05)
    builder.box((x, y - half_w, 0.3), (x + length, y + half_w, roof), body)
    if not truck:
        cabin = rng.uniform(0.4, 0.6) * length
        start = x + rng.uniform(0.2, 0.35) * length
        builder.box((start, y - half_w + 0.08, roof), (start + cabin, y + half_w - 0.08,
                                                       roof + rng.uniform(0.4, 0.55)), dark)
    for wheel_x in (x + 0.8, x + length - 0.8):
        builder.cylinder((wheel_x, y - half_w - 0.02, 0.32), 0.32, 2 * half_w + 0.04, dark,
                         sections=10, axis=(0.0, 1.0, 0.0))


def _street_furniture(builder: SceneBuilder, rng: np.random.Generator, road_half: float,
                      pavement: float, path: CameraPath) -> None:
    lane = path.start[1]
    for _ in range(int(rng.integers(2, 10))):
        x = rng.uniform(-10.0, 120.0)
        in_lane = rng.uniform() < 0.3
        y = lane if in_lane else math.copysign(road_half - 1.1, rng.uniform(-1, 1))
        if in_lane and x < path.end[0] + 8.0:
            continue  # keep the camera's own lane clear ahead of it
        _car(builder, rng, x, y)
    metal = builder.material(Material(_grey(rng, 0.2, 0.5), (0.1, 0.1, 0.1), SOLID, 1.0))
    for side in (-1.0, 1.0):
        for x in np.arange(rng.uniform(-20.0, 0.0), 150.0, rng.uniform(12.0, 30.0)):
            height = rng.uniform(4.0, 8.0)
            y = side * (road_half + 0.4)
            builder.cylinder((x, y, 0.15), rng.uniform(0.06, 0.12), height, metal, sections=8)
            builder.box((x - 0.08, min(y, y - side * 1.5), height - 0.1),
                        (x + 0.08, max(y, y - side * 1.5), height + 0.05), metal)
        bark = builder.material(Material(random_color(rng, (0.3, 0.6), (0.1, 0.3),
                                                      (0.05, 0.12)), (0, 0, 0)))
        foliage = (0.12, 0.4)  # yellow-green to green
        leaves = builder.material(Material(random_color(rng, (0.4, 0.8), (0.15, 0.45), foliage),
                                           random_color(rng, (0.4, 0.8), (0.05, 0.3), foliage),
                                           NOISE, rng.uniform(0.15, 0.5)))
        for x in np.arange(rng.uniform(-20.0, 0.0), 150.0, rng.uniform(7.0, 25.0)):
            if rng.uniform() < 0.4:
                continue
            y = side * (road_half + pavement - 0.7)
            trunk, crown = rng.uniform(1.8, 3.5), rng.uniform(1.0, 2.5)
            builder.cylinder((x, y, 0.15), rng.uniform(0.12, 0.25), trunk, bark, sections=8)
            builder.sphere((x, y, 0.15 + trunk + 0.6 * crown), crown, leaves, subdivisions=2)


def _lights(rng: np.random.Generator) -> tuple[Lights, np.ndarray, np.ndarray]:
    elevation = rng.uniform(math.radians(15.0), math.radians(70.0))
    azimuth = rng.uniform(0.0, 2.0 * math.pi)
    sun = np.array([math.cos(elevation) * math.cos(azimuth),
                    math.cos(elevation) * math.sin(azimuth), math.sin(elevation)])
    overcast = rng.uniform() < 0.25
    sun_color = rng.uniform(0.2, 0.4) if overcast else rng.uniform(1.0, 1.5)
    sun_rgb = sun_color * np.array([1.0, rng.uniform(0.9, 1.0), rng.uniform(0.75, 0.95)])
    ambient = rng.uniform(0.25, 0.45) * np.array([rng.uniform(0.8, 0.95), 0.95, 1.0])
    if overcast:
        ambient = ambient * 1.6
        horizon = np.full(3, rng.uniform(0.6, 0.85))
        zenith = horizon * rng.uniform(0.8, 0.95)
    else:
        horizon = np.array([0.75, 0.82, 0.9]) * rng.uniform(0.8, 1.0)
        zenith = np.array([0.2, 0.35, 0.8]) * rng.uniform(0.6, 1.1)
    lights = Lights(ambient=ambient, point_positions=np.zeros((0, 3)),
                    point_colors=np.zeros((0, 3)), sun_direction=sun, sun_color=sun_rgb,
                    shadows=not overcast)
    return lights, horizon, zenith


def build_outdoor_scene(rng: np.random.Generator) -> tuple[Scene, CameraPath]:
    """A random street with buildings and traffic and a camera path along a lane."""
    road_half = rng.uniform(3.0, 7.0)
    pavement = rng.uniform(2.0, 4.5)
    free = max(0.0, road_half - 2.8)  # parked cars reach 2.35 m in from the kerb
    lane = rng.uniform(-1.0, 1.0) * free
    start = np.array([rng.uniform(0.0, 10.0), lane, rng.uniform(1.4, 1.8)])
    end = start + np.array([rng.uniform(8.0, 30.0), 0.0, 0.0])
    end[1] = np.clip(lane + rng.uniform(-0.5, 0.5), -free, free)
    yaw = rng.uniform(-0.08, 0.08)
    pitch = rng.uniform(-0.08, 0.03)
    path = CameraPath(start=start, end=end, yaw=(yaw, yaw + rng.uniform(-0.05, 0.05)),
                      pitch=(pitch, pitch), roll=rng.uniform(-0.02, 0.02),
                      sway_m=rng.uniform(0.0, 0.03), sway_rad=rng.uniform(0.0, 0.02))
    builder = SceneBuilder()
    _ground(builder, rng, road_half, pavement)
    _buildings(builder, rng, road_half + pavement)
    _street_furniture(builder, rng, road_half, pavement, path)
    lights, horizon, zenith = _lights(rng)
    scene = builder.build(lights, sky_horizon=horizon, sky_zenith=zenith,
                          max_depth_m=MAX_DEPTH_M, domain='outdoor')
    return scene, path
