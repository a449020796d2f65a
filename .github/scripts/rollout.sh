#!/usr/bin/env bash
# Applies a rendered Palaver manifest (kubectl kustomize --enable-helm of an
# overlay) and waits until it runs: the migration Job completes, then every
# Deployment in the manifest finishes its rollout. Exits non-zero when either
# fails or times out, after printing what the pods and events say; the deploy
# workflow (.github/workflows/deploy-environment.yml) then rolls back.
#
#   .github/scripts/rollout.sh MANIFEST
#
# Environment: NAMESPACE (default palaver), ROLLOUT_TIMEOUT in seconds
# (default 600). Needs kubectl and yq (both on GitHub's Ubuntu runners).
set -euo pipefail
manifest="${1:?usage: rollout.sh MANIFEST}"
ns="${NAMESPACE:-palaver}"
timeout="${ROLLOUT_TIMEOUT:-600}"
migrate=app.kubernetes.io/component=migrate

diagnose() {
  echo "::group::pods and recent events in $ns"
  kubectl -n "$ns" get pods -o wide || true
  kubectl -n "$ns" get events --sort-by=.lastTimestamp | tail -n 40 || true
  echo "::endgroup::"
}
trap 'status=$?; [ "$status" -eq 0 ] || diagnose; exit "$status"' EXIT

# Under Kustomize the chart's Helm hooks are plain objects: the migration Job
# keeps its name while its image changes, and a Job's pod template cannot be
# changed, so the previous Job goes first (its pods' logs go with it).
kubectl -n "$ns" delete job -l "$migrate" --ignore-not-found --wait=true
kubectl apply --server-side --force-conflicts -f "$manifest"

# The server also migrates at start-up, but a failed migration should stop
# the rollout here, with its logs, rather than crash-loop the new pods.
job="$(kubectl -n "$ns" get job -l "$migrate" -o name | head -n 1)"
if [ -n "$job" ]; then
  deadline=$((SECONDS + timeout))
  while :; do
    conditions="$(kubectl -n "$ns" get "$job" -o jsonpath='{range .status.conditions[?(@.status=="True")]}{.type} {end}')"
    case " $conditions " in
      *" Complete "*) echo "$job complete"; break ;;
      *" Failed "*)
        echo "::error::$job failed"
        kubectl -n "$ns" logs "$job" --all-containers --tail=100 || true
        exit 1 ;;
    esac
    if [ "$SECONDS" -ge "$deadline" ]; then
      echo "::error::$job did not complete within ${timeout}s"
      exit 1
    fi
    sleep 5
  done
fi

# `rollout status` fails as soon as a Deployment exceeds its progress deadline.
# (yq is mikefarah's v4, as on GitHub's runners: eval-all, no separators.)
for deployment in $(yq ea -N '[select(.kind == "Deployment") | .metadata.name] | .[]' "$manifest"); do
  kubectl -n "$ns" rollout status "deployment/$deployment" --timeout="${timeout}s"
done
echo "rollout complete"
