# Shared by scripts/test and scripts/demo: Debian package checks and the build helpers.
# shellcheck shell=bash

# require_packages PKG...: installs the missing Debian packages when run as root; otherwise
# prints the exact apt-get line and exits.
require_packages() {
  local missing=()
  if ! command -v dpkg-query >/dev/null 2>&1; then
    echo "note: not a Debian system; assuming these are installed: $*" >&2
    return 0
  fi
  for pkg in "$@"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
  done
  [[ ${#missing[@]} -eq 0 ]] && return 0
  if [[ $(id -u) -eq 0 ]]; then
    echo "installing: ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${missing[@]}"
  else
    echo "missing Debian packages; run as root:" >&2
    echo "  apt-get install -y ${missing[*]}" >&2
    exit 1
  fi
}

cpu_count() { nproc 2>/dev/null || echo 2; }
