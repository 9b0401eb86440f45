"""Random indoor rooms: walls, floor, ceiling, furniture-like primitives, pictures, lamps.

A room is 3-10 m wide and deep and 2.4-3.5 m high, spanning [0, W] x [0, D] x [0, H]. The
camera path stays at least 0.7 m from the walls and furniture keeps clear of it, so the camera
is never inside an object.
"""

from __future__ import annotations

import math

import numpy as np

from zoedepth_ros.synth.scenes import (
    CHECKER,
    NOISE,
    SOLID,
    STRIPES,
    CameraPath,
    Lights,
    Material,
    Scene,
    SceneBuilder,
    random_color,
    shade_of,
)

MAX_DEPTH_M = 10.0
_WALL = 0.1  # wall slab thickness in metres
_CLEARANCE_M = 0.45  # free space around the camera path


def _surface(rng: np.random.Generator, patterns: tuple[int, ...],
             value: tuple[float, float] = (0.3, 0.9)) -> Material:
    color = random_color(rng, value=value)
    pattern = int(rng.choice(patterns))
    contrast = rng.uniform(0.55, 0.9) if pattern != NOISE else rng.uniform(0.7, 0.95)
    scale = {SOLID: 1.0, CHECKER: rng.uniform(0.25, 0.6), STRIPES: rng.uniform(0.08, 0.3),
             NOISE: rng.uniform(0.05, 0.8)}[pattern]
    return Material(color, shade_of(color, contrast), pattern, scale)


def _room_shell(builder: SceneBuilder, rng: np.random.Generator, size: np.ndarray) -> None:
    width, depth, height = size
    floor = builder.material(_surface(rng, (CHECKER, STRIPES, NOISE), (0.2, 0.8)))
    ceiling = builder.material(_surface(rng, (SOLID, NOISE), (0.7, 0.95)))
    wall = _surface(rng, (SOLID, NOISE, STRIPES), (0.5, 0.95))
    walls = [builder.material(wall) for _ in range(3)]
    walls.append(builder.material(_surface(rng, (SOLID, NOISE, STRIPES))))  # accent wall
    builder.box((-_WALL, -_WALL, -_WALL), (width + _WALL, depth + _WALL, 0.0), floor)
    builder.box((-_WALL, -_WALL, height), (width + _WALL, depth + _WALL, height + _WALL),
                ceiling)
    builder.box((-_WALL, 0.0, 0.0), (0.0, depth, height), walls[0])
    builder.box((width, 0.0, 0.0), (width + _WALL, depth, height), walls[1])
    builder.box((0.0, -_WALL, 0.0), (width, 0.0, height), walls[2])
    builder.box((0.0, depth, 0.0), (width, depth + _WALL, height), walls[3])


def _camera_path(rng: np.random.Generator, size: np.ndarray) -> CameraPath:
    width, depth, _ = size
    margin = 0.7
    low, high = np.array([margin, margin]), np.array([width - margin, depth - margin])
    start_xy = rng.uniform(low, high)
    heading = rng.uniform(0.0, 2.0 * math.pi)
    step = rng.uniform(0.3, 1.5) * np.array([math.cos(heading), math.sin(heading)])
    end_xy = np.clip(start_xy + step, low, high)
    candidates = rng.uniform([0.0, 0.0], [width, depth], size=(6, 2))
    distances = np.linalg.norm(candidates - start_xy, axis=1)
    target = candidates[int(np.argmax(distances))]  # look across the room, not at a near wall
    yaw = math.atan2(target[1] - start_xy[1], target[0] - start_xy[0])
    height_m = rng.uniform(1.0, 1.6)
    pitch = rng.uniform(-0.3, 0.1)
    return CameraPath(start=np.array([*start_xy, height_m]), end=np.array([*end_xy, height_m]),
                      yaw=(yaw, yaw + rng.uniform(-0.5, 0.5)),
                      pitch=(pitch, pitch + rng.uniform(-0.1, 0.1)),
                      roll=rng.uniform(-0.04, 0.04), sway_m=rng.uniform(0.0, 0.05),
                      sway_rad=rng.uniform(0.0, 0.05))


def _keep_clear(path: CameraPath) -> np.ndarray:
    """(N, 2) floor points to keep free: the path and 1.5 m of the view ahead of its ends."""
    points = [(1.0 - s) * path.start[:2] + s * path.end[:2] for s in np.linspace(0, 1, 6)]
    for position, yaw in ((path.start[:2], path.yaw[0]), (path.end[:2], path.yaw[1])):
        heading = np.array([math.cos(yaw), math.sin(yaw)])
        points += [position + distance * heading for distance in (0.5, 1.0, 1.5)]
    return np.array(points)


def _clear_of_path(path: CameraPath, center: np.ndarray, radius: float) -> bool:
    """Whether a footprint circle keeps ``_CLEARANCE_M`` from the path and the near view."""
    distances = np.linalg.norm(_keep_clear(path) - center, axis=1)
    return bool((distances >= radius + _CLEARANCE_M).all())


def _table(builder: SceneBuilder, rng: np.random.Generator, center: np.ndarray,
           half: np.ndarray) -> None:
    top = builder.material(_surface(rng, (SOLID, STRIPES, NOISE)))
    legs = builder.material(Material(random_color(rng, value=(0.1, 0.5)), (0, 0, 0)))
    height = rng.uniform(0.45, 0.8)
    (x0, y0), (x1, y1) = center - half, center + half
    builder.box((x0, y0, height - 0.04), (x1, y1, height), top)
    for x, y in ((x0, y0), (x0, y1 - 0.05), (x1 - 0.05, y0), (x1 - 0.05, y1 - 0.05)):
        builder.box((x, y, 0.0), (x + 0.05, y + 0.05, height - 0.04), legs)


def _cabinet(builder: SceneBuilder, rng: np.random.Generator, center: np.ndarray,
             half: np.ndarray, room_height: float) -> None:
    body = builder.material(_surface(rng, (SOLID, STRIPES, NOISE)))
    height = rng.uniform(0.4, min(2.3, room_height - 0.2))
    builder.box((*(center - half), 0.0), (*(center + half), height), body)
    if rng.uniform() < 0.5:  # a back rest or a second tier
        back = builder.material(_surface(rng, (SOLID, NOISE)))
        low = center - half
        builder.box((*low, height), (low[0] + 2 * half[0], low[1] + 0.15, height + 0.4), back)


def _round_thing(builder: SceneBuilder, rng: np.random.Generator, center: np.ndarray,
                 radius: float, room_height: float) -> None:
    material = builder.material(_surface(rng, (SOLID, NOISE, STRIPES)))
    kind = rng.integers(3)
    if kind == 0:  # column or bin
        height = room_height if rng.uniform() < 0.3 else rng.uniform(0.3, 1.2)
        builder.cylinder((*center, 0.0), radius, height, material, sections=12)
    elif kind == 1:  # floor lamp: pole + shade
        height = rng.uniform(1.2, 1.9)
        builder.cylinder((*center, 0.0), 0.03, height, material, sections=6)
        shade = builder.material(Material(random_color(rng, value=(0.7, 1.0)), (1, 1, 1)))
        builder.sphere((*center, height), min(radius, 0.35), shade, subdivisions=1)
    else:  # ball or pouf
        builder.sphere((*center, radius), radius, material, subdivisions=2)


def _furniture(builder: SceneBuilder, rng: np.random.Generator, size: np.ndarray,
               path: CameraPath) -> None:
    width, depth, height = size
    for _ in range(int(rng.integers(6, 16))):
        half = rng.uniform([0.2, 0.2], [min(1.1, width / 4), min(1.1, depth / 4)])
        if rng.uniform() < 0.6:  # against a wall
            wall = rng.integers(4)
            x = rng.uniform(half[0], width - half[0])
            y = rng.uniform(half[1], depth - half[1])
            x, y = ((half[0], y), (width - half[0], y), (x, half[1]), (x, depth - half[1]))[wall]
            center = np.array([x, y])
        else:
            center = rng.uniform(half, [width, depth] - half)
        radius = float(np.linalg.norm(half))
        if not _clear_of_path(path, center, radius):
            continue
        kind = rng.integers(3)
        if kind == 0:
            _table(builder, rng, center, half)
        elif kind == 1:
            _cabinet(builder, rng, center, half, height)
        else:
            _round_thing(builder, rng, center, min(half), height)


def _wall_decor(builder: SceneBuilder, rng: np.random.Generator, size: np.ndarray) -> None:
    """Pictures, doors and windows as thin boxes on the walls, and a rug on the floor."""
    width, depth, height = size
    for _ in range(int(rng.integers(1, 6))):
        material = builder.material(_surface(rng, (SOLID, NOISE, CHECKER, STRIPES), (0.1, 1.0)))
        door = rng.uniform() < 0.25
        half_w = 0.45 if door else rng.uniform(0.15, 0.7)
        z0, z1 = (0.0, 2.05) if door else sorted(rng.uniform(0.8, height - 0.2, size=2))
        z1 = max(z1, z0 + 0.2)
        wall = rng.integers(4)
        along = rng.uniform(half_w, (width if wall >= 2 else depth) - half_w)
        t = 0.03
        if wall == 0:
            builder.box((0.0, along - half_w, z0), (t, along + half_w, z1), material)
        elif wall == 1:
            builder.box((width - t, along - half_w, z0), (width, along + half_w, z1), material)
        elif wall == 2:
            builder.box((along - half_w, 0.0, z0), (along + half_w, t, z1), material)
        else:
            builder.box((along - half_w, depth - t, z0), (along + half_w, depth, z1), material)
    if rng.uniform() < 0.5:
        rug = builder.material(_surface(rng, (CHECKER, STRIPES, NOISE)))
        low = rng.uniform([0.3, 0.3], [width / 2, depth / 2])
        high = low + rng.uniform([1.0, 1.0], [width / 2, depth / 2])
        builder.box((*low, 0.0), (*high, 0.01), rug)


def _lights(rng: np.random.Generator, size: np.ndarray) -> Lights:
    count = int(rng.integers(1, 4))
    positions = rng.uniform([0.3, 0.3, size[2] - 0.4], [size[0] - 0.3, size[1] - 0.3,
                                                        size[2] - 0.2], size=(count, 3))
    warmth = rng.uniform(-0.15, 0.15, size=(count, 1))
    colors = rng.uniform(0.8, 1.6, size=(count, 1)) * (1.0 + warmth * np.array([1.0, 0.0, -1.0]))
    ambient = rng.uniform(0.12, 0.3) * (1.0 + rng.uniform(-0.05, 0.05, size=3))
    return Lights(ambient=ambient, point_positions=positions, point_colors=colors,
                  point_falloff_m=rng.uniform(2.5, 4.5), shadows=True)


def build_indoor_scene(rng: np.random.Generator) -> tuple[Scene, CameraPath]:
    """A random furnished room and a camera path inside it (all sizes in metres)."""
    size = rng.uniform([3.0, 3.0, 2.4], [10.0, 10.0, 3.5])
    builder = SceneBuilder()
    _room_shell(builder, rng, size)
    path = _camera_path(rng, size)
    _furniture(builder, rng, size, path)
    _wall_decor(builder, rng, size)
    scene = builder.build(_lights(rng, size), max_depth_m=MAX_DEPTH_M, domain='indoor')
    return scene, path
