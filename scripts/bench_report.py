#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0
"""Turns the guest's "# bench: {json}" records into bench/results/*.json,
BENCHMARKS.md (one table per workload: fr1, md, ratios) and SVG plots made
with matplotlib."""

import argparse
import json
import statistics
from collections import defaultdict

import matplotlib

matplotlib.use("svg")
import matplotlib.pyplot as plt  # noqa: E402


def load(path):
    recs = []
    with open(path) as fp:
        for line in fp:
            if line.startswith("# bench: "):
                recs.append(json.loads(line[len("# bench: "):]))
    return recs


def med(vals):
    return statistics.median(vals) if vals else None


def ratio(a, b):
    return f"{a / b:.2f}" if a and b else "-"


def paired(a, b, i):
    """Per-repetition ratios a/b of field i: fr1 and the other target were
    measured back to back in the same repetition (the order rotating), so a
    repetition's ratio shares its slow or fast spell. Records end with
    (repetition, position in the log); a target measured in several passes
    (fr1 against md-none, then against md-internal) pairs each record of b
    with the nearest record of a in the same repetition."""
    out = []
    for y in b:
        near = [x for x in a if x[-2] == y[-2] and x[i]]
        if near and y[i]:
            x = min(near, key=lambda x: abs(x[-1] - y[-1]))
            out.append(x[i] / y[i])
    return out


def interval(ratios):
    """Median of the paired ratios and its distribution-free 95 % interval:
    the order statistics [r(k), r(n+1-k)] of the n sorted ratios, k the
    largest with 2 P(Binomial(n, 1/2) < k) <= 0.05 (the sign test's interval
    for a median; exact for any distribution, no resampling). n < 6 admits
    none: (point, None, None). The guest's runner (bench_lib.sh
    `undecided`) computes the same interval to decide whether to measure
    again."""
    if not ratios:
        return None
    s = sorted(ratios)
    n = len(s)
    k, c, cum = 0, 1.0, 0.0
    for i in range(n):
        if i:
            c = c * (n - i + 1) / i
        cum += c / 2 ** n
        if 2 * cum <= 0.05:
            k = i + 1
        else:
            break
    point = statistics.median(s)
    if k == 0:
        return point, None, None, n
    return point, s[k - 1], s[n - k], n


def decide(iv, target, at_least=True):
    """met / NOT met / undecided: where the interval lies against the target."""
    _, lo, hi, _ = iv
    if lo is None:
        return "undecided"
    if at_least:
        return "met" if lo >= target else "NOT met" if hi < target else "undecided"
    return "met" if hi <= target else "NOT met" if lo > target else "undecided"


def shown(iv, digits):
    """The point, its interval and the number of paired repetitions."""
    if iv[1] is None:
        return f"{iv[0]:.{digits}f} [n={iv[3]}: too few]"
    return f"{iv[0]:.{digits}f} [{iv[1]:.{digits}f}, {iv[2]:.{digits}f}] n={iv[3]}"


def row(name, value, target, verdict):
    """A goals-table row; `verdict` is a string or a bool (met / NOT met)."""
    if not isinstance(verdict, str):
        verdict = "met" if verdict else "NOT met"
    return f"| {name} | {value} | {target} | {verdict} |"


def pair_in(section, w, a, b, i):
    """The interval of a/b on field i of workload w in a section's records."""
    return interval(paired(section.get(w, {}).get(a, []), section.get(w, {}).get(b, []), i))


def spread(v, i):
    """The spread of a target's repetitions: (max - min) / median, in %."""
    vals = [x[i] for x in v]
    mid = med(vals)
    return f"{100 * (max(vals) - min(vals)) / mid:.0f} %" if mid and len(vals) > 1 else "-"


def goals(tput, res, full, mem):
    """The issue's goals, measured value against target."""
    def pair(w, a, b):
        return pair_in(tput, w, a, b, 1)

    lines = ["## Goals", "",
             "Ratios are the median of the n per-repetition ratios (fr1 and the other target measured back "
             "to back, the order alternating), with its distribution-free 95 % interval in brackets (order "
             "statistics: the sign test's interval for a median; it needs n >= 6): *met* or *NOT met* when "
             "the whole interval lies on one side of the target, else *undecided*. The runner measures "
             "again, only the targets of goals still undecided, until each is decided or the cap of "
             "repetitions is reached.", "",
             "| goal | measured | target | |", "|---|---|---|---|"]
    for w in tput:
        for suffix in ("", "-3way", "-degraded"):
            iv = pair(w, "fr1" + suffix, "md-none" + suffix)
            if iv:
                lines.append(row(f"{w}{suffix}: fr1 / md (no bitmap)", shown(iv, 3), ">= 1.0", decide(iv, 1.0)))
    for w in ("randwrite", "randwrite2j"):
        iv = pair(w, "fr1-degraded", "md-internal-degraded")
        if iv:
            lines.append(row(f"{w} degraded: fr1 / md (internal bitmap)", shown(iv, 2), ">= 2", decide(iv, 2.0)))
    for w in tput:
        iv = pair(w, "fr1-degraded", "raw")
        if iv and "write" in w:
            lines.append(row(f"{w} degraded: fr1 / raw leg", shown(iv, 2), ">= 0.95", decide(iv, 0.95)))
        iv = pair(w, "dm-linear", "raw")
        if iv and "write" in w:
            lines.append(row(f"{w}: dm-linear / raw leg (the cheapest stacked driver)", shown(iv, 2), ">= 0.95",
                             decide(iv, 0.95)))
    for r in res:
        if r["target"] == "fr1":
            lines.append(row(f"K={r['k']}: bytes copied == K x 4 KiB", r["bytes"], r["k"] * 4096,
                             r["bytes"] == r["k"] * 4096))
            md = next((x for x in res if x["k"] == r["k"] and x["target"] == "md-internal"), None)
            if md and r["k"] == 1000:
                q = md["ms"] / max(r["ms"], 1)
                lines.append(row("K=1000: md (default chunk) / fr1, wall time of re-add + wait",
                                 f"{q:.1f}", ">= 50", q >= 50))
                if md.get("kernel_ms") is not None and r.get("kernel_ms") is not None:
                    q = md["kernel_ms"] / max(r["kernel_ms"], 1)
                    lines.append(row("K=1000: md (default chunk) / fr1, resync time in the kernel log",
                                     f"{q:.1f}", ">= 50", q >= 50))
    f, d = full.get("fr1", {}), full.get("raw-dd", {})
    if f.get("ms") and d.get("ms"):
        q = d["ms"] / f["ms"]
        lines.append(row("idle resync speed / raw dd speed (wall, fr1ctl start-up included)",
                         f"{q:.2f}", ">= 0.9", q >= 0.9))
        if f.get("kernel_ms"):
            q = d["ms"] / f["kernel_ms"]
            lines.append(row("idle resync speed / raw dd speed (resync time in the kernel log)",
                             f"{q:.2f}", ">= 0.9", q >= 0.9))
    for r in mem:
        if r["k"] == 0:
            held = r["bytes"] + r.get("root_bytes", 0)
            lines.append(row("untouched 1 PiB array: bitmap bytes (roots of both members included)", held,
                             "<= 65536", held <= 65536))
        else:
            per = r["bytes"] / r["k"]
            lines.append(row(f"K={r['k']}: bytes per touched 128 MiB", f"{per:.0f}", "<= 4096", per <= 4096))
    return lines + [""]


def check_section(recs):
    """Issue 13's check benchmark: the section and its goals."""
    chk = defaultdict(list)
    for seq, r in enumerate(recs):
        if r["workload"] == "check":
            chk[r["target"]].append((r["ms"], r.get("kernel_ms"), (0, r.get("rep", 1)), seq))
    if not chk:
        return [], []
    gib = next(r["bytes"] for r in recs if r["workload"] == "check") / 2 ** 30
    sec = ["## Check of a whole mirror", "",
           f"`echo check > sync_action` on a {gib:g} GiB mirror of two brd members (md: `mdadm --build`, no "
           "superblock), against reading both of fr1's members raw at once with dd (1 MiB, direct): the "
           "limit, as a check reads each member once. The three take turns in each repetition. Wall: from "
           "the write to sync_action to the end of `fr1ctl wait` / `mdadm --wait`; kernel: the sync's "
           "first to last log line. Speed limits lifted; both checks found 0 mismatches.", "",
           "| target | ms wall (median) | ms kernel (median) | spread |", "|---|---|---|---|"]
    for t in ("fr1", "md", "raw-both"):
        v = chk.get(t, [])
        if v:
            k = [x[1] for x in v if x[1] is not None]
            sec.append(f"| {t} | {med([x[0] for x in v]):.0f} | {f'{med(k):.0f}' if k else '-'} | {spread(v, 0)} |")
    sec.append("")
    goals = []
    fr1 = chk.get("fr1", [])
    iv = interval(paired(chk.get("md", []), fr1, 0))
    if iv:
        goals.append(row("check: fr1 speed / md speed (wall)", shown(iv, 2), ">= 1.0", decide(iv, 1.0)))
    def kernel(v):
        return [(x[1], x[2], x[3]) for x in v if x[1]]

    iv = interval(paired(kernel(chk.get("md", [])), kernel(fr1), 0))
    if iv:
        goals.append(row("check: fr1 speed / md speed (kernel log)", shown(iv, 2), ">= 1.0", decide(iv, 1.0)))
    iv = interval(paired(chk.get("raw-both", []), fr1, 0))
    if iv:
        goals.append(row("check: fr1 speed / both members read raw at once (wall)", shown(iv, 2), ">= 0.8",
                         decide(iv, 0.8)))
    return sec, goals


def slow_goals(slow, episode):
    """Issue 11's goals for the slow-leg section."""
    lines = []
    iv = pair_in(slow, "slowleg-qd1", "fr1-wb", "fast", 2)
    if iv:
        lines.append(row("slow leg, QD1: fr1 write-behind p99 / fast leg alone p99", shown(iv, 2), "<= 1.2",
                         decide(iv, 1.2, at_least=False)))
    for w in ("slowleg-qd1", "slowleg-qd32"):
        iv = pair_in(slow, w, "fr1-wb", "md-wb", 0)
        if iv:
            lines.append(row(f"{w}: fr1 write-behind IOPS / md write-behind IOPS", shown(iv, 2), ">= 1.0",
                             decide(iv, 1.0)))
    if episode:
        lines.append(row("behind episode: bytes copied == bytes written while behind", episode["copied"],
                         episode["written_behind"], episode["copied"] == episode["written_behind"] > 0))
    if lines:
        lines = ["", "| slow-leg goal | measured | target | |", "|---|---|---|---|"] + lines + [""]
    return lines


def net_goals(net, brown):
    """Issue 12's goals for the network section."""
    lines = []
    for w in ("net-qd1", "net-qd32"):
        iv = pair_in(net, w, "fr1-nbd", "md-wb-nbd", 0)
        if iv:
            lines.append(row(f"{w}: fr1 (NBD leg) IOPS / md write-behind IOPS", shown(iv, 2), ">= 1.0",
                             decide(iv, 1.0)))
    f = brown.get("fr1-nbd")
    if f:
        blocked = f["max_lat_ns"] / 1e6
        lines.append(row(f"brownout of {f['outage_ms']} ms: fr1's longest write (ms)", f"{blocked:.0f}",
                         f"< {f['outage_ms'] // 2}", blocked < f["outage_ms"] / 2))
        dirty = f["dirty_blocks"] * f["block"]
        lines.append(row("brownout: fr1 bytes resynced == dirty blocks written while out", f["copied"], dirty,
                         f["copied"] == dirty > 0))
    if lines:
        lines = ["", "| network goal | measured | target | |", "|---|---|---|---|"] + lines + [""]
    return lines


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("result")
    ap.add_argument("out_json")
    ap.add_argument("--mode", default="full")
    ap.add_argument("--kernel", default="?")
    ap.add_argument("--qemu", default="?")
    ap.add_argument("--merge", help="an earlier result whose records of other workloads are kept")
    a = ap.parse_args()
    recs = load(a.result)
    if not recs:
        raise SystemExit("no benchmark records in " + a.result)
    if a.merge:
        # A run of some sections: the other sections' records come from an
        # earlier full run, and the header says so.
        with open(a.merge) as fp:
            old = json.load(fp)["records"]
        ran = {r["workload"] for r in recs}
        recs = recs + [r for r in old if r["workload"] not in ran]
        a.mode += f" ({', '.join(sorted(ran))}; the other records from {a.merge})"
    with open(a.out_json, "w") as fp:
        json.dump({"mode": a.mode, "kernel": a.kernel, "qemu": a.qemu, "records": recs}, fp, indent=1)

    tput = defaultdict(lambda: defaultdict(list))
    slow = defaultdict(lambda: defaultdict(list))
    net = defaultdict(lambda: defaultdict(list))
    brown = {r["target"]: r for r in recs if r["workload"] == "brownout"}
    for seq, r in enumerate(recs):
        # Repetition (within its pass: a target measured in several passes
        # pairs only with its own pass's partners) and position last:
        # `paired` matches on them.
        rep = ((r.get("pass", 0), r.get("rep", 1)), seq)
        if r["workload"].startswith("slowleg"):
            slow[r["workload"]][r["target"]].append((r["iops"], r["p50_ns"] / 1000, r["p99_ns"] / 1000, *rep))
        elif r["workload"].startswith("net-"):
            net[r["workload"]][r["target"]].append((r["iops"], r["p50_ns"] / 1000, r["p99_ns"] / 1000, *rep))
        elif "iops" in r:
            tput[r["workload"]][r["target"]].append((r["iops"], r["kib_s"], *rep))
    out = ["# fr1 benchmarks", "",
           f"Generated by `make bench` ({a.mode} mode) from `{a.out_json}`.", "",
           f"- kernel: {a.kernel}", f"- QEMU: {a.qemu} (TCG: absolute numbers are meaningless, ratios are the result)",
           "- members: brd RAM disks of equal size; fio direct I/O, libaio; median of the repetitions; spread: "
           "(max - min) / median of a target's repetitions", ""]
    goals_at = len(out)
    out.append("## Throughput")
    out.append("")
    for w, targets in tput.items():
        out.append(f"### {w}")
        out.append("")
        out.append("| target | IOPS | KiB/s | spread | fr1/target [95 %] |")
        out.append("|---|---|---|---|---|")
        m = {t: (med([x[0] for x in v]), med([x[1] for x in v])) for t, v in targets.items()}
        for t, (iops, bw) in sorted(m.items()):
            f = t.replace("md-none", "fr1").replace("md-internal", "fr1").replace("raw", "fr1")
            f = "fr1-degraded" if t == "dm-linear" else f
            iv = interval(paired(targets.get(f, []), targets[t], 1)) if f in targets and f != t else None
            out.append(f"| {t} | {iops:.0f} | {bw:.0f} | {spread(targets[t], 1)} | "
                       f"{shown(iv, 2) if iv else '-'} |")
        out.append("")
    res = [r for r in recs if r["workload"] == "resync"]
    if res:
        out += ["## Resync after K scattered 4 KiB writes", "",
                "Wall: from the re-add command to the end of `fr1ctl wait` / `mdadm --wait` (two tool "
                "start-ups included, about 100 ms here). Kernel: from the sync engine's first to its last "
                "log line (fr1: `resync starts` .. `resync terminates`; md: `recover of RAID array` .. "
                "`recover done`). Speed limits lifted for both.", "",
                "| K | fr1 ms wall / kernel | fr1 bytes copied | K x 4096 | md internal, default chunk: ms wall / kernel (chunk) | md internal, smallest chunk: ms wall / kernel (chunk) | md default / fr1 wall, kernel |",
                "|---|---|---|---|---|---|---|"]
        ks = sorted({r["k"] for r in res})
        for k in ks:
            f = next((r for r in res if r["k"] == k and r["target"] == "fr1"), {})
            md = next((r for r in res if r["k"] == k and r["target"] == "md-internal"), {})
            md4 = next((r for r in res if r["k"] == k and r["target"].startswith("md-internal-")), {})
            out.append(f"| {k} | {f.get('ms')} / {f.get('kernel_ms')} | {f.get('bytes')} | {k * 4096} | "
                       f"{md.get('ms')} / {md.get('kernel_ms')} ({md.get('chunk')}) | "
                       f"{md4.get('ms')} / {md4.get('kernel_ms')} ({md4.get('chunk')}) | "
                       f"{ratio(md.get('ms'), max(f.get('ms') or 0, 1))}, "
                       f"{ratio(md.get('kernel_ms'), max(f.get('kernel_ms') or 0, 1))} |")
        out.append("")
    full = {r["target"]: r for r in recs if r["workload"] == "fullcopy"}
    if full:
        f, d, m = full.get("fr1", {}), full.get("raw-dd", {}), full.get("md-recovery", {})
        out += ["## Full copy (every block dirty) vs raw dd", "",
                "Both sync engines run with `speed_limit_max` lifted (the default 200000 KiB/s ceiling "
                "would measure the policy, not the engine).", "",
                "| copy | ms wall | ms kernel | speed / raw dd speed (wall) |", "|---|---|---|---|",
                f"| raw dd member to member (1 MiB, direct) | {d.get('ms')} | - | 1.00 |",
                f"| fr1 resync of a new member | {f.get('ms')} | {f.get('kernel_ms')} | {ratio(d.get('ms'), f.get('ms'))} |",
                f"| md raid1 recovery of a new member | {m.get('ms')} | {m.get('kernel_ms')} | {ratio(d.get('ms'), m.get('ms'))} |", ""]
    episode = next((r for r in recs if r["workload"] == "behind-episode"), None)
    if slow:
        ms = next((r["slow_ms"] for r in recs if "slow_ms" in r), "?")
        out += [f"## Slow leg: the second member behind dm-delay ({ms} ms per write)", "",
                "4 KiB random writes. fr1-wb: write-mostly + `bitmap/backlog` 256; md-wb: mdadm --create "
                "--bitmap=internal --write-mostly --write-behind=256 (md needs a superblock and a bitmap "
                "for write-behind); -nowb: the same without write-behind; fast: the fast member alone.", "",
                "| target | QD1 IOPS | QD1 p50 us | QD1 p99 us | QD32 IOPS | QD32 p50 us | QD32 p99 us |",
                "|---|---|---|---|---|---|---|"]
        targets = sorted({t for v in slow.values() for t in v})
        for t in targets:
            cells = []
            for w in ("slowleg-qd1", "slowleg-qd32"):
                v = slow.get(w, {}).get(t, [])
                cells += [(f"{med([x[i] for x in v]):.0f}" if i == 0 else f"{med([x[i] for x in v]):.1f}")
                          if v else "-" for i in range(3)]
            out.append(f"| {t} | " + " | ".join(cells) + " |")
        out.append("")
    if episode:
        md_copy = -(-episode["written_behind"] // episode["md_chunk"]) * episode["md_chunk"] if episode["md_chunk"] else None
        out += ["### Catch-up after a behind episode", "",
                "backlog 4 against a 5 s leg: 16 MiB of sequential 4 KiB writes send the leg behind; "
                "the delay is removed and fr1 catches up by itself.", "",
                "| written while behind (bytes) | fr1 copied (bytes) | md's chunk-granular copy of the same range (bytes, chunk) | writes ms | catch-up ms |",
                "|---|---|---|---|---|",
                f"| {episode['written_behind']} | {episode['copied']} | {md_copy} ({episode['md_chunk']}) | "
                f"{episode['write_ms']} | {episode['catch_up_ms']} |", ""]
    if net:
        out += ["## Network leg: the second member on kernel NBD (nbd-server over the guest's loopback)", "",
                "4 KiB random writes. fr1-nbd: write-mostly + `bitmap/backlog` 256; md-wb-nbd: mdadm --create "
                "--bitmap=internal --write-mostly --write-behind=256 (a superblock array); md-build-nbd: "
                "mdadm --build (no bitmap or write-behind possible there); fast: the local member alone.", "",
                "| target | QD1 IOPS | QD1 p50 us | QD1 p99 us | QD32 IOPS | QD32 p50 us | QD32 p99 us |",
                "|---|---|---|---|---|---|---|"]
        for t in sorted({t for v in net.values() for t in v}):
            cells = []
            for w in ("net-qd1", "net-qd32"):
                v = net.get(w, {}).get(t, [])
                cells += [(f"{med([x[i] for x in v]):.0f}" if i == 0 else f"{med([x[i] for x in v]):.1f}")
                          if v else "-" for i in range(3)]
            out.append(f"| {t} | " + " | ".join(cells) + " |")
        out.append("")
    if brown:
        f, md = brown.get("fr1-nbd", {}), brown.get("md-wb-nbd", {})
        out += ["### Brownout under load", "",
                f"4 KiB random writes at QD8; the NBD server is stopped (SIGSTOP) for {f.get('outage_ms', md.get('outage_ms'))} ms, "
                "then continued. fr1: `fr1_stall_ms` 2000, `fr1_probe_ms` 500 (it fails the leg, probes it, "
                "re-adds it by itself). md: write-behind 256, no NBD timeout (it waits).", "",
                "| target | longest write (ms) | leg failed | bytes resynced | dirty blocks written while out (bytes) |",
                "|---|---|---|---|---|"]
        if f:
            out.append(f"| fr1-nbd | {f['max_lat_ns'] / 1e6:.0f} | {'yes' if f['leg_failed'] else 'no'} | "
                       f"{f['copied']} | {f['dirty_blocks'] * f['block']} |")
        if md:
            out.append(f"| md-wb-nbd | {md['max_lat_ns'] / 1e6:.0f} | {'yes' if md['leg_failed'] else 'no'} | "
                       "0 (it blocked instead) | - |")
        out.append("")
    mem = [r for r in recs if r["workload"] == "memory"]
    if mem:
        out += ["## Bitmap memory on a 1 PiB array (null_blk, no backing)", "",
                "K random 4 KiB writes over 1 PiB land in K distinct 128 MiB ranges (8 M of them).", "",
                "| K scattered writes | bytes held | bytes per touched 128 MiB | dense bitmap (32 MiB/TiB) |",
                "|---|---|---|---|"]
        for r in mem:
            per = f"{r['bytes'] / r['k']:.0f}" if r["k"] else "-"
            out.append(f"| {r['k']} | {r['bytes']} | {per} | {32 * 1024 * 1024 * 1024} |")
        out.append("")
    check_sec, check_goals = check_section(recs)
    out += check_sec
    check_goals = (["", "| check goal | measured | target | |", "|---|---|---|---|"] + check_goals + [""]
                   if check_goals else [])
    out[goals_at:goals_at] = (goals(tput, res, full, mem) + slow_goals(slow, episode) + net_goals(net, brown)
                              + check_goals)

    # Plots: throughput bars (KiB/s) and resync time vs K (log scale).
    fig, ax = plt.subplots(figsize=(10, 5))
    names = list(tput.keys())
    targets = sorted({t for v in tput.values() for t in v})
    width = 0.8 / max(len(targets), 1)
    for i, t in enumerate(targets):
        ax.bar([x + i * width for x in range(len(names))],
               [med([x[1] for x in tput[w].get(t, [])]) or 0 for w in names], width, label=t)
    ax.set_xticks([x + 0.4 for x in range(len(names))], names)
    ax.set_ylabel("KiB/s (median)")
    ax.legend(fontsize="small", ncol=3)
    fig.tight_layout()
    fig.savefig("bench/throughput.svg")
    if res:
        fig, ax = plt.subplots(figsize=(6, 4))
        for t in sorted({r["target"] for r in res}):
            pts = sorted((r["k"], max(r["ms"], 1)) for r in res if r["target"] == t)
            ax.plot([p[0] for p in pts], [p[1] for p in pts], marker="o", label=t)
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("K scattered 4 KiB blocks")
        ax.set_ylabel("resync time (ms)")
        ax.legend()
        fig.tight_layout()
        fig.savefig("bench/resync.svg")
    out += ["## Plots", "", "![throughput](bench/throughput.svg)", "", "![resync time](bench/resync.svg)", ""]
    with open("BENCHMARKS.md", "w") as fp:
        fp.write("\n".join(out))


if __name__ == "__main__":
    main()
