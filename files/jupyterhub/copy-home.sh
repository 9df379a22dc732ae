#!/bin/sh
# The user server's init container: put the platform's starter files into the user's home
# (~/dbt_projects, ~/notebooks, ~/scripts, ~/data/uploads, ~/data/exports), each file only where
# the home has none by that name, so a user's edits and additions survive every restart and every
# later `invoke up`, and files new in the platform appear. The files come from the ConfigMap
# mounted at $TEMPLATE, whose MANIFEST lists each key and the path it takes in the home.
set -eu

: "${TEMPLATE:?}" "${HOME:?}"

mkdir -p "$HOME/data/uploads" "$HOME/data/exports"
added=0
tab=$(printf '\t')
while IFS="$tab" read -r key path; do
  [ -n "$key" ] || continue
  [ -e "$HOME/$path" ] && continue
  mkdir -p "$HOME/$(dirname "$path")"
  cp "$TEMPLATE/$key" "$HOME/$path"
  added=$((added + 1))
done < "$TEMPLATE/MANIFEST"
echo "home $HOME: $added starter file(s) added, the rest were already there"
