#!/usr/bin/env bash
# The domain crates are pure: no runtime, network, storage or randomness among their normal
# dependencies, direct or not. Fails, naming the crate and the path to it, if one appears.
set -euo pipefail
cd "$(dirname "$0")/.."
forbidden='^(tokio|axum|hyper|reqwest|sled|object_store|rand|getrandom|mio|socket2|openraft|tower)$'
status=0
for crate in roomraft-replicated roomraft-domain; do
  deps=$(cargo tree -p "$crate" -e normal --prefix none --format '{p}' | awk '{print $1, $2}' | sort -u)
  while read -r dep version; do
    if [[ "$dep" =~ $forbidden ]]; then
      echo "$crate must stay pure, but depends on $dep $version, through:" >&2
      cargo tree -p "$crate" -e normal -i "$dep@${version#v}" | head -4 >&2 || true
      status=1
    fi
  done <<<"$deps"
done
exit $status
