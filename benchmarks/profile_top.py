"""The top items of a py-spy profile: where a server's CPU goes, as the share of samples.

`bench_serving --profile` records our server with `py-spy record --format raw` (collapsed stacks,
one `frame;frame;... count` line per distinct stack) while the load runs; `top_items` folds that
into the functions with the most samples on-CPU at the leaf ("self") and anywhere on the stack
("total", our code in lib/ only), which BENCHMARKS.md quotes before and after a change.
"""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path

# py-spy frames read "function (path/to/file.py)" (with --nolineno)
FRAME = re.compile(r"^(?P<func>.*) \((?P<file>[^()]*)\)$")


def _name(frame: str) -> str:
    match = FRAME.match(frame.strip())
    if match is None:
        return frame.strip()
    path = match["file"]
    for marker in ("site-packages/", "/lib/python3"):
        if marker in path:
            path = path.split(marker, 1)[1]
    return f"{match['func']} ({path})"


def top_items(raw: Path, n: int = 12) -> tuple[int, list[tuple[str, int]], list[tuple[str, int]]]:
    """(samples, top-n by self samples, top-n by total samples) of a py-spy raw profile."""
    self_count: Counter[str] = Counter()
    total_count: Counter[str] = Counter()
    samples = 0
    for line in raw.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        frames = [_name(f) for f in stack.split(";")]
        samples += int(count)
        self_count[frames[-1]] += int(count)
        for name in set(frames):
            total_count[name] += int(count)
    ours = Counter({name: c for name, c in total_count.items() if "(lib/" in name})
    return samples, self_count.most_common(n), ours.most_common(n)


def format_top(raw: Path, n: int = 12) -> str:
    """The profile's top items as text: share of samples, self and total."""
    samples, by_self, by_total = top_items(raw, n)
    lines = [f"py-spy: {samples} samples"]
    lines.append("  self %  function")
    lines += [f"  {100 * c / samples:5.1f}  {name}" for name, c in by_self]
    lines.append(" total %  function (our code: lib/)")
    lines += [f"  {100 * c / samples:5.1f}  {name}" for name, c in by_total if "(lib/" in name]
    return "\n".join(lines)
