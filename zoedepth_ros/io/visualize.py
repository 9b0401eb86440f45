"""Depth colour maps for people (never for consumers that expect depth values)."""

from __future__ import annotations

import cv2
import numpy as np


def colorize_depth(depth_m: np.ndarray, min_m: float, max_m: float) -> np.ndarray:
    """(H, W) metres -> (H, W, 3) uint8 BGR, turbo on inverse depth: near red, far blue.

    The scale is fixed to [min_m, max_m] so colours do not flicker between frames;
    invalid (NaN/inf) pixels are black.
    """
    depth = np.asarray(depth_m, dtype=np.float32)
    near = max(float(min_m), 1e-3)
    far = max(float(max_m), near + 1e-3)
    with np.errstate(invalid='ignore'):
        inverse = (1.0 / np.clip(depth, near, far) - 1.0 / far) / (1.0 / near - 1.0 / far)
    levels = np.nan_to_num(inverse * 255.0, nan=0.0).astype(np.uint8)
    bgr = cv2.applyColorMap(levels, cv2.COLORMAP_TURBO)
    bgr[~np.isfinite(depth)] = 0
    return bgr


def with_scale_bar(bgr: np.ndarray, min_m: float, max_m: float, ticks: int = 5) -> np.ndarray:
    """Append a labelled colour bar (metres) below a colourised depth image."""
    height, width = bgr.shape[:2]
    bar_height = max(28, height // 8)
    ramp = np.geomspace(max(min_m, 1e-3), max_m, width, dtype=np.float32)
    bar = colorize_depth(np.repeat(ramp[None], bar_height // 2, axis=0), min_m, max_m)
    panel = np.zeros((bar_height, width, 3), dtype=np.uint8)
    panel[:bar.shape[0]] = bar
    scale = max(0.3, min(0.5, width / 1200))
    for i in range(ticks):
        x = int(round(i * (width - 1) / (ticks - 1)))
        label = f'{ramp[x]:.1f} m'
        size = cv2.getTextSize(label, cv2.FONT_HERSHEY_SIMPLEX, scale, 1)[0]
        x_text = int(np.clip(x - size[0] // 2, 0, width - size[0]))
        cv2.putText(panel, label, (x_text, bar_height - 4), cv2.FONT_HERSHEY_SIMPLEX, scale,
                    (255, 255, 255), 1, cv2.LINE_AA)
    return np.vstack([bgr, panel])
