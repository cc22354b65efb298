#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
#
# Builds fr1ctl (cargo build --release -p fr1ctl) and prints where cargo put
# what `make install` installs, as shell assignments:
#   bin=...     the binary
#   assets=...  the man pages (fr1ctl.8, fr1ctl-VERB.8) and the completions
#               (fr1ctl.bash, _fr1ctl, fr1ctl.fish) that fr1ctl/build.rs
#               generates in its OUT_DIR
# Both come from cargo's own build messages, so no hashed path is guessed.
# Usage: eval "$(scripts/fr1ctl-build.sh)"
set -eu
cd "$(dirname "$0")/.."
# Cargo's messages: one JSON object a line (compiler diagnostics still go
# to stderr, rendered). Paths hold no quotes or backslashes here.
msgs=$(cargo build --release -p fr1ctl --message-format=json-render-diagnostics)
field() { # field REASON KEY: KEY's string in fr1ctl's message of that REASON
	printf '%s\n' "$msgs" | grep "\"reason\":\"$1\"" | grep '"package_id":"[^"]*/fr1ctl#' |
		sed -n "s/.*\"$2\":\"\\([^\"]*\\)\".*/\\1/p" | tail -n 1
}
bin=$(field compiler-artifact executable)
out=$(field build-script-executed out_dir)
[ -x "$bin" ] || { echo "fr1ctl-build.sh: no fr1ctl binary in cargo's messages" >&2; exit 1; }
[ -f "$out/assets/fr1ctl.8" ] || { echo "fr1ctl-build.sh: no man page in '$out/assets'" >&2; exit 1; }
printf "bin='%s'\nassets='%s'\n" "$bin" "$out/assets"
