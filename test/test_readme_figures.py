"""Every measured figure in the README comes from a report in the repository.

Measured figures stand between ``<!-- figures: PATH -->`` and ``<!-- end figures -->``, where
PATH is a benchmark report written by ``make bench`` (``benchmarks/reports/<machine>/<date>.md``).
Each decimal number inside such a block must appear in that report. The Performance section
holds nothing else, and outside the blocks no line pairs a decimal number with a measurement
word (delta1, REL, Spearman, frames/s, ms, CPU-seconds, measured).
"""

from __future__ import annotations

import re
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
BLOCK = re.compile(r'<!-- figures: (\S+) -->(.*?)<!-- end figures -->', re.S)
DECIMAL = re.compile(r'(?<![\d.v])\d+\.\d+(?![\d.])')
"""A decimal number that is not a version (2.14.1, v2.1) or part of a longer number."""
MEASURED = re.compile(r'delta1|\bREL\b|Spearman|frames/s|\bms\b|CPU-seconds|measured',
                      re.I)


def decimals(text: str) -> set[str]:
    return set(DECIMAL.findall(text))


def figure_problems(readme: str, root: Path) -> list[str]:
    """What in ``readme`` cannot be traced to a report under ``root`` (empty: all traced)."""
    problems = []
    for match in BLOCK.finditer(readme):
        source = root / match.group(1)
        if not source.is_file():
            problems.append(f'figures cite {match.group(1)}, which does not exist')
            continue
        missing = sorted(decimals(match.group(2)) - decimals(source.read_text()),
                         key=float)
        if missing:
            problems.append(f'{match.group(1)} does not contain {", ".join(missing)}')
    outside = BLOCK.sub('', readme)
    section = re.search(r'^## Performance\n(.*?)(?=^## )', outside, re.S | re.M)
    if section and decimals(section.group(1)):
        problems.append('Performance has figures outside a figures block: '
                        + ', '.join(sorted(decimals(section.group(1)), key=float)))
    for line in outside.splitlines():
        if decimals(line) and MEASURED.search(line):
            problems.append(f'a measured figure outside a figures block: {line.strip()!r}')
    return problems


def test_every_readme_figure_is_in_the_report_it_cites() -> None:
    readme = (REPO / 'README.md').read_text()
    assert len(BLOCK.findall(readme)) >= 4
    assert figure_problems(readme, REPO) == []


def test_an_untraced_figure_is_found(tmp_path: Path) -> None:
    (tmp_path / 'report.md').write_text('| tiny | 1.19 s | 1.46x |\n')
    good = ('## Performance\n<!-- figures: report.md -->\ntiny 1.19 s, 1.46x faster\n'
            '<!-- end figures -->\n## Next\nDefaults: 0.5 m, torch 2.14.1, MiDaS v2.1.\n')
    assert figure_problems(good, tmp_path) == []
    changed = good.replace('1.19 s', '1.18 s')
    assert figure_problems(changed, tmp_path) == ['report.md does not contain 1.18']
    loose = good.replace('<!-- end figures -->\n', '<!-- end figures -->\nthen 2.5 s\n')
    assert figure_problems(loose, tmp_path) == [
        'Performance has figures outside a figures block: 2.5']
    claim = good + 'The node measured 3.85 ms per frame.\n'
    assert figure_problems(claim, tmp_path) == [
        "a measured figure outside a figures block: 'The node measured 3.85 ms per frame.'"]
    missing = good.replace('report.md', 'gone.md')
    assert figure_problems(missing, tmp_path) == ['figures cite gone.md, which does not exist']
