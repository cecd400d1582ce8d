#!/usr/bin/env bash
# Lint for the history: every commit subject after ec4b12b (where this rule began to be checked; older ones
# stay as they were written) is at most 72 characters, so `git log --oneline` and `git shortlog` show it whole. Where there is no git history (a tarball, a shallow clone without that
# commit) it says so and passes: there is nothing to check.
set -euo pipefail
cd "$(dirname "$0")/.."
base=ec4b12b
max=72
if ! git rev-parse --verify --quiet "$base^{commit}" >/dev/null 2>&1; then
  echo "check-commits: no history from $base here; commit subjects not checked"
  exit 0
fi
long=$(git log --format='%h %s' "$base..HEAD" | awk -v max="$max" '{ s = substr($0, index($0, " ") + 1); if (length(s) > max) printf "  %s (%d characters)\n", $0, length(s) }')
if [ -n "$long" ]; then
  echo "check-commits: these commit subjects are longer than $max characters; reword them (git rebase -i):" >&2
  echo "$long" >&2
  exit 1
fi
