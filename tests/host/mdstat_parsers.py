#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0
"""Parses the /proc/mdstat texts captured in the VM (tests/vm/test_mdstat_capture.sh)
with PyPI's `mdstat` parser (Truveris, 1.0.4): fr1's output must read exactly
as md's does to a real client. Prints "ok: ..."/"FAIL: ..." lines and ends
with "<passed> <failed>"."""

import sys

import mdstat

from captures import captures


def expect(name, parsed):
    """The assertions for each captured state."""
    dev = parsed["devices"].get("md0")
    assert parsed["personalities"] == ["raid1"], parsed["personalities"]
    assert parsed["unused_devices"] == []
    assert dev is not None, "md0 missing"
    assert dev["active"] is True and dev["personality"] == "raid1", dev
    status = dev["status"]
    if name == "clean":
        assert status["raid_disks"] == 2 and status["non_degraded_disks"] == 2, status
        assert status["synced"] == [True, True], status
        assert dev["resync"] is None, dev["resync"]
        assert dev["bitmap"] is not None and dev["bitmap"]["chunk_size"] == "4KB", dev["bitmap"]
    elif name == "degraded":
        assert status["non_degraded_disks"] == 1 and status["synced"] == [True, False], status
        assert dev["disks"]["vdb"]["faulty"] is True, dev["disks"]
        assert dev["disks"]["vda"]["faulty"] is False
    elif name == "recovering":
        r = dev["resync"]
        assert r is not None and r["operation"] == "recovery", r
        assert 0 <= r["resynced"] < r["total"], r
        assert r["progress"].endswith("%") and r["speed"].endswith("K/sec"), r
    elif name == "check":
        r = dev["resync"]
        assert r is not None and r["operation"] == "check", r
        assert r["total"] == 65536, r
    else:
        raise AssertionError("unknown capture " + name)


def main():
    passed = failed = 0
    seen = set()
    for name, lines in captures(sys.argv[1], "mdstat"):
        seen.add(name)
        try:
            expect(name, mdstat.parse_lines(list(lines)))
            print(f"ok: mdstat parser (PyPI mdstat 1.0.4): {name}")
            passed += 1
        except Exception as e:  # noqa: BLE001 - report any parser failure
            print(f"FAIL: mdstat parser (PyPI mdstat 1.0.4): {name}: {e!r}")
            print("\n".join("    " + l for l in lines))
            failed += 1
    for name in {"clean", "degraded", "recovering", "check"} - seen:
        print(f"FAIL: mdstat parser: no '{name}' capture")
        failed += 1
    print(f"{passed} {failed}")


if __name__ == "__main__":
    main()
