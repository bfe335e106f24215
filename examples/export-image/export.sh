#!/bin/sh
# The export image contract (src/ops/backup.rs): FLOTILLA_BACKUP_MODE export|restore,
# FLOTILLA_BACKUP_URL, FLOTILLA_BACKUP_ID (restore: an id or "latest"),
# FLOTILLA_BACKUP_KEEP, FLOTILLA_BACKUP_PATH, FLOTILLA_BACKUP_ENDPOINT (optional),
# FLOTILLA_BACKUP_ENCRYPTED; credentials arrive as FLOTILLA_BACKUP_CRED_<NAME> and
# FLOTILLA_BACKUP_ENCRYPTION_KEY. Exit 0 on success.
set -eu
for v in $(env | sed -n 's/^FLOTILLA_BACKUP_CRED_\([A-Za-z0-9_]*\)=.*/\1/p'); do
  eval "export $v=\"\$FLOTILLA_BACKUP_CRED_$v\""
done
url="${FLOTILLA_BACKUP_URL%/}"
data="${FLOTILLA_BACKUP_PATH:-/data}"
set -- ${FLOTILLA_BACKUP_ENDPOINT:+--endpoint-url "$FLOTILLA_BACKUP_ENDPOINT"}
enc() { if [ "${FLOTILLA_BACKUP_ENCRYPTED:-false}" = true ]; then
  openssl enc -aes-256-cbc -pbkdf2 -salt -pass env:FLOTILLA_BACKUP_ENCRYPTION_KEY "$@"; else cat; fi; }
case "$FLOTILLA_BACKUP_MODE" in
export)
  tar -C "$data" -czf - . | enc | aws "$@" s3 cp - "$url/$FLOTILLA_BACKUP_ID"
  keep="${FLOTILLA_BACKUP_KEEP:-30}"
  aws "$@" s3 ls "$url/" | awk '{print $4}' | sort | head -n "-$keep" | while read -r old; do
    aws "$@" s3 rm "$url/$old"
  done ;;
restore)
  id="$FLOTILLA_BACKUP_ID"
  [ "$id" = latest ] && id=$(aws "$@" s3 ls "$url/" | awk '{print $4}' | sort | tail -n 1)
  [ -n "$id" ] || { echo "no export under $url" >&2; exit 1; }
  aws "$@" s3 cp "$url/$id" - | enc -d | tar -C "$data" -xzf - ;;
*) echo "FLOTILLA_BACKUP_MODE must be export or restore" >&2; exit 2 ;;
esac
