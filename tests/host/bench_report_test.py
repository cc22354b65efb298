#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0
"""Host test of scripts/bench_report.py's statistics: paired ratios (the
nearest record of the same repetition), order-statistic intervals, the
met / NOT met / undecided verdicts, and the guest runner's own decision
(bench_lib.sh `undecided`, run in busybox sh) agreeing with them. Exits non-zero on the first failure."""

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

# The order-statistic interval: none below n = 6; n = 6 .. 8 gives
# [min, max]; n = 9 .. 11 the second smallest and largest; n = 12 the third.
assert br.interval([]) is None
assert br.interval([1.1, 1.1, 1.1]) == (1.1, None, None, 3)
assert br.interval([0.9, 1.0, 1.3, 1.05, 1.1]) == (1.05, None, None, 5)
six = [1.3, 0.9, 1.0, 1.25, 1.1, 1.2]
assert br.interval(six) == (1.15, 0.9, 1.3, 6), br.interval(six)
nine = [float(x) for x in range(1, 10)]
assert br.interval(nine) == (5.0, 2.0, 8.0, 9), br.interval(nine)
twelve = [float(x) for x in range(1, 13)]
assert br.interval(twelve) == (6.5, 3.0, 10.0, 12), br.interval(twelve)
# Coverage: 2 P(B(n, 1/2) < k) <= 0.05, and k + 1 would break it.
for n in range(6, 40):
    _, lo, _, _ = br.interval([float(x) for x in range(1, n + 1)])
    k = int(lo)
    tail = lambda k: sum(__import__("math").comb(n, i) for i in range(k)) / 2 ** n
    assert 2 * tail(k) <= 0.05 < 2 * tail(k + 1), (n, k)

# The guest's runner (tests/vm/bench_lib.sh `undecided`) decides as the
# report does: the same records, every goal, the same verdicts.
import random
import subprocess
import tempfile

lib = (root / "tests" / "vm" / "bench_lib.sh").read_text()
fn = lib[lib.index("undecided() {"):]
fn = fn[:fn.index("\n}\n") + 3]
rng = random.Random(5)
for case in range(60):
    n = rng.randint(1, 14)
    target = rng.choice([0.95, 1.0, 1.05])
    ratios = [rng.uniform(0.85, 1.2) for _ in range(n)]
    with tempfile.NamedTemporaryFile("w", suffix=".recs", delete=False) as fp:
        for r, q in enumerate(ratios, 1):
            fp.write(f"w a {r} 0 {q * 1000:.6f} 0\nw b {r} 0 1000 0\n")
    out = subprocess.run(["busybox", "sh", "-c", f'RECS={fp.name}\n{fn}\nundecided w "a/b>={target}"'],
                         capture_output=True, text=True, check=True).stdout.split()
    iv = br.interval([float(f"{q * 1000:.6f}") / 1000 for q in ratios])
    assert (out == ["a", "b"]) == (br.decide(iv, target) == "undecided"), (ratios, target, out, iv)

# Verdicts: at least a target, and at most one.
assert br.decide((1.1, 1.02, 1.2, 6), 1.0) == "met"
assert br.decide((0.9, 0.8, 0.98, 6), 1.0) == "NOT met"
assert br.decide((1.01, 0.97, 1.05, 6), 1.0) == "undecided"
assert br.decide((1.1, 1.0, 1.15, 6), 1.2, at_least=False) == "met"
assert br.decide((1.5, 1.4, 1.6, 6), 1.2, at_least=False) == "NOT met"
assert br.decide((1.2, 1.1, 1.3, 6), 1.2, at_least=False) == "undecided"
assert br.decide((1.5, None, None, 3), 1.2, at_least=False) == "undecided"

assert br.spread([(90, 1, 0), (100, 2, 1), (110, 3, 2)], 0) == "20 %"
assert br.spread([(90, 1, 0)], 0) == "-"
# The check section: speed ratios are time ratios the other way round
# (fr1 speed / md speed = md ms / fr1 ms), paired by repetition.
recs = []
for rep, (f, m, r) in enumerate([(1000, 1500, 800), (1100, 1540, 880), (900, 1440, 810),
                                 (1000, 1600, 850), (1050, 1470, 840), (950, 1520, 760)], 1):
    recs += [{"workload": "check", "target": "fr1", "rep": rep, "ms": f, "kernel_ms": f - 100, "bytes": 1 << 31},
             {"workload": "check", "target": "md", "rep": rep, "ms": m, "kernel_ms": m - 100, "bytes": 1 << 31},
             {"workload": "check", "target": "raw-both", "rep": rep, "ms": r, "bytes": 1 << 31}]
sec, goals = br.check_section(recs)
assert any("| fr1 | 1000 |" in line for line in sec), sec
assert goals[0].startswith("| check: fr1 speed / md speed (wall) | 1.55 [1.40, 1.60] n=6 | >= 1.0 | met |"), goals
assert goals[2].endswith("| >= 0.8 | met |") and "0.80 [0.80, 0.90]" in goals[2], goals
assert br.check_section([{"workload": "resync", "target": "fr1"}]) == ([], [])
print("bench_report: paired ratios, intervals, verdicts, the runner's decisions, the check section: ok")
