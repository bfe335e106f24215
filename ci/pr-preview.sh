#!/usr/bin/env bash
# The preview step of action.yml: finds the specs a pull request changes (globs in
# SPECS, compared with BASE_REF), writes for each `flotilla plan --format markdown` and
# `flotilla cost --base <the spec on the base branch> --format markdown` into
# $RUNNER_TEMP/flotilla-preview/*.md (in order), and sets the outputs `specs` and
# `status` (0 ok, 1 a spec could not be planned or priced, 3 a guardrail was exceeded).
# Guardrails: MAX_MONTHLY and MAX_INCREASE on the cost against the base branch,
# DENY_DESTROY on the plan. PLAN_ARGS are added to `plan`; PRICING_DATE to both.
set -uo pipefail

bin="$RUNNER_TEMP/flotilla-bin/bin/flotilla"
out="$RUNNER_TEMP/flotilla-preview"
base_dir="$RUNNER_TEMP/flotilla-base"
rm -rf "$out"
mkdir -p "$out"
status=0

if ! git fetch --no-tags --quiet origin "$BASE_REF"; then
  echo "::error::cannot fetch the base branch '$BASE_REF' from origin"
  echo "status=1" >> "$GITHUB_OUTPUT"
  exit 0
fi
base=$(git rev-parse FETCH_HEAD)
if since=$(git merge-base "$base" HEAD 2>/dev/null); then
  :
else
  since="$base"
  echo "::warning::no merge base with $BASE_REF (check out with fetch-depth: 0); comparing with its tip"
fi
git worktree remove --force "$base_dir" 2>/dev/null || rm -rf "$base_dir"
git worktree add --detach --quiet "$base_dir" "$base"

# The changed specs: added, copied, modified or renamed files matching a glob.
changed=()
set -f
while IFS= read -r file; do
  for glob in $SPECS; do
    # shellcheck disable=SC2053 # the glob is a pattern on purpose
    if [[ $file == $glob ]]; then
      changed+=("$file")
      break
    fi
  done
done < <(git diff --name-only --diff-filter=ACMR "$since" HEAD)
set +f

# Runs flotilla with the arguments after FILE and SPEC, its markdown into FILE; notes a
# guardrail or an error in FILE, as an annotation, and in `status`.
run() {
  local file=$1 spec=$2
  shift 2
  "$bin" "$@" > "$file" 2> "$out/stderr.txt"
  local code=$?
  cat "$out/stderr.txt" >&2
  if [ "$code" -eq 3 ]; then
    status=3
    local reason
    reason=$(grep -E 'exceeded' "$out/stderr.txt" | tail -n 1)
    echo "::error file=$spec::$reason"
    printf '\n> **Guardrail exceeded** (`flotilla %s`): %s\n' "$1" "$reason" >> "$file"
  elif [ "$code" -ne 0 ]; then
    [ "$status" -eq 0 ] && status=1
    echo "::error file=$spec::flotilla $1 failed (exit $code)"
    printf '\n**`flotilla %s %s` failed** (exit %s):\n\n```\n%s\n```\n' \
      "$1" "$spec" "$code" "$(tail -n 40 "$out/stderr.txt")" >> "$file"
  fi
}

pricing=()
[ -n "$PRICING_DATE" ] && pricing=(--pricing-date "$PRICING_DATE")
read -r -a extra <<< "$PLAN_ARGS"

n=0
for spec in "${changed[@]}"; do
  n=$((n + 1))
  id=$(printf '%03d' "$n")
  printf '### `%s`\n' "$spec" > "$out/$id-0-spec.md"
  plan=(plan "$spec" --format markdown "${pricing[@]}" "${extra[@]}")
  [ "$DENY_DESTROY" = "true" ] && plan+=(--deny-destroy)
  run "$out/$id-1-plan.md" "$spec" "${plan[@]}"
  cost=(cost "$spec" --format markdown "${pricing[@]}")
  if [ -f "$base_dir/$spec" ]; then
    cost+=(--base "$base_dir/$spec")
    [ -n "$MAX_INCREASE" ] && cost+=(--max-increase "$MAX_INCREASE")
  fi
  [ -n "$MAX_MONTHLY" ] && cost+=(--max-monthly "$MAX_MONTHLY")
  run "$out/$id-2-cost.md" "$spec" "${cost[@]}"
done
rm -f "$out/stderr.txt"

if [ "$n" -gt 0 ]; then
  printf '## flotilla preview\n\n%s changed spec(s), compared with `%s`.\n' "$n" "$BASE_REF" \
    > "$out/000-preview.md"
fi
{
  echo "specs<<FLOTILLA_SPECS"
  [ "$n" -gt 0 ] && printf '%s\n' "${changed[@]}"
  echo "FLOTILLA_SPECS"
  echo "status=$status"
} >> "$GITHUB_OUTPUT"
git worktree remove --force "$base_dir" 2>/dev/null || true
