#!/usr/bin/env bash
# Builds kube-apiserver, kubectl, etcd (and kwok, helm) from Go modules into a cache directory keyed by the
# pinned versions and the generated go.sum files. A no-op when the binaries are already there.
#
# Prints the bin directory on stdout (last line); progress goes to stderr.
# Env: WARMPOOL_CACHE_DIR (default ~/.cache/warmpool), CONTROL_PLANE_TARGETS (default "kube etcd kwok helm").
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=controlplane/versions.env
source "$here/controlplane/versions.env"

cache_root=${WARMPOOL_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/warmpool}
key=$(cat "$here/controlplane/versions.env" "$here"/controlplane/*/go.sum | sha256sum | cut -c1-12)
bin="$cache_root/controlplane/${KUBERNETES_VERSION}-${key}/bin"
mkdir -p "$bin"

export CGO_ENABLED=0 GOFLAGS=-mod=mod
k8s_minor=${KUBERNETES_VERSION#v1.}; k8s_minor=${k8s_minor%%.*}

log() { echo "build-control-plane: $*" >&2; }

build() { # build <module dir> <output name> <package> [ldflags]
  local dir=$1 out=$2 pkg=$3 ldflags=${4:-}
  if [ -x "$bin/$out" ]; then return 0; fi
  log "building $out from $pkg ..."
  local start=$SECONDS
  (cd "$here/controlplane/$dir" && go build -trimpath -ldflags "-s -w $ldflags" -o "$bin/$out.tmp" "$pkg")
  mv "$bin/$out.tmp" "$bin/$out"
  log "built $out in $((SECONDS - start))s"
}

kube_ldflags() {
  local p
  for p in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
    printf -- '-X %s.gitVersion=%s -X %s.gitMajor=1 -X %s.gitMinor=%s -X %s.gitTreeState=clean ' \
      "$p" "$KUBERNETES_VERSION" "$p" "$p" "$k8s_minor" "$p"
  done
}

for target in ${CONTROL_PLANE_TARGETS:-kube etcd kwok helm}; do
  case $target in
    kube)
      build kube kube-apiserver k8s.io/kubernetes/cmd/kube-apiserver "$(kube_ldflags)"
      build kube kubectl k8s.io/kubernetes/cmd/kubectl "$(kube_ldflags)"
      ;;
    etcd) build etcd etcd go.etcd.io/etcd/server/v3 "-X go.etcd.io/etcd/api/v3/version.GitSHA=${ETCD_VERSION}" ;;
    kwok) build kwok kwok sigs.k8s.io/kwok/cmd/kwok "-X sigs.k8s.io/kwok/pkg/consts.Version=${KWOK_VERSION}" ;;
    helm) build helm helm helm.sh/helm/v3/cmd/helm "-X helm.sh/helm/v3/internal/version.version=${HELM_VERSION}" ;;
    *) log "unknown target $target"; exit 2 ;;
  esac
done
echo "$bin"
