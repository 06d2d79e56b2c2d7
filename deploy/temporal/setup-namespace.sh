#!/bin/sh
# The `temporal-admin-tools` one-shot of docker-compose.yml (image temporalio/admin-tools): once
# the server answers, creates the namespace (with its retention) and registers the search
# attributes happ's workflows write, then checks each is there with its type. Safe to run on
# every `up`: what exists is left as it is. The list is happ_integ.temporal.SEARCH_ATTRIBUTE_KEYS.
set -eu

address="${TEMPORAL_ADDRESS:-temporal:7233}"
ns="${TEMPORAL_NAMESPACE:-default}"
retention="${TEMPORAL_RETENTION:-720h}"
want="Integration:Keyword HandlerName:Keyword CallStatus:Keyword CallAttempt:Int CampaignId:Keyword"

tries=0
until temporal operator cluster health --address "$address" >/dev/null 2>&1; do
  tries=$((tries + 1))
  if [ "$tries" -ge 60 ]; then
    echo "Temporal at $address is not healthy" >&2
    exit 1
  fi
  echo "waiting for Temporal at $address"
  sleep 2
done

if temporal operator namespace describe --address "$address" --namespace "$ns" >/dev/null 2>&1; then
  echo "namespace $ns already exists"
else
  temporal operator namespace create --address "$address" --namespace "$ns" --retention "$retention"
fi
tries=0
until temporal operator namespace describe --address "$address" --namespace "$ns" >/dev/null 2>&1; do
  tries=$((tries + 1))
  if [ "$tries" -ge 30 ]; then
    echo "namespace $ns did not appear" >&2
    exit 1
  fi
  sleep 1
done

have="$(temporal operator search-attribute list --address "$address" --namespace "$ns")"
for pair in $want; do
  name="${pair%%:*}"
  kind="${pair##*:}"
  if printf '%s\n' "$have" | grep -qw "$name"; then
    echo "search attribute $name already registered"
  else
    temporal operator search-attribute create --address "$address" --namespace "$ns" \
      --name "$name" --type "$kind"
  fi
done

have="$(temporal operator search-attribute list --address "$address" --namespace "$ns")"
for pair in $want; do
  name="${pair%%:*}"
  kind="${pair##*:}"
  if ! printf '%s\n' "$have" | grep -qE "^[[:space:]]*$name[[:space:]]+$kind[[:space:]]*$"; then
    echo "search attribute $name is missing or not of type $kind" >&2
    exit 1
  fi
done
echo "namespace $ns ready: search attributes Integration, HandlerName, CallStatus, CallAttempt, CampaignId"
