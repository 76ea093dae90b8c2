#!/usr/bin/env bash
# Builds the engine tier's tools from Go modules (the only source of them this project may download from),
# at the versions pinned in tools/engine/modules/*/go.mod and go.sum, and assembles them where the Pulumi CLI
# finds them with no download:
#
#   $DARE_ENGINE_CACHE/engine/bin/pulumi                       the CLI (github.com/pulumi/pulumi/pkg/v3/cmd/pulumi)
#   $DARE_ENGINE_CACHE/engine/bin/pulumi-resource-{command,random,tls}
#                                                              test-only stand-ins (tests/engine/standin-providers):
#                                                              their provider modules are not served, see README
#   $DARE_ENGINE_CACHE/engine/home/plugins/resource-kubernetes-v<version>/pulumi-resource-kubernetes
#                                                              the real Kubernetes provider, in the plugin cache layout
#   $DARE_ENGINE_CACHE/engine/bin/kube-apiserver               k8s.io/kubernetes/cmd/kube-apiserver, the pinned Kubernetes
#   $DARE_ENGINE_CACHE/engine/bin/etcd                         go.etcd.io/etcd/server/v3, the etcd kubeadm deploys with it
#                                                              (both for tests/engine/apiserver.ts)
#   $DARE_ENGINE_CACHE/engine/bin/kubectl                      k8s.io/kubernetes/cmd/kubectl at the same Kubernetes: what the host
#                                                              scripts run on the first control plane (tests/engine/node-labels.test.ts)
#   $DARE_ENGINE_CACHE/engine/bin/containerd-hosts             containerd v2's registry hosts loader (tests/engine/containerd-hosts)
#   $DARE_ENGINE_CACHE/engine/bin/etcdctl, etcdutl             go.etcd.io/etcd/etcdctl/v3 and etcdutl/v3 at etcd's version: the
#                                                              snapshot job's and the runbook's tools (tests/engine/restore-etcd.test.ts)
#   $DARE_ENGINE_CACHE/engine/bin/helm                         helm.sh/helm/v3/cmd/helm at the version the Kubernetes provider
#                                                              embeds, so `helm template` renders as `pulumi up` would
#                                                              (tests/engine/helm-template.test.ts)
#
# Each build lands in a folder keyed on its module files and flags, so a rerun builds nothing. Prints the
# engine folder on its last line. DARE_ENGINE_CACHE defaults to ~/.cache/dare-engine.
# $out is set by build_once for the builder it runs.
# shellcheck disable=SC2154
set -euo pipefail

root=$(cd "$(dirname "$0")/../.." && pwd)
modules="$root/tools/engine/modules"
cache=${DARE_ENGINE_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/dare-engine}
engine="$cache/engine"
# The release tag of the commit pinned in modules/pulumi-resource-kubernetes/go.mod; package.json's
# @pulumi/kubernetes names the same version (a test checks it).
KUBERNETES_PROVIDER_VERSION=4.25.0

export GOFLAGS="-mod=readonly -buildvcs=false" GOTOOLCHAIN=local CGO_ENABLED=0
mkdir -p "$cache"

log() { printf '%s\n' "$*" >&2; }

# The version a wrapper module requires of a module, read from its go.mod.
required_version() { (cd "$1" && go list -m -f '{{.Version}}' "$2"); }

# build_once NAME BUILDER FILES... : runs the function BUILDER (which writes into $out) unless its cache
# folder, keyed on FILES, the builder's own text and the Go version, is complete. Sets $built to the folder.
build_once() {
  local name=$1 builder=$2; shift 2
  local key
  key=$( (cat "$@"; declare -f "$builder"; go env GOVERSION) | sha256sum | cut -c1-16)
  built="$cache/builds/$name-$key"
  if [ -f "$built/.complete" ]; then log "cached: $built"; return; fi
  rm -rf "$built.partial"; mkdir -p "$built.partial"
  local start=$SECONDS
  out="$built.partial" "$builder"
  touch "$built.partial/.complete"
  rm -rf "$built"; mv "$built.partial" "$built"
  log "built: $built in $((SECONDS - start)) s"
}

build_pulumi() {
  local version
  version=$(required_version "$modules/pulumi" github.com/pulumi/pulumi/pkg/v3)
  (cd "$modules/pulumi" && go build -trimpath \
    -ldflags "-s -w -X github.com/pulumi/pulumi/sdk/v3/go/common/version.Version=$version" \
    -o "$out/pulumi" github.com/pulumi/pulumi/pkg/v3/cmd/pulumi)
}

# The provider's main package embeds files its `go generate` step writes (the schema with the version set),
# which the read-only module cache cannot hold: build it from a scratch copy of that one package, generated
# by upstream's own generate.go, inside a copy of the wrapper module.
build_kubernetes() {
  local work src
  work=$(mktemp -d)
  cp "$modules/pulumi-resource-kubernetes/go.mod" "$modules/pulumi-resource-kubernetes/go.sum" "$work/"
  # `go list -m` names no folder for a module not yet in the module cache (a fresh machine): download it first.
  src=$(cd "$work" && go mod download github.com/pulumi/pulumi-kubernetes/provider/v4 &&
    go list -m -f '{{.Dir}}' github.com/pulumi/pulumi-kubernetes/provider/v4)/cmd/pulumi-resource-kubernetes
  if [ ! -f "$src/main.go" ]; then log "no provider sources at $src"; return 1; fi
  mkdir "$work/cmd"
  cp "$src/main.go" "$src/generate.go" "$src/schema.json" "$src/terraform-mapping.json" "$work/cmd/"
  chmod -R u+w "$work"
  (cd "$work/cmd" && VERSION="$KUBERNETES_PROVIDER_VERSION" go run generate.go)
  (cd "$work" && go build -trimpath \
    -ldflags "-s -w -X github.com/pulumi/pulumi-kubernetes/provider/v4/pkg/version.Version=$KUBERNETES_PROVIDER_VERSION" \
    -o "$out/pulumi-resource-kubernetes" ./cmd)
  rm -rf "$work"
}

build_standins() {
  (cd "$root/tests/engine/standin-providers" && go build -trimpath -ldflags "-s -w" -o "$out/" ./cmd/...)
}

# kube-apiserver, stamped as the release's own build stamps it (hack/lib/version.sh): gitVersion and
# major/minor in both version packages; the build date is the module version's time, so rebuilds are identical.
build_kube_apiserver() {
  local version minor date flags pkg
  version=$(required_version "$modules/kube-apiserver" k8s.io/kubernetes)
  minor=${version#v1.}; minor=${minor%%.*}
  date=$(cd "$modules/kube-apiserver" && go list -m -f '{{.Time.UTC.Format "2006-01-02T15:04:05Z"}}' k8s.io/kubernetes)
  flags="-s -w"
  for pkg in k8s.io/client-go/pkg/version k8s.io/component-base/version; do
    flags+=" -X $pkg.gitVersion=$version -X $pkg.gitMajor=1 -X $pkg.gitMinor=$minor -X $pkg.buildDate=$date"
  done
  (cd "$modules/kube-apiserver" && go build -trimpath -ldflags "$flags" \
    -o "$out/kube-apiserver" k8s.io/kubernetes/cmd/kube-apiserver)
}

# kubectl from its own wrapper module (the same Kubernetes and replaces as kube-apiserver's, plus the CLI's
# dependencies in its go.sum), stamped the same way.
build_kubectl() {
  local version minor date flags pkg
  version=$(required_version "$modules/kubectl" k8s.io/kubernetes)
  minor=${version#v1.}; minor=${minor%%.*}
  date=$(cd "$modules/kubectl" && go list -m -f '{{.Time.UTC.Format "2006-01-02T15:04:05Z"}}' k8s.io/kubernetes)
  flags="-s -w"
  for pkg in k8s.io/client-go/pkg/version k8s.io/component-base/version; do
    flags+=" -X $pkg.gitVersion=$version -X $pkg.gitMajor=1 -X $pkg.gitMinor=$minor -X $pkg.buildDate=$date"
  done
  (cd "$modules/kubectl" && go build -trimpath -ldflags "$flags" -o "$out/kubectl" k8s.io/kubernetes/cmd/kubectl)
}

# etcd's server module is its `etcd` command; its version is in its source (go.etcd.io/etcd/api/v3/version).
build_etcd() {
  (cd "$modules/etcd" && go build -trimpath -ldflags "-s -w" -o "$out/etcd" go.etcd.io/etcd/server/v3)
}

# etcdctl (the snapshot CronJob's client) and etcdutl (docs/recovery.md's restore), each its own module.
build_etcdctl() {
  (cd "$modules/etcdctl" && go build -trimpath -ldflags "-s -w" -o "$out/etcdctl" go.etcd.io/etcd/etcdctl/v3)
}
build_etcdutl() {
  (cd "$modules/etcdutl" && go build -trimpath -ldflags "-s -w" -o "$out/etcdutl" go.etcd.io/etcd/etcdutl/v3)
}

# helm: the release the Kubernetes provider's go.mod requires (modules/pulumi-resource-kubernetes, helm.sh/helm/v3),
# stamped as helm's Makefile stamps a release (LDFLAGS += -X helm.sh/helm/v3/internal/version.version=...), so
# `helm version` names it; the Kubernetes version `helm template` assumes is given by --kube-version instead.
build_helm() {
  local version
  version=$(required_version "$modules/helm" helm.sh/helm/v3)
  (cd "$modules/helm" && go build -trimpath \
    -ldflags "-s -w -X helm.sh/helm/v3/internal/version.version=$version" \
    -o "$out/helm" helm.sh/helm/v3/cmd/helm)
}

# containerd's own loader of registry hosts files (tests/engine/containerd-hosts), at the version the hosts run:
# what the host scripts write is read as containerd reads it (tests/engine/containerd-hosts.test.ts).
build_containerd_hosts() {
  (cd "$root/tests/engine/containerd-hosts" && go build -trimpath -ldflags "-s -w" -o "$out/containerd-hosts" .)
}

build_once pulumi build_pulumi "$modules/pulumi/go.mod" "$modules/pulumi/go.sum"
pulumi_dir=$built

build_once "pulumi-resource-kubernetes-$KUBERNETES_PROVIDER_VERSION" build_kubernetes \
  "$modules/pulumi-resource-kubernetes/go.mod" "$modules/pulumi-resource-kubernetes/go.sum"
kubernetes_dir=$built

mapfile -t standin_sources < <(find "$root/tests/engine/standin-providers" -type f \
  \( -name '*.go' -o -name go.mod -o -name go.sum \) ! -name '*_test.go' | sort)
build_once standin-providers build_standins "${standin_sources[@]}"
standin_dir=$built

build_once etcd build_etcd "$modules/etcd/go.mod" "$modules/etcd/go.sum"
etcd_dir=$built

build_once etcdctl build_etcdctl "$modules/etcdctl/go.mod" "$modules/etcdctl/go.sum"
etcdctl_dir=$built

build_once etcdutl build_etcdutl "$modules/etcdutl/go.mod" "$modules/etcdutl/go.sum"
etcdutl_dir=$built

build_once kube-apiserver build_kube_apiserver "$modules/kube-apiserver/go.mod" "$modules/kube-apiserver/go.sum"
kube_apiserver_dir=$built

build_once kubectl build_kubectl "$modules/kubectl/go.mod" "$modules/kubectl/go.sum"
kubectl_dir=$built
build_once helm build_helm "$modules/helm/go.mod" "$modules/helm/go.sum"
helm_dir=$built
build_once containerd-hosts build_containerd_hosts "$root/tests/engine/containerd-hosts/go.mod" \
  "$root/tests/engine/containerd-hosts/go.sum" "$root/tests/engine/containerd-hosts/main.go"
containerd_hosts_dir=$built

# Assemble: symlinks into the keyed builds, replaced whole so a version change leaves nothing stale.
rm -rf "$engine.partial"
mkdir -p "$engine.partial/bin" "$engine.partial/home/plugins/resource-kubernetes-v$KUBERNETES_PROVIDER_VERSION"
ln -s "$pulumi_dir/pulumi" "$engine.partial/bin/pulumi"
for provider in command random tls; do
  ln -s "$standin_dir/pulumi-resource-$provider" "$engine.partial/bin/pulumi-resource-$provider"
done
ln -s "$etcd_dir/etcd" "$engine.partial/bin/etcd"
ln -s "$etcdctl_dir/etcdctl" "$engine.partial/bin/etcdctl"
ln -s "$etcdutl_dir/etcdutl" "$engine.partial/bin/etcdutl"
ln -s "$kube_apiserver_dir/kube-apiserver" "$engine.partial/bin/kube-apiserver"
ln -s "$kubectl_dir/kubectl" "$engine.partial/bin/kubectl"
ln -s "$helm_dir/helm" "$engine.partial/bin/helm"
ln -s "$containerd_hosts_dir/containerd-hosts" "$engine.partial/bin/containerd-hosts"
ln -s "$kubernetes_dir/pulumi-resource-kubernetes" \
  "$engine.partial/home/plugins/resource-kubernetes-v$KUBERNETES_PROVIDER_VERSION/pulumi-resource-kubernetes"
rm -rf "$engine"; mv "$engine.partial" "$engine"
echo "$engine"
