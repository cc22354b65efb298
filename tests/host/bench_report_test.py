#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0
"""Host test of scripts/bench_report.py's statistics: paired ratios (the
nearest record of the same repetition), bootstrap intervals, and the
met / NOT met / undecided verdicts. Exits non-zero on the first failure."""

import importlib.util
import pathlib

root = pathlib.Path(__file__).resolve().parents[2]
spec = importlib.util.spec_from_file_location("bench_report", root / "scripts" / "bench_report.py")
br = importlib.util.module_from_spec(spec)
spec.loader.exec_module(br)

# Records end with (repetition, position in the log); field 0 is the value.
# fr1 was measured in two passes (against md-none, then md-internal): each
# md record pairs with the fr1 record next to it in the same repetition.
fr1 = [(100, 1, 0), (200, 1, 10), (110, 2, 2), (220, 2, 12)]
md_none = [(50, 1, 1), (55, 2, 3)]
md_internal = [(100, 1, 11), (110, 2, 13)]
assert br.paired(fr1, md_none, 0) == [2.0, 2.0], br.paired(fr1, md_none, 0)
assert br.paired(fr1, md_internal, 0) == [2.0, 2.0], br.paired(fr1, md_internal, 0)
# A repetition the other target lacks is left out.
assert br.paired(fr1, [(50, 3, 5)], 0) == []

# Identical ratios: the interval is the point.
assert br.interval([1.1, 1.1, 1.1]) == (1.1, 1.1, 1.1)
assert br.interval([]) is None
assert br.interval([0.9]) == (0.9, 0.9, 0.9)
# Spread-out ratios: the point is the median, the interval covers it and
# stays within the data.
p, lo, hi = br.interval([0.9, 1.0, 1.3, 1.05, 1.1])
assert p == 1.05 and 0.9 <= lo <= p <= hi <= 1.3, (p, lo, hi)
# Deterministic (a fixed seed).
assert br.interval([0.9, 1.0, 1.3, 1.05, 1.1]) == (p, lo, hi)

# Verdicts: at least a target, and at most one.
assert br.decide((1.1, 1.02, 1.2), 1.0) == "met"
assert br.decide((0.9, 0.8, 0.98), 1.0) == "NOT met"
assert br.decide((1.01, 0.97, 1.05), 1.0) == "undecided"
assert br.decide((1.1, 1.0, 1.15), 1.2, at_least=False) == "met"
assert br.decide((1.5, 1.4, 1.6), 1.2, at_least=False) == "NOT met"
assert br.decide((1.2, 1.1, 1.3), 1.2, at_least=False) == "undecided"

assert br.spread([(90, 1, 0), (100, 2, 1), (110, 3, 2)], 0) == "20 %"
assert br.spread([(90, 1, 0)], 0) == "-"
print("bench_report: paired ratios, intervals, verdicts: ok")
