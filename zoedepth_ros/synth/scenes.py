"""Scene description for the synthetic generator: triangle meshes, materials, lights, cameras.

World frame: x forward/east, y left/north, z up, metres. A :class:`Scene` is one triangle mesh
(``trimesh.Trimesh``) whose faces each carry a material index, plus the lights and the sky.
:class:`SceneBuilder` assembles scenes from primitives (boxes, cylinders, spheres); the indoor
and outdoor content lives in :mod:`zoedepth_ros.synth.indoor` and
:mod:`zoedepth_ros.synth.outdoor`.

Camera poses use the optical convention of the rest of the package: camera x right, y down,
z forward (REP 103 optical frame); depth is the camera z coordinate.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass, field

import numpy as np
import trimesh

# Procedural texture patterns (see zoedepth_ros.synth.textures).
SOLID, CHECKER, STRIPES, NOISE, BRICKS, WINDOWS = range(6)
PATTERN_NAMES = ('solid', 'checker', 'stripes', 'noise', 'bricks', 'windows')


@dataclass(frozen=True)
class Material:
    """Surface appearance: two linear-RGB albedos in [0, 1] mixed by a procedural pattern.

    Attributes:
        color: main albedo (3,).
        color2: second albedo (3,) used by the pattern (tiles, mortar, windows, grain).
        pattern: one of SOLID, CHECKER, STRIPES, NOISE, BRICKS, WINDOWS.
        scale_m: pattern period in metres.
    """

    color: tuple[float, float, float]
    color2: tuple[float, float, float]
    pattern: int = SOLID
    scale_m: float = 1.0


@dataclass(frozen=True)
class Lights:
    """Lighting of a scene (linear RGB intensities).

    Attributes:
        ambient: (3,) ambient irradiance.
        point_positions: (L, 3) point-light positions in metres (L may be 0).
        point_colors: (L, 3) point-light intensities.
        point_falloff_m: distance at which a point light's intensity halves.
        sun_direction: (3,) unit vector from the scene towards the sun, or None.
        sun_color: (3,) sun intensity.
        shadows: cast shadow rays towards the sun (or the first point light indoors).
    """

    ambient: np.ndarray
    point_positions: np.ndarray
    point_colors: np.ndarray
    point_falloff_m: float = 3.0
    sun_direction: np.ndarray | None = None
    sun_color: np.ndarray = field(default_factory=lambda: np.ones(3))
    shadows: bool = True


@dataclass(frozen=True)
class Scene:
    """A renderable scene.

    Attributes:
        mesh: all geometry as one triangle mesh (metres).
        face_material: (F,) int index into ``materials`` per face.
        materials: the scene's materials.
        lights: the scene's lights.
        sky_horizon: (3,) linear RGB of the sky at the horizon, or None for closed scenes.
        sky_zenith: (3,) linear RGB of the sky straight up.
        max_depth_m: depths beyond this are marked invalid (like sky).
        domain: 'indoor' or 'outdoor'.
    """

    mesh: trimesh.Trimesh
    face_material: np.ndarray
    materials: tuple[Material, ...]
    lights: Lights
    sky_horizon: np.ndarray | None
    sky_zenith: np.ndarray | None
    max_depth_m: float
    domain: str


@dataclass(frozen=True)
class CameraPose:
    """Camera position and orientation in the world.

    Attributes:
        position: (3,) optical centre in metres.
        rotation: (3, 3) matrix whose columns are the camera's x (right), y (down) and z
            (forward) axes in world coordinates; world = rotation @ camera + position.
    """

    position: np.ndarray
    rotation: np.ndarray

    @classmethod
    def from_yaw_pitch_roll(cls, position: np.ndarray, yaw: float, pitch: float,
                            roll: float = 0.0) -> CameraPose:
        """Pose looking along ``yaw`` (radians about +z, 0 = +x), ``pitch`` up, ``roll``."""
        forward = np.array([math.cos(pitch) * math.cos(yaw), math.cos(pitch) * math.sin(yaw),
                            math.sin(pitch)])
        right = np.array([math.sin(yaw), -math.cos(yaw), 0.0])
        down = np.cross(forward, right)
        cos_r, sin_r = math.cos(roll), math.sin(roll)
        right, down = cos_r * right + sin_r * down, -sin_r * right + cos_r * down
        rotation = np.stack([right, down, forward], axis=1)
        return cls(np.asarray(position, dtype=np.float64), rotation)

    @classmethod
    def look_at(cls, position: np.ndarray, target: np.ndarray) -> CameraPose:
        """Pose at ``position`` looking at ``target`` with no roll (target not straight up)."""
        delta = np.asarray(target, dtype=np.float64) - np.asarray(position, dtype=np.float64)
        yaw = math.atan2(delta[1], delta[0])
        pitch = math.atan2(delta[2], math.hypot(delta[0], delta[1]))
        return cls.from_yaw_pitch_roll(position, yaw, pitch)

    def world_to_camera(self, points: np.ndarray) -> np.ndarray:
        """Transform (N, 3) world points to (N, 3) camera optical coordinates."""
        return (np.asarray(points) - self.position) @ self.rotation


@functools.cache
def _template(kind: str, detail: int) -> tuple[np.ndarray, np.ndarray]:
    """Unit primitive (vertices, faces): box [-0.5, 0.5]^3, cylinder r=1 z in [-0.5, 0.5],
    unit icosphere. Built once by trimesh, then copied by transform (much faster than
    creating a Trimesh per primitive)."""
    if kind == 'box':
        mesh = trimesh.creation.box(extents=(1.0, 1.0, 1.0))
    elif kind == 'cylinder':
        mesh = trimesh.creation.cylinder(radius=1.0, height=1.0, sections=detail)
    else:
        mesh = trimesh.creation.icosphere(subdivisions=detail, radius=1.0)
    vertices = np.asarray(mesh.vertices, dtype=np.float64)
    faces = np.asarray(mesh.faces, dtype=np.int64)
    vertices.setflags(write=False)
    faces.setflags(write=False)
    return vertices, faces


def _rotation_to(axis: np.ndarray) -> np.ndarray:
    """A rotation matrix taking +z to unit ``axis``."""
    z = axis / np.linalg.norm(axis)
    helper = np.array([1.0, 0.0, 0.0]) if abs(z[0]) < 0.9 else np.array([0.0, 1.0, 0.0])
    x = np.cross(helper, z)
    x /= np.linalg.norm(x)
    return np.stack([x, np.cross(z, x), z], axis=1)


class SceneBuilder:
    """Collects primitives with their materials and builds a :class:`Scene`."""

    def __init__(self) -> None:
        self._vertices: list[np.ndarray] = []
        self._faces: list[np.ndarray] = []
        self._face_materials: list[np.ndarray] = []
        self._materials: list[Material] = []
        self._vertex_count = 0

    def material(self, material: Material) -> int:
        """Register ``material`` and return its index."""
        self._materials.append(material)
        return len(self._materials) - 1

    def _add(self, kind: str, detail: int, linear: np.ndarray, offset: np.ndarray,
             material: int) -> None:
        vertices, faces = _template(kind, detail)
        self._vertices.append(vertices @ linear.T + offset)
        self._faces.append(faces + self._vertex_count)
        self._vertex_count += len(vertices)
        self._face_materials.append(np.full(len(faces), material, dtype=np.int64))

    def box(self, lower: tuple[float, float, float], upper: tuple[float, float, float],
            material: int, yaw: float = 0.0) -> None:
        """Axis-aligned box from ``lower`` to ``upper`` corners, turned by ``yaw`` about z."""
        lower_arr, upper_arr = np.asarray(lower, float), np.asarray(upper, float)
        cos_y, sin_y = math.cos(yaw), math.sin(yaw)
        rotation = np.array([[cos_y, -sin_y, 0.0], [sin_y, cos_y, 0.0], [0.0, 0.0, 1.0]])
        linear = rotation * (upper_arr - lower_arr)[None, :]
        self._add('box', 0, linear, (lower_arr + upper_arr) / 2.0, material)

    def cylinder(self, base: tuple[float, float, float], radius: float, height: float,
                 material: int, sections: int = 10,
                 axis: tuple[float, float, float] = (0.0, 0.0, 1.0)) -> None:
        """Cylinder of ``radius`` from ``base`` along unit ``axis`` for ``height`` metres."""
        axis_arr = np.asarray(axis, float)
        linear = _rotation_to(axis_arr) * np.array([radius, radius, height])[None, :]
        center = np.asarray(base, float) + 0.5 * height * axis_arr / np.linalg.norm(axis_arr)
        self._add('cylinder', sections, linear, center, material)

    def sphere(self, center: tuple[float, float, float], radius: float, material: int,
               subdivisions: int = 1) -> None:
        """Icosphere of ``radius`` around ``center``."""
        self._add('sphere', subdivisions, np.eye(3) * radius, np.asarray(center, float),
                  material)

    def build(self, lights: Lights, *, sky_horizon: np.ndarray | None = None,
              sky_zenith: np.ndarray | None = None, max_depth_m: float,
              domain: str) -> Scene:
        """Concatenate everything into one :class:`Scene`."""
        mesh = trimesh.Trimesh(vertices=np.concatenate(self._vertices),
                               faces=np.concatenate(self._faces), process=False)
        return Scene(mesh=mesh, face_material=np.concatenate(self._face_materials),
                     materials=tuple(self._materials), lights=lights, sky_horizon=sky_horizon,
                     sky_zenith=sky_zenith, max_depth_m=max_depth_m, domain=domain)


def random_color(rng: np.random.Generator, saturation: tuple[float, float] = (0.1, 0.6),
                 value: tuple[float, float] = (0.3, 0.9),
                 hue: tuple[float, float] = (0.0, 1.0)) -> tuple[float, float, float]:
    """A random linear-RGB albedo from hue (0 red, 1/3 green, 2/3 blue)/saturation/value."""
    hue_value = rng.uniform(*hue)
    sat = rng.uniform(*saturation)
    val = rng.uniform(*value)
    rgb = np.clip(np.abs(((hue_value * 6.0 + np.array([0.0, 4.0, 2.0])) % 6.0) - 3.0) - 1.0, 0, 1)
    color = val * (1.0 - sat + sat * rgb)
    return float(color[0]), float(color[1]), float(color[2])


def shade_of(color: tuple[float, float, float], factor: float) -> tuple[float, float, float]:
    """``color`` scaled by ``factor`` and clipped to [0, 1]."""
    return tuple(float(min(1.0, max(0.0, c * factor))) for c in color)  # type: ignore[return-value]


@dataclass(frozen=True)
class CameraPath:
    """A smooth camera trajectory through a scene, parameterised by ``s`` in [0, 1].

    The position moves linearly from ``start`` to ``end``; yaw and pitch blend with a
    smoothstep, and a small sinusoidal sway (``sway_m``, ``sway_rad``) adds hand-held motion.
    """

    start: np.ndarray
    end: np.ndarray
    yaw: tuple[float, float]
    pitch: tuple[float, float]
    roll: float = 0.0
    sway_m: float = 0.0
    sway_rad: float = 0.0

    def pose(self, s: float) -> CameraPose:
        """Camera pose at path parameter ``s`` (0 = start, 1 = end)."""
        blend = s * s * (3.0 - 2.0 * s)
        wave = math.sin(2.0 * math.pi * s)
        position = (1.0 - s) * self.start + s * self.end
        position = position + np.array([0.0, 0.0, self.sway_m * wave])
        yaw = self.yaw[0] + (self.yaw[1] - self.yaw[0]) * blend + self.sway_rad * wave
        pitch = self.pitch[0] + (self.pitch[1] - self.pitch[0]) * blend
        return CameraPose.from_yaw_pitch_roll(position, yaw, pitch, self.roll)
