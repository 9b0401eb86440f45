"""A corpus of bags: which bags, what each one's result is stored under, and the pooled tables.

:func:`expand_corpus` turns what a user names (bags, folders of bags, globs, a text file
listing bags) into a sorted list of bag folders, each once. :func:`result_key` is the key of
one bag's stored result: the bag's identity (its storage files' names, sizes and
modification times), the model's and the evaluation settings, so a rerun evaluates only what
is missing or changed. :func:`pooled_corpus` averages the per-bag tables over every bag's
evaluated frames, in the sorted bag order, so a merged report does not depend on which
process evaluated which bag or in which order they finished.
"""

from __future__ import annotations

import glob
import hashlib
import json
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from zoedepth_ros.errors import InputError
from zoedepth_ros.metrics import METRIC_KEYS

STORAGE_SUFFIXES = ('.db3', '.mcap', '.zstd')


def is_bag(path: Path) -> bool:
    return (path / 'metadata.yaml').is_file()


def _bags_below(folder: Path) -> list[Path]:
    return sorted(meta.parent for meta in folder.rglob('metadata.yaml'))


def expand_corpus(inputs: Sequence[str]) -> list[Path]:
    """Bag folders named by ``inputs``: a bag, a folder holding bags (at any depth), a glob
    (``runs/2026-*``) or a text file with one such entry per line (``#`` comments; relative
    paths are relative to the file). Sorted, each bag once.

    Raises:
        InputError: an entry that names no bag, saying what it is instead.
    """
    found: set[Path] = set()
    for entry in inputs:
        found.update(_expand(entry, Path.cwd()))
    return sorted(found)


def _expand(entry: str, base: Path) -> list[Path]:
    path = Path(entry) if Path(entry).is_absolute() else base / entry
    if is_bag(path):
        return [path.resolve()]
    if path.is_dir():
        bags = _bags_below(path)
        if not bags:
            raise InputError(f'{entry}: a folder without bags (no metadata.yaml below it)')
        return [bag.resolve() for bag in bags]
    if path.is_file():
        listed: list[Path] = []
        for number, line in enumerate(path.read_text(errors='replace').splitlines(), 1):
            line = line.split('#', 1)[0].strip()
            if line:
                try:
                    listed += _expand(line, path.parent)
                except InputError as err:
                    raise InputError(f'{path}, line {number}: {err}') from None
        if not listed:
            raise InputError(f'{entry}: a list file that names no bag')
        return listed
    matches = sorted(glob.glob(str(path)))
    if not matches:
        raise InputError(f'{entry}: no such bag, folder, list file or glob match')
    bags = [Path(m) for m in matches if is_bag(Path(m))]
    bags += [bag for m in matches if Path(m).is_dir() and not is_bag(Path(m))
             for bag in _bags_below(Path(m))]
    if not bags:
        raise InputError(f'{entry}: matches {len(matches)} path(s), none a bag')
    return [bag.resolve() for bag in bags]


def bag_identity(bag: Path) -> dict[str, Any]:
    """What identifies a bag's content cheaply: each file's name, size and modification time
    (nanoseconds). A bag rewritten in place changes at least one of them."""
    stats = sorted((p.name, p.stat()) for p in bag.iterdir() if p.is_file())
    return {'path': str(bag), 'files': [
        {'name': name, 'size': stat.st_size, 'mtime_ns': stat.st_mtime_ns}
        for name, stat in stats]}


def bag_size(bag: Path) -> int:
    """Bytes of the bag's storage files (its share of the work)."""
    return sum(p.stat().st_size for p in bag.iterdir()
               if p.is_file() and p.suffix in STORAGE_SUFFIXES) or 1


def result_key(bag: Path, model: Mapping[str, Any], settings: Mapping[str, Any]) -> str:
    """Key of one bag's stored result: a hash of the bag's identity, the model's and the
    settings (strictly serialised, keys sorted)."""
    text = json.dumps({'bag': bag_identity(bag), 'model': model, 'settings': settings},
                      sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:24]


def model_identity(name: str, path: str | None) -> dict[str, Any]:
    """The model's part of a result key: its name, and the weights file's size and
    modification time when it is a file."""
    identity: dict[str, Any] = {'name': name}
    if path and Path(path).is_file():
        stat = Path(path).stat()
        identity.update(file=str(Path(path).resolve()), size=stat.st_size,
                        mtime_ns=stat.st_mtime_ns)
    return identity


def balance(bags: Sequence[Path], ranks: int) -> list[list[Path]]:
    """Bags per rank, balanced by size: the largest first, each to the least loaded rank
    (ties to the lowest rank). The same for every rank that computes it."""
    sizes = {bag: bag_size(bag) for bag in bags}
    loads = [0] * ranks
    shares: list[list[Path]] = [[] for _ in range(ranks)]
    for bag in sorted(bags, key=lambda b: (-sizes[b], str(b))):
        rank = min(range(ranks), key=lambda r: (loads[r], r))
        shares[rank].append(bag)
        loads[rank] += sizes[bag]
    return shares


def _pool(parts: Iterable[tuple[Mapping[str, Any], int]]) -> dict[str, Any]:
    items = [(values, count) for values, count in parts if count]
    total = sum(count for _, count in items)
    pooled: dict[str, Any] = {'frames': total}
    for key in METRIC_KEYS:
        pooled[key] = (sum(values[key] * count for values, count in items) / total
                       if total else float('nan'))
    return pooled


def pooled_corpus(results: Mapping[str, Mapping[str, Any]]) -> dict[str, Any]:
    """Pooled 'overall', 'per_domain' and 'per_range' of per-bag metrics.json dicts (bag path
    -> dict), taken in sorted bag order: per-frame metrics averaged over all evaluated frames."""
    ordered = [results[name] for name in sorted(results)]
    overall = _pool((r['overall'], r['evaluated']) for r in ordered)
    domains = sorted({d for r in ordered for d in r['per_domain']})
    per_domain = {d: _pool((r['per_domain'][d], r['per_domain'][d]['frames'])
                           for r in ordered if d in r['per_domain']) for d in domains}
    ranges = []
    for index, first in enumerate(ordered[0]['per_range'] if ordered else []):
        parts = [(r['per_range'][index], r['per_range'][index]['frames']) for r in ordered
                 if len(r['per_range']) > index]
        ranges.append({'low_m': first['low_m'], 'high_m': first['high_m'], **_pool(parts)})
    return {'overall': overall, 'per_domain': per_domain, 'per_range': ranges}


def pooled_pixel_stats(results: Mapping[str, Mapping[str, Any]]) -> dict[str, Any] | None:
    """The per-bag ``pixel_stats`` pooled over the corpus: pixel counts and histograms summed,
    per-bin errors weighted by their pixels. None when no bag has them or their bins differ
    (bags evaluated with other depth limits)."""
    stats = [results[name]['pixel_stats'] for name in sorted(results)
             if results[name].get('pixel_stats')]
    if not stats or any(s['depth_edges_m'] != stats[0]['depth_edges_m'] or
                        s['error_edges'] != stats[0]['error_edges'] for s in stats):
        return None
    pixels = np.sum([np.asarray(s['pixels_by_depth'], dtype=float) for s in stats], axis=0)

    def weighted(key: str) -> list[float]:
        total = np.sum([np.nan_to_num(np.asarray(s[key], dtype=float)) *
                        np.asarray(s['pixels_by_depth'], dtype=float) for s in stats], axis=0)
        with np.errstate(invalid='ignore', divide='ignore'):
            return np.where(pixels > 0, total / pixels, np.nan).tolist()

    histogram = np.sum([np.asarray(s['error_histogram'], dtype=float) for s in stats], axis=0)
    return {'depth_edges_m': stats[0]['depth_edges_m'],
            'abs_rel_by_depth': weighted('abs_rel_by_depth'),
            'abs_err_m_by_depth': weighted('abs_err_m_by_depth'),
            'pixels_by_depth': pixels.tolist(), 'error_edges': stats[0]['error_edges'],
            'error_histogram': histogram.tolist()}
