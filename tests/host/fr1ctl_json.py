#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0
"""Parses the `fr1ctl detail --json` and `fr1ctl wait --json` texts captured in
the VM (tests/vm/test_mdstat_capture.sh) with Python's json module, as
`python3 -m json.tool` does, and checks what each state must say (the schema
is in Documentation/fr1/admin.rst). Prints "ok: ..."/"FAIL: ..." lines and
ends with "<passed> <failed>"."""

import json
import subprocess
import sys

from captures import captures


def member_states(doc):
    return [set(m["state"]) for m in doc["members"]]


EXPECT = {
    "detail clean": lambda d: d["state"] == "clean" and d["active"] == 2 and d["working"] == 2
    and d["failed"] == 0 and all({"active", "sync"} <= s for s in member_states(d)),
    "detail degraded": lambda d: d["working"] == 1 and d["failed"] == 1
    and any("faulty" in s for s in member_states(d)) and d["bitmap"]["dirty_blocks"] > 0,
    "detail recovering": lambda d: d["sync_action"] == "recover"
    and d["sync_completed"][0] < d["sync_completed"][1],
    "wait": lambda d: d["array"].endswith("md0") and d["result"] == "in_sync",
    "detail check": lambda d: d["sync_action"] == "check",
}


def main(path):
    passed = failed = 0
    seen = set()
    for name, lines in captures(path, "json"):
        text = "\n".join(lines).strip()
        seen.add(name)
        tool = subprocess.run([sys.executable, "-m", "json.tool"], input=text, capture_output=True, text=True)
        try:
            doc = json.loads(text)
            ok = tool.returncode == 0 and EXPECT.get(name, lambda d: True)(doc)
        except (ValueError, KeyError, TypeError, IndexError) as e:
            ok, text = False, f"{text} ({e})"
        print(("ok" if ok else "FAIL") + f": fr1ctl --json ({name}) parses and says what the state is")
        if not ok:
            print(f"  {text}")
        passed, failed = passed + ok, failed + (not ok)
    for name in sorted(set(EXPECT) - seen):
        print(f"FAIL: fr1ctl --json ({name}) was not captured")
        failed += 1
    print(passed, failed)


if __name__ == "__main__":
    main(sys.argv[1])
