#!/usr/bin/env bash
# Releases an overlay with plain kubectl, migration first, so that nobody has to remember the order:
#   scripts/deploy.sh k8s/overlays/prod [--timeout 15m]
# 1. renders the overlay once (both phases apply the same objects, generated names included);
# 2. deletes the previous release's migration Job (a Job's pod template is immutable, so a new image tag cannot be
#    applied over it);
# 3. applies what the Job needs and the Job (everything not labelled app.kubernetes.io/component=gateway:
#    namespace, ServiceAccount, ConfigMap, NetworkPolicies, dev datastores) and waits for the Job to complete; if it
#    fails, prints its logs and stops before any gateway pod changes;
# 4. applies everything and waits for the rollout.
# Argo CD needs none of this: the Job's hook annotations give the same order (docs/deploy.md).
set -euo pipefail

usage() { echo "usage: $0 <overlay directory> [--timeout <duration, e.g. 15m>]" >&2; exit 2; }
[[ $# -ge 1 ]] || usage
overlay=$1
shift
timeout=15m
while [[ $# -gt 0 ]]; do
  case $1 in
    --timeout) [[ $# -ge 2 ]] || usage; timeout=$2; shift 2 ;;
    *) usage ;;
  esac
done
[[ -f $overlay/kustomization.yaml ]] || { echo "$overlay: no kustomization.yaml" >&2; exit 2; }

job=chat-gateway-migrate
deployment=chat-gateway
rendered=$(mktemp)
trap 'rm -f "$rendered"' EXIT
kubectl kustomize "$overlay" >"$rendered"
# kustomize sets the overlay's namespace on every namespaced object.
namespace=$(sed -n 's/^  namespace: //p' "$rendered" | head -n 1)
[[ -n $namespace ]] || { echo "$overlay renders no namespace" >&2; exit 2; }

echo "deploy: $overlay into namespace $namespace"
kubectl -n "$namespace" delete job "$job" --ignore-not-found --wait=true
kubectl apply -f "$rendered" -l 'app.kubernetes.io/component!=gateway'

echo "deploy: waiting for job/$job (up to $timeout)"
# Complete or Failed, whichever comes first: `kubectl wait` on one condition would sit out the whole timeout on a
# failed migration (the Job fails by itself after backoffLimit retries or activeDeadlineSeconds).
case $timeout in
  *h) limit=$((${timeout%h} * 3600)) ;;
  *m) limit=$((${timeout%m} * 60)) ;;
  *s) limit=${timeout%s} ;;
  *) limit=$timeout ;;
esac
deadline=$((SECONDS + limit))
state=
while [[ $state != *Complete* && $state != *Failed* && $SECONDS -lt $deadline ]]; do
  sleep "${DEPLOY_POLL_SECONDS:-5}"
  state=$(kubectl -n "$namespace" get "job/$job" -o jsonpath='{.status.conditions[?(@.status=="True")].type}' || true)
done
if [[ $state != *Complete* ]]; then
  echo "deploy: migration ${state:-did not finish in $timeout}; the gateway was not changed. Job logs:" >&2
  kubectl -n "$namespace" logs "job/$job" --all-containers --tail=200 >&2 || true
  exit 1
fi

kubectl apply -f "$rendered"
kubectl -n "$namespace" rollout status "deployment/$deployment" --timeout="$timeout"
echo "deploy: done"
