#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
#
# `make check`, the README's test command (and what .ci/run calls):
#   setup (a no-op when done) -> kernel (cached) -> fr1.ko with clippy ->
#   rustfmt -> host cargo tests -> VM kselftests, one VM per script.
# Ends with one line "N passed, N failed" counted over host and VM tests and
# exits non-zero on any failure.
#
# FR1_TESTS="test_a.sh test_b.sh" runs only those VM tests.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
cd "$FR1_ROOT"

t0=$(date +%s)
passed=0 failed=0 skipped=0
result() { # result ok|fail NAME
	if [ "$1" = ok ]; then passed=$((passed + 1)); echo "ok: $2"
	else failed=$((failed + 1)); echo "FAIL: $2"; fi
}
step() { log "== $* ($(($(date +%s) - t0)) s)"; }

step setup
scripts/setup.sh
step kernel
kb=$(scripts/build-kernel.sh test)
log "kernel: $kb ($(sed -n 's/^package: //p' "$kb/fr1-build.log"))"

step "module (clippy)"
mkdir -p out
# Always recompile the crate so that warnings of an unchanged tree show too.
rm -f src/fr1_main.o fr1.ko
if make KDIR="$kb" CLIPPY=1 modules >out/module-build.log 2>&1; then
	if grep -qiE 'warning|error' out/module-build.log; then
		grep -iE -A5 'warning|error' out/module-build.log | head -n 40
		result fail "fr1.ko builds without warnings (clippy)"
	else
		result ok "fr1.ko builds without warnings (clippy)"
	fi
else
	tail -n 40 out/module-build.log
	result fail "fr1.ko builds"
	echo "$passed passed, $((failed)) failed"
	exit 1
fi

step rustfmt
if make -s fmtcheck >out/fmt.log 2>&1; then result ok "rustfmt clean"; else
	head -n 40 out/fmt.log; result fail "rustfmt clean"; fi

step "host clippy"
if cargo clippy --workspace --all-targets --color never -- -D warnings >out/clippy-host.log 2>&1; then
	result ok "host crates clippy clean"
else
	grep -A8 -E '^(warning|error)' out/clippy-host.log | head -n 40
	result fail "host crates clippy clean"
fi

step "fr1ctl"
if cargo build --release -p fr1ctl --color never >out/fr1ctl-build.log 2>&1; then :; else
	tail -n 30 out/fr1ctl-build.log; result fail "fr1ctl builds"; fi

step "dkms build"
dk=$(mktemp -d)
if git archive HEAD --prefix=fr1-0.1.0/ | tar -x -C "$dk" && mkdir -p "$dk/tree" &&
	dkms build --dkmstree "$dk/tree" --sourcetree "$dk" -m fr1 -v 0.1.0 \
		-k "$(cat "$kb/include/config/kernel.release")" --kernelsourcedir "$kb" >out/dkms.log 2>&1 &&
	ls "$dk"/tree/fr1/0.1.0/*/*/module/fr1.ko >/dev/null 2>&1; then
	result ok "dkms build of the committed tree against the cached kernel"
else
	tail -n 20 out/dkms.log; result fail "dkms build of the committed tree against the cached kernel"
fi
rm -rf "$dk"

step "host tests"
if cargo test --workspace --color never >out/cargo-test.log 2>&1; then :; else
	tail -n 40 out/cargo-test.log; result fail "cargo test ran"; fi
hp=$(awk '/^test result:/{s+=$4} END{print s+0}' out/cargo-test.log)
hf=$(awk '/^test result:/{s+=$6} END{print s+0}' out/cargo-test.log)
grep -E '^test .* FAILED$' out/cargo-test.log || true
passed=$((passed + hp)) failed=$((failed + hf))
echo "host: $hp passed, $hf failed"
if "$FR1_CACHE/venv/bin/python" tests/host/bench_report_test.py >out/bench-report-test.log 2>&1; then
	result ok "bench report: paired ratios, intervals, verdicts, the runner's decisions"
else
	tail -n 10 out/bench-report-test.log; result fail "bench report: paired ratios, intervals, verdicts, the runner's decisions"
fi

step "VM kselftests"
tests=()
for t in ${FR1_TESTS:-}; do tests+=("tests/vm/$t"); done
scripts/vm.sh -k "$kb" -m fr1.ko -o out/vm "${tests[@]}" || true
if [ -f out/vm/summary ]; then
	read -r vp vf vs <out/vm/summary
	passed=$((passed + vp)) failed=$((failed + vf)) skipped=$((skipped + vs))
else
	result fail "VM harness ran"
fi

step "mdstat parsers (host, on the VM's captures)"
cap=out/vm/test_mdstat_capture/result.ktap
if [ -z "${FR1_TESTS:-}" ] && [ ! -f "$cap" ]; then
	result fail "mdstat parsers: the VM's mdstat capture is missing ($cap)"
elif [ -f "$cap" ]; then
	"$FR1_CACHE/venv/bin/python" tests/host/mdstat_parsers.py "$cap" >out/mdstat-parsers.log 2>&1 || true
	grep -E '^(ok|FAIL)' out/mdstat-parsers.log || true
	read -r pp pf < <(tail -n1 out/mdstat-parsers.log) || true
	passed=$((passed + ${pp:-0})) failed=$((failed + ${pf:-1}))
fi

step "fr1ctl --json (host json parser, on the VM's captures)"
if [ -f "$cap" ]; then
	python3 tests/host/fr1ctl_json.py "$cap" >out/fr1ctl-json.log 2>&1 || true
	grep -E '^(ok|FAIL)' out/fr1ctl-json.log || true
	read -r jp jf < <(tail -n1 out/fr1ctl-json.log) || true
	passed=$((passed + ${jp:-0})) failed=$((failed + ${jf:-1}))
fi

step done
if [ "$skipped" -gt 0 ]; then echo "$passed passed, $failed failed, $skipped skipped"; else echo "$passed passed, $failed failed"; fi
[ "$failed" = 0 ]
