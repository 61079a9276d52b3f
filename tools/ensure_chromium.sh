#!/usr/bin/env bash
# The real-browser tests drive Debian's chromium through playwright (playwright's own browser download
# does not work offline). Install it when it is missing; as root on Debian/Ubuntu this needs no prompt.
set -euo pipefail
CHROMIUM=${CHROMIUM:-/usr/bin/chromium}
[ -x "$CHROMIUM" ] && exit 0
echo "chromium not found at $CHROMIUM: installing Debian's chromium package" >&2
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq chromium >/dev/null
[ -x "$CHROMIUM" ] || { echo "chromium is still missing at $CHROMIUM; set CHROMIUM=/path/to/chromium" >&2; exit 1; }
