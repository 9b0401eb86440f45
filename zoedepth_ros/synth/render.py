"""Ray-cast renderer: exact metric z-depth and a shaded, textured, noisy RGB image.

Geometry is intersected with Embree through ``trimesh.ray.ray_pyembree.RayMeshIntersector``
(one primary ray per pixel centre, one shadow ray per hit). Depth is the hit point's z in the
camera optical frame (not the ray length); pixels whose ray hits nothing (sky) or hits beyond
the scene's ``max_depth_m`` are NaN. Shading is Lambertian: ambient + sun + point lights with
a smooth distance fall-off, a hard shadow from the main light, procedural textures, then a
random exposure, white balance, gamma, vignetting and sensor noise so that images of one
scene vary photometrically from frame to frame.
"""

from __future__ import annotations

import numpy as np
from trimesh.ray.ray_pyembree import RayMeshIntersector

from zoedepth_ros.geometry import PinholeCamera
from zoedepth_ros.synth.scenes import CameraPose, Scene
from zoedepth_ros.synth.textures import TextureTable

_SHADOW_OFFSET_M = 2e-3
_LUT_SIZE = 4096


def camera_rays(camera: PinholeCamera) -> np.ndarray:
    """(H*W, 3) ray directions in the optical frame with z = 1, row-major over pixels."""
    u = (np.arange(camera.width, dtype=np.float64) - camera.cx) / camera.fx
    v = (np.arange(camera.height, dtype=np.float64) - camera.cy) / camera.fy
    rays = np.ones((camera.height, camera.width, 3))
    rays[..., 0] = u[None, :]
    rays[..., 1] = v[:, None]
    return rays.reshape(-1, 3)


class Renderer:
    """Renders one :class:`Scene` through one pinhole camera.

    Args:
        scene: what to render.
        camera: intrinsics of the output images.
    """

    def __init__(self, scene: Scene, camera: PinholeCamera) -> None:
        self.scene = scene
        self.camera = camera
        self._intersector = RayMeshIntersector(scene.mesh)
        self._textures = TextureTable(scene.materials)
        self._face_normals = np.asarray(scene.mesh.face_normals)
        self._face_origins = np.asarray(scene.mesh.triangles[:, 0, :])
        self._rays = camera_rays(camera)

    def render(self, pose: CameraPose, rng: np.random.Generator) -> tuple[np.ndarray,
                                                                          np.ndarray]:
        """Render the view from ``pose``.

        Args:
            pose: camera pose in the scene.
            rng: source of the photometric randomness (exposure, white balance, noise).

        Returns:
            rgb: (H, W, 3) uint8 image.
            depth: (H, W) float32 z-depth in metres, NaN where invalid (sky, beyond range).
        """
        height, width = self.camera.height, self.camera.width
        directions = self._rays @ pose.rotation.T
        origins = np.broadcast_to(pose.position, directions.shape)
        ray_index, face_index, z = self._first_hits(origins, directions)
        points = pose.position + directions[ray_index] * z[:, None]
        depth = np.full(height * width, np.nan)
        depth[ray_index] = z  # the optical z of the camera rays is 1: distance along = depth
        depth[depth > self.scene.max_depth_m] = np.nan

        radiance = self._background(directions)
        normals = self._face_normals[face_index]
        facing = np.einsum('ij,ij->i', normals, directions[ray_index]) > 0.0
        normals[facing] *= -1.0
        albedo = self._textures.albedo(points, normals, self.scene.face_material[face_index])
        radiance[ray_index] = albedo * self._irradiance(points, normals)
        rgb = _develop(radiance.reshape(height, width, 3), rng)
        return rgb, depth.reshape(height, width).astype(np.float32)

    def _first_hits(self, origins: np.ndarray,
                    directions: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """First hit of each ray: (M,) ray index, (M,) face index, (M,) ray parameter t.

        The hit point is ``origin + t * direction`` with the direction as given (not unit);
        t comes from the exact ray-plane intersection with the hit triangle's plane.
        """
        face_index, ray_index = self._intersector.intersects_id(origins, directions,
                                                                multiple_hits=False)
        normals = self._face_normals[face_index]
        along = np.einsum('ij,ij->i', normals, directions[ray_index])
        keep = np.abs(along) > 1e-12
        if not keep.all():
            face_index, ray_index, normals = face_index[keep], ray_index[keep], normals[keep]
            along = along[keep]
        offset = self._face_origins[face_index] - origins[ray_index]
        return ray_index, face_index, np.einsum('ij,ij->i', normals, offset) / along

    def _background(self, directions: np.ndarray) -> np.ndarray:
        """(N, 3) sky radiance by elevation (a dim grey for closed scenes)."""
        if self.scene.sky_horizon is None or self.scene.sky_zenith is None:
            return np.full((len(directions), 3), 0.05)
        elevation = directions[:, 2] / np.linalg.norm(directions, axis=1)
        blend = np.clip(elevation, 0.0, 1.0)[:, None] ** 0.6
        return self.scene.sky_horizon * (1.0 - blend) + self.scene.sky_zenith * blend

    def _irradiance(self, points: np.ndarray, normals: np.ndarray) -> np.ndarray:
        """(N, 3) light arriving at surface points with (N, 3) normals facing the camera."""
        lights = self.scene.lights
        total = np.broadcast_to(lights.ambient, points.shape).copy()
        if lights.sun_direction is not None:
            cosine = np.clip(normals @ lights.sun_direction, 0.0, None)
            if lights.shadows:
                cosine *= self._unoccluded(points, normals, lights.sun_direction[None, :], None)
            total += cosine[:, None] * lights.sun_color
        for index, (position, color) in enumerate(zip(lights.point_positions,
                                                      lights.point_colors)):
            offset = position - points
            distance = np.linalg.norm(offset, axis=1)
            direction = offset / distance[:, None]
            cosine = np.clip(np.einsum('ij,ij->i', normals, direction), 0.0, None)
            if lights.shadows and index == 0:
                cosine *= self._unoccluded(points, normals, direction, distance)
            falloff = 1.0 / (1.0 + (distance / lights.point_falloff_m) ** 2)
            total += (cosine * falloff)[:, None] * color
        return total

    def _unoccluded(self, points: np.ndarray, normals: np.ndarray, direction: np.ndarray,
                    distance: np.ndarray | None) -> np.ndarray:
        """(N,) 1.0 where a light in ``direction`` (within ``distance``, if given) is visible."""
        lit = np.ones(len(points))
        toward = np.broadcast_to(direction, points.shape)
        candidates = np.flatnonzero(np.einsum('ij,ij->i', normals, toward) > 0.0)
        if len(candidates) == 0:
            return lit
        origins = points[candidates] + normals[candidates] * _SHADOW_OFFSET_M
        ray_index, _, hit_distance = self._first_hits(origins, toward[candidates])
        blocked = candidates[ray_index]
        if distance is not None:  # unit directions: t is the distance to the occluder
            blocked = blocked[hit_distance < distance[blocked] - 2 * _SHADOW_OFFSET_M]
        lit[blocked] = 0.0
        return lit


def _develop(radiance: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Camera model: auto-exposure with jitter, white balance, vignetting, gamma, noise.

    Args:
        radiance: (H, W, 3) linear radiance.
        rng: randomness of this frame.

    Returns:
        (H, W, 3) uint8 sRGB-like image.
    """
    height, width, _ = radiance.shape
    luminance = radiance[::2, ::2] @ np.array([0.2126, 0.7152, 0.0722])
    rank = int(0.97 * (luminance.size - 1))
    reference = max(float(np.partition(luminance.ravel(), rank)[rank]), 1e-6)
    exposure = rng.uniform(0.7, 1.1) / reference
    balance = rng.uniform(0.92, 1.08, size=3)
    rows = (np.arange(height) - (height - 1) / 2.0) / (height / 2.0)
    columns = (np.arange(width) - (width - 1) / 2.0) / (width / 2.0)
    radius_sq = rows[:, None] ** 2 * (height / width) ** 2 + columns[None, :] ** 2
    vignette = (1.0 - rng.uniform(0.0, 0.25) * radius_sq / 2.0).astype(np.float32)
    gain = (exposure * balance).astype(np.float32)
    linear = radiance.astype(np.float32) * gain * vignette[..., None]
    levels = np.clip(linear * np.float32(_LUT_SIZE - 1) + 0.5, 0, _LUT_SIZE - 1).astype(np.int32)
    curve = np.linspace(0.0, 1.0, _LUT_SIZE, dtype=np.float32) ** np.float32(
        1.0 / rng.uniform(2.0, 2.4))  # gamma through a lookup table: pow per pixel is slow
    image = curve[levels]
    sigma = np.float32(rng.uniform(0.003, 0.015))
    image += sigma * rng.standard_normal(size=image.shape, dtype=np.float32)
    return np.clip(image * 255.0 + 0.5, 0.0, 255.0).astype(np.uint8)
