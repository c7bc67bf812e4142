#!/usr/bin/env bash
# The system packages the test suite needs: Debian's chromium (browser tests) and softhsm2
# (PKCS#11 key provider tests). Installs the missing ones with apt-get where it may (root, or
# passwordless sudo); else stops, before the suite runs, with one message naming what to
# install. Shared by `make test` and `.ci/run`.
#   BANK_TEST_SKIP_SYSTEM=1        go on without them: their tests skip, and the run's last lines
#                                  say so (never under CI=true, which runs every test)
#   BANK_SYSTEM_DEPS_CHECK_ONLY=1  never install, only check
#   BANK_CHROMIUM=PATH             a Chromium other than /usr/bin/chromium
set -euo pipefail

chromium="${BANK_CHROMIUM:-/usr/bin/chromium}"

missing_packages() {
  local missing=()
  [ -x "$chromium" ] || missing+=(chromium)
  command -v softhsm2-util >/dev/null 2>&1 || missing+=(softhsm2)
  echo "${missing[*]}"
}

on_ci() {
  case "$(echo "${CI:-}" | tr '[:upper:]' '[:lower:]')" in "" | 0 | false | no) return 1 ;; esac
}

apt_get() {
  # How this user may run apt-get, if at all.
  [ "${BANK_SYSTEM_DEPS_CHECK_ONLY:-}" = 1 ] && return 1
  command -v apt-get >/dev/null 2>&1 || return 1
  if [ "$(id -u)" = 0 ]; then
    echo "env DEBIAN_FRONTEND=noninteractive apt-get"
  elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
    echo "sudo -n env DEBIAN_FRONTEND=noninteractive apt-get"
  else
    return 1
  fi
}

packages="$(missing_packages)"
[ -z "$packages" ] && exit 0

if apt="$(apt_get)"; then
  echo "== installing Debian's $packages for the browser and HSM tests"
  $apt update -qq
  # shellcheck disable=SC2086 # one word per package
  $apt install -y -qq $packages >/dev/null
  packages="$(missing_packages)"
  [ -z "$packages" ] && exit 0
fi

if [ "${BANK_TEST_SKIP_SYSTEM:-}" = 1 ] && ! on_ci; then
  echo "note: running without Debian's $packages (BANK_TEST_SKIP_SYSTEM=1): the browser and HSM tests will be skipped, and counted at the end" >&2
  exit 0
fi
if [ -n "${BANK_CHROMIUM:-}" ] && [ "$packages" != "${packages#chromium}" ]; then
  hint=" (or point BANK_CHROMIUM, now $BANK_CHROMIUM, at a Chromium)"
else
  hint=""
fi
if on_ci; then
  echo "CI needs Debian's $packages and could not install them: run \`sudo apt-get install $packages\`$hint (CI=true never skips the browser and HSM tests)" >&2
else
  echo "make test needs Debian's $packages: run \`sudo apt-get install $packages\`$hint, or set BANK_TEST_SKIP_SYSTEM=1 to run without the browser and HSM tests" >&2
fi
exit 1
