#!/usr/bin/env bash
# Installs the Debian packages only the tests need, when missing (root and apt-get required; otherwise the tests
# that need them are skipped with the reason printed):
#   chromium                               headless, for the report's browser test
#   slurmctld slurmd slurm-client munge    a one-node Slurm the table's job-array tests start in a temp dir
set -uo pipefail

say() { printf 'setup: %s\n' "$*" >&2; }

need=()
command -v chromium >/dev/null 2>&1 || need+=(chromium)
for bin in slurmctld:slurmctld slurmd:slurmd sbatch:slurm-client munged:munge; do
  command -v "${bin%%:*}" >/dev/null 2>&1 || need+=("${bin#*:}")
done
[ ${#need[@]} -eq 0 ] && exit 0

if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null 2>&1; then
  say "missing ${need[*]}; installing needs root and apt-get: the tests that use them will be skipped"
  exit 0
fi
say "installing ${need[*]} (for the tests)"
apt_install() { DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null 2>&1; }
apt_install || { apt-get update -qq >/dev/null 2>&1 && apt_install; } ||
  say "could not install ${need[*]}: the tests that use them will be skipped"
# Debian's packages start their daemons where systemd runs; the tests start their own in a temp dir.
exit 0
