"""Files of a corpus evaluation: metrics.json, report.md and the plots over the corpus.

Each bag's own report lies in its folder under ``bags/``; this is the corpus's: the pooled
tables (:func:`~zoedepth_ros.evaluation.corpus.pooled_corpus`), a row per bag, the worst bags,
the bags that could not be evaluated, and three plots: REL against ground-truth depth and the
signed error histogram over every evaluated pixel of the corpus, and REL and delta1 per bag.
"""

from __future__ import annotations

import math
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np

from zoedepth_ros.evaluation.report import plot_error_vs_depth, plot_histogram
from zoedepth_ros.io.atomic import atomic_path, write_json, write_text

CORPUS_PLOTS = {'error vs depth, all bags': 'plots/error_vs_depth.png',
                'signed error, all bags': 'plots/error_histogram.png',
                'REL and delta1 per bag': 'plots/per_bag.png'}
NAMED_BARS = 40
"""Up to this many bags, the per-bag plot names each bar (beyond, the table names them)."""


def write_corpus_report(output: Path, rows: list[dict[str, Any]], failed: list[dict[str, str]],
                        pooled: dict[str, Any], pixel_stats: dict[str, Any] | None, model: str,
                        anchored: bool) -> None:
    """Write metrics.json, the plots and report.md into ``output`` (each file atomically)."""
    write_json(output / 'metrics.json', {'bags': rows, 'failed': failed, **pooled,
                                         'pixel_stats': pixel_stats})
    plots = pixel_stats is not None
    if pixel_stats is not None:
        import matplotlib

        matplotlib.use('Agg')
        draw = [partial(plot_error_vs_depth, pixel_stats,
                        f'Relative error vs depth, {len(rows)} bags ({model})'),
                partial(plot_histogram, pixel_stats),
                partial(plot_per_bag, rows, pooled['overall'])]
        for plot, name in zip(draw, CORPUS_PLOTS.values()):
            with atomic_path(output / name) as staged:  # PNG under a temporary name
                plot(staged)
    write_text(output / 'report.md',
               corpus_markdown(rows, failed, pooled, model, anchored, plots))


def plot_per_bag(rows: list[dict[str, Any]], overall: dict[str, Any], path: Path) -> None:
    """REL and delta1 of each bag, worst REL on top, coloured by the head that served most of
    its frames; the pooled values as lines."""
    import matplotlib.pyplot as plt

    ordered = sorted(rows, key=lambda r: (-np.nan_to_num(r['abs_rel'], nan=-1.0), r['name']))
    colours = {'indoor': 'tab:blue', 'outdoor': 'tab:orange'}
    colour = [colours.get(max(r['domains'], key=r['domains'].get) if r['domains'] else '',
                          'tab:grey') for r in ordered]
    places = np.arange(len(ordered))[::-1]
    height = min(max(2.8, 0.22 * len(ordered) + 1.2), 14.0)
    figure, (rel, a1) = plt.subplots(1, 2, figsize=(9.0, height), sharey=True)
    for axis, key, label in ((rel, 'abs_rel', 'REL'), (a1, 'a1', 'delta1')):
        axis.barh(places, [r[key] for r in ordered], color=colour,
                  height=0.8 if len(ordered) <= NAMED_BARS else 1.0)
        if not math.isnan(overall[key]):
            axis.axvline(overall[key], color='black', linewidth=1, label=f'all bags {label}')
        axis.set_xlabel(label)
        axis.legend(loc='lower right', fontsize=8)
    a1.set_xlim(0.0, 1.02)
    if len(ordered) <= NAMED_BARS:
        rel.set_yticks(places, [r['name'] for r in ordered], fontsize=8)
    else:
        rel.set_yticks([])
        rel.set_ylabel(f'{len(ordered)} bags, worst REL on top')
    figure.suptitle('Per bag (colour: the head that served most frames; blue indoor, '
                    'orange outdoor)', fontsize=9)
    figure.tight_layout()
    figure.savefig(path, dpi=100, format='png')
    plt.close(figure)


def corpus_markdown(rows: list[dict[str, Any]], failed: list[dict[str, str]],
                    pooled: dict[str, Any], model: str, anchored: bool, plots: bool) -> str:
    """The corpus report.md: pooled tables, a row per bag (linking its report), the worst
    bags, the plots and the bags that could not be evaluated."""
    keys = ('a1', 'abs_rel', 'rmse')
    label = ' (anchored)' if anchored else ''
    lines = [f'# Depth evaluation of {len(rows) + len(failed)} bags', '', f'Model: {model}.', '',
             f'## All bags{label}', '', '| | frames | delta1 | REL | RMSE |',
             '|---|---:|---:|---:|---:|']
    for name, row in [('overall', pooled['overall']), *pooled['per_domain'].items()]:
        lines.append(f'| {name} | {row["frames"]} | '
                     + ' | '.join(f'{row[k]:.4f}' for k in keys) + ' |')
    lines += ['', '| depth range m | frames | delta1 | REL | RMSE |', '|---|---:|---:|---:|---:|']
    for row in pooled['per_range']:
        lines.append(f'| {row["low_m"]:g}-{row["high_m"]:g} | {row["frames"]} | '
                     + ' | '.join(f'{row[k]:.4f}' for k in keys) + ' |')
    lines += ['', f'## Per bag{label}', '',
              '| bag | frames | evaluated | delta1 | REL | RMSE | router mix | seconds |',
              '|---|---:|---:|---:|---:|---:|---|---:|']
    for row in rows:
        mix = ', '.join(f'{d} {n}' for d, n in sorted(row['domains'].items()))
        lines.append(f'| [{row["name"]}]({row["folder"]}/report.md) | {row["frames"]} | '
                     f'{row["evaluated"]} | ' + ' | '.join(f'{row[k]:.4f}' for k in keys)
                     + f' | {mix} | {row["seconds"]:.1f} |')
    worst = sorted((r for r in rows if not math.isnan(r['abs_rel'])),
                   key=lambda r: -r['abs_rel'])[:5]
    lines += ['', '## Worst bags (REL)', '']
    lines += [f'{index + 1}. {row["name"]}: REL {row["abs_rel"]:.4f}'
              for index, row in enumerate(worst)]
    if plots:
        lines += ['', '## Plots', '']
        lines += [f'![{name}]({path})' for name, path in CORPUS_PLOTS.items()]
    if failed:
        lines += ['', '## Bags that could not be evaluated', '']
        lines += [f'- {item["bag"]}: {item["reason"]}' for item in failed]
    return '\n'.join(lines) + '\n'
