"""Procedural surface textures evaluated at ray hit points (vectorised numpy).

Each surface point gets planar texture coordinates (u, v) in metres from the two world axes
orthogonal to its normal's dominant axis (v is height on walls), so patterns have metric size:
floor tiles, wood planks, bricks and facade windows give scale cues like real textures do.
"""

from __future__ import annotations

import numpy as np

from zoedepth_ros.synth.scenes import BRICKS, CHECKER, NOISE, STRIPES, WINDOWS, Material


def _hash(ix: np.ndarray, iy: np.ndarray) -> np.ndarray:
    """Deterministic pseudo-random float32 values in [0, 1) per integer lattice point."""
    h = (ix * 374761393 + iy * 668265263) & 0xFFFFFFFF
    h = ((h ^ (h >> 13)) * 1274126177) & 0xFFFFFFFF
    h ^= h >> 16
    return (h & 0xFFFFFF).astype(np.float32) * np.float32(1.0 / (1 << 24))


def value_noise(u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Smooth value noise in [0, 1] with unit lattice spacing (float32 result)."""
    floor_u, floor_v = np.floor(u), np.floor(v)
    fu, fv = (u - floor_u).astype(np.float32), (v - floor_v).astype(np.float32)
    fu = fu * fu * (3.0 - 2.0 * fu)
    fv = fv * fv * (3.0 - 2.0 * fv)
    iu, iv = floor_u.astype(np.int64), floor_v.astype(np.int64)
    a, b = _hash(iu, iv), _hash(iu + 1, iv)
    c, d = _hash(iu, iv + 1), _hash(iu + 1, iv + 1)
    return (a + (b - a) * fu) * (1.0 - fv) + (c + (d - c) * fu) * fv


def planar_coordinates(points: np.ndarray, normals: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(N,) u and v texture coordinates in metres for (N, 3) points with (N, 3) normals."""
    axis = np.argmax(np.abs(normals), axis=1)
    u = np.where(axis == 0, points[:, 1], points[:, 0])
    v = np.where(axis == 2, points[:, 1], points[:, 2])
    return u, v


class TextureTable:
    """Material parameters as arrays, for per-hit lookups."""

    def __init__(self, materials: tuple[Material, ...]) -> None:
        self.color = np.array([m.color for m in materials], dtype=np.float64).reshape(-1, 3)
        self.color2 = np.array([m.color2 for m in materials], dtype=np.float64).reshape(-1, 3)
        self.pattern = np.array([m.pattern for m in materials], dtype=np.int64)
        self.scale = np.array([m.scale_m for m in materials], dtype=np.float64)

    def albedo(self, points: np.ndarray, normals: np.ndarray,
               material: np.ndarray) -> np.ndarray:
        """(N, 3) linear-RGB albedo for (N, 3) hit points, normals and (N,) material ids."""
        u, v = planar_coordinates(points, normals)
        scale = self.scale[material]
        offset = material * 17.31  # decorrelates the noise of different materials
        us, vs = u / scale + offset, v / scale
        pattern = self.pattern[material]
        mix = np.zeros(len(u))
        for kind in np.unique(pattern):
            where = np.flatnonzero(pattern == kind)
            mix[where] = _pattern(int(kind), us[where], vs[where], v[where] / scale[where])
        color = self.color[material]
        albedo = color + (self.color2[material] - color) * mix[:, None]
        grain = 0.92 + 0.16 * value_noise(u / 0.04 + offset, v / 0.04)
        return albedo * grain[:, None]


def _pattern(kind: int, us: np.ndarray, vs: np.ndarray, heights: np.ndarray) -> np.ndarray:
    """Mix factor in [0, 1] between a material's two colours at scaled coordinates."""
    if kind == CHECKER:
        return (np.floor(us) + np.floor(vs)) % 2.0
    if kind == STRIPES:
        return 0.5 + 0.5 * np.sin(2 * np.pi * (us + 0.6 * value_noise(us * 0.5, vs * 4.0)))
    if kind == NOISE:
        return 0.65 * value_noise(us, vs) + 0.35 * value_noise(2.7 * us, 2.7 * vs)
    if kind == BRICKS:
        return _bricks(us, vs)
    if kind == WINDOWS:
        return _windows(us, heights / 1.1)
    return np.zeros(len(us))


def _bricks(us: np.ndarray, vs: np.ndarray) -> np.ndarray:
    """1 on mortar lines, 0 on bricks (bricks 1 x 1/3 of the period, rows offset by half)."""
    rows = vs * 3.0
    row = np.floor(rows)
    columns = us + 0.5 * (row % 2.0)
    mortar = ((rows - row) < 0.12) | ((columns - np.floor(columns)) < 0.04)
    return mortar.astype(np.float64)


def _windows(us: np.ndarray, vs: np.ndarray) -> np.ndarray:
    """1 inside window panes of a facade grid, 0 on the wall; no windows below 1 storey."""
    fu, fv = us - np.floor(us), vs - np.floor(vs)
    pane = (fu > 0.25) & (fu < 0.75) & (fv > 0.3) & (fv < 0.8) & (vs > 1.0)
    return pane.astype(np.float64)
