#!/usr/bin/env sh
# Prints the path of the pinned Bun binary, fetched into npm's cache on first use. Bun is not a
# dependency (about 100 MB every install would download); the Bun smoke test and the Bun benchmark
# fetch it here. Keep the version equal to the one in package.json's start:bun.
exec npx --yes bun@1.4.5 -e 'console.log(process.execPath)'
