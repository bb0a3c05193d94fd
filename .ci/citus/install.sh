#!/usr/bin/env bash
# Installs the Citus extension (a distributed PostgreSQL) into the local PostgreSQL 15, from the
# build beside this script. Idempotent: does nothing when the same build is already installed.
# Needs root (it writes under /usr/lib/postgresql/15 and /usr/share/postgresql/15).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
tarball="$here/citus-13.2.2-pg15.tar.gz"
major=$(pg_config --version 2>/dev/null | sed -E 's/^PostgreSQL ([0-9]+).*/\1/')
if [ "$major" != 15 ]; then
  echo "citus install: this build is for PostgreSQL 15; pg_config reports '${major:-nothing}'" >&2
  exit 1
fi
stamp=/usr/share/postgresql/15/extension/.citus-build
want=$(sha256sum "$tarball" | cut -d' ' -f1)
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ] && [ -f /usr/lib/postgresql/15/lib/citus.so ]; then
  exit 0
fi
tar -xzf "$tarball" -C /
echo "$want" > "$stamp"
echo "citus install: Citus 13.2.2 installed for PostgreSQL 15"
