/**
 * A real control plane behind the stand-in `kubeadm init` of the host tests: on the first control plane,
 * the stand-in starts etcd and kube-apiserver (the pinned versions, tools/engine/build.sh) inside that host's
 * namespaces, where the kubeconfig the program builds points (the host's address, port 6443), with the PKI
 * the program placed there (k8s-pki.sh): the API server's serving certificate is signed with the cluster CA
 * key in /etc/kubernetes/pki, clients are trusted by that CA, service accounts use the program's sa.key, and
 * the apiServer extraArgs of the program's kubeadm configuration (encryption at rest, audit policy…) are
 * passed as kubeadm passes them. As kubeadm init does (≥1.29), it binds the group kubeadm:cluster-admins,
 * which the program's admin certificate carries, to cluster-admin, with a system:masters certificate of its
 * own (kubeadm's super-admin.conf). `kubeadm reset` stops both.
 *
 * What kubeadm would also do and this does not: static Pods, kube-controller-manager, the scheduler, CoreDNS
 * and kube-proxy, etcd over TLS (etcd listens on the host's loopback in plain HTTP, as tests/engine/apiserver.ts
 * does). Admission webhooks are disabled (`--disable-admission-plugins`): their pods never run here.
 */
import * as fs from "fs";
import * as path from "path";
import { TestHost } from "../hosts/harness";
import { apiServerBinaries } from "./apiserver";

/** The kube-apiserver flags that leave out what cannot run without a kubelet: admission webhooks. */
export const NO_WEBHOOKS = "--disable-admission-plugins=MutatingAdmissionWebhook,ValidatingAdmissionWebhook";

/** Inside the host: where the control plane's logs and pid files are. */
export const CONTROL_PLANE_LOGS = "/var/log/dare-control-plane";

/**
 * The script `/usr/local/bin/dare-control-plane start <kubeadm init config>` | `stop`, which the kubeadm
 * stand-in of withControlPlane runs.
 */
export function controlPlaneScript(): string {
  return `#!/bin/bash
set -euo pipefail
pki=/etc/kubernetes/pki run=/var/lib/dare-control-plane logs=${CONTROL_PLANE_LOGS}
curl=/usr/bin/curl
stop() {
  for p in kube-apiserver etcd; do
    if [ -f "$run/$p.pid" ]; then kill "$(cat "$run/$p.pid")" 2>/dev/null || true; rm -f "$run/$p.pid"; fi
  done
  rm -rf "$run/etcd"
}
if [ "$1" = stop ]; then stop; exit 0; fi
config=$2
install -d -m 0700 "$run" "$logs"
field() { sed -n "s/^ *$1: *//p" "$config" | head -n 1 | tr -d '"'; }
address=$(field advertiseAddress) port=$(field bindPort) services=$(field serviceSubnet)
network=\${services%/*}
# The kubernetes Service's address: the first of the service range.
service_ip="\${network%.*}.$(( \${network##*.} + 1 ))"
# apiServer.certSANs and apiServer.extraArgs of the ClusterConfiguration, as kubeadm reads them.
sans=$(awk '/^apiServer:/{a=1;next} a&&/^[^ ]/{a=0} a&&/^  certSANs:/{s=1;next} a&&/^  [^ ]/{s=0} a&&s&&/^    - /{print $2}' "$config")
mapfile -t extra < <(awk '/^apiServer:/{a=1;next} a&&/^[^ ]/{a=0} a&&/^  extraArgs:/{e=1;next} a&&/^  [^ ]/{e=0}
  a&&e&&/^    - name:/{n=$3} a&&e&&/^      value:/{v=$0; sub(/^      value: */,"",v); gsub(/"/,"",v); print "--" n "=" v}' "$config")
sign() { # folder name subject extensions...
  local dir=$1 name=$2 subject=$3; shift 3
  openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -keyout "$dir/$name.key" -out "$run/$name.csr" -subj "$subject" 2>/dev/null
  printf '%s\\n' "$@" > "$run/$name.ext"
  openssl x509 -req -in "$run/$name.csr" -CA "$pki/ca.crt" -CAkey "$pki/ca.key" -CAcreateserial -CAserial "$run/ca.srl" \\
    -days 2 -sha256 -extfile "$run/$name.ext" -out "$dir/$name.crt" 2>/dev/null
}
alt="IP:$address,IP:$service_ip,DNS:localhost,DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc,DNS:kubernetes.default.svc.cluster.local,IP:127.0.0.1"
for s in $sans; do case "$s" in *[!0-9.]*) alt+=",DNS:$s" ;; *) alt+=",IP:$s" ;; esac; done
# The serving certificate where kubeadm puts it; the super-admin's (kubeadm's super-admin.conf) in this folder.
sign "$pki" apiserver /CN=kube-apiserver basicConstraints=critical,CA:FALSE keyUsage=critical,digitalSignature,keyEncipherment \\
  extendedKeyUsage=serverAuth "subjectAltName=$alt"
sign "$run" super-admin /O=system:masters/CN=kubernetes-super-admin basicConstraints=critical,CA:FALSE \\
  keyUsage=critical,digitalSignature,keyEncipherment extendedKeyUsage=clientAuth
# The audit log's folder: kubeadm's hostPath volume creates it (DirectoryOrCreate).
for a in "\${extra[@]}"; do case "$a" in --audit-log-path=*) install -d -m 0700 "$(dirname "\${a#*=}")" ;; esac; done
# setsid without -f execs in place (a background job leads no process group): $! is the daemon's pid.
setsid etcd --name=default --data-dir="$run/etcd" --listen-client-urls=http://127.0.0.1:2379 \\
  --advertise-client-urls=http://127.0.0.1:2379 --listen-peer-urls=http://127.0.0.1:2380 \\
  --initial-advertise-peer-urls=http://127.0.0.1:2380 --initial-cluster=default=http://127.0.0.1:2380 \\
  --unsafe-no-fsync --log-level=warn </dev/null >"$logs/etcd.log" 2>&1 &
echo $! > "$run/etcd.pid"
setsid kube-apiserver --etcd-servers=http://127.0.0.1:2379 --advertise-address="$address" --secure-port="$port" \\
  --cert-dir="$run/certs" --tls-cert-file="$pki/apiserver.crt" --tls-private-key-file="$pki/apiserver.key" \\
  --client-ca-file="$pki/ca.crt" --authorization-mode=Node,RBAC --enable-admission-plugins=NodeRestriction \\
  ${NO_WEBHOOKS} --allow-privileged=true \\
  --service-account-issuer=https://kubernetes.default.svc.cluster.local --service-account-key-file="$pki/sa.pub" \\
  --service-account-signing-key-file="$pki/sa.key" --service-cluster-ip-range="$services" \\
  "\${extra[@]}" </dev/null >"$logs/kube-apiserver.log" 2>&1 &
echo $! > "$run/kube-apiserver.pid"
as_super() { "$curl" -sS --cacert "$pki/ca.crt" --cert "$run/super-admin.crt" --key "$run/super-admin.key" "$@"; }
for _ in $(seq 1 600); do
  if [ "$(as_super -o /dev/null -w '%{http_code}' "https://$address:$port/readyz" 2>/dev/null)" = 200 ]; then break; fi
  sleep 0.2
done
as_super -f -o /dev/null "https://$address:$port/readyz" || { echo "kube-apiserver not ready:" >&2; tail -n 30 "$logs/kube-apiserver.log" >&2; exit 1; }
# kubeadm init's binding of the admin group (kubeadm >= 1.29).
as_super -f -o /dev/null -X POST -H 'content-type: application/json' "https://$address:$port/apis/rbac.authorization.k8s.io/v1/clusterrolebindings" \\
  -d '{"metadata":{"name":"kubeadm:cluster-admins"},"roleRef":{"apiGroup":"rbac.authorization.k8s.io","kind":"ClusterRole","name":"cluster-admin"},"subjects":[{"apiGroup":"rbac.authorization.k8s.io","kind":"Group","name":"kubeadm:cluster-admins"}]}'
`;
}

/**
 * The host tests' stand-ins (tests/hosts/stubs.ts) with the control plane behind `kubeadm init`: their kubeadm
 * stand-in, renamed kubeadm-standin (it still records the call as kubeadm), runs first; then `init` starts
 * the control plane with the configuration kubeadm was given, and `reset` stops it.
 */
export function withControlPlane(stubs: Record<string, string>): Record<string, string> {
  const { kubeadm, ...others } = stubs;
  if (!kubeadm) throw new Error("withControlPlane: no kubeadm stand-in to put the control plane behind");
  return {
    ...others,
    "kubeadm-standin": kubeadm,
    kubeadm: `#!/bin/bash
set -e
/usr/local/bin/kubeadm-standin "$@"
case "$1" in
  # kubeadm init --config FILE starts the control plane; kubeadm init phase … (the control-plane step's
  # reconfiguration) only rewrites manifests, which the stand-in does.
  init) [ "$2" = phase ] || /usr/local/bin/dare-control-plane start "$3" ;;
  reset) /usr/local/bin/dare-control-plane stop ;;
esac
`,
    "dare-control-plane": controlPlaneScript(),
  };
}

/**
 * Puts etcd and kube-apiserver in the host's own /usr/local/bin (hard links to the engine's builds, or
 * copies across file systems): the host sees no other folder of this machine's /root.
 */
export function installControlPlaneBinaries(host: TestHost): void {
  for (const bin of Object.values(apiServerBinaries())) {
    const target = path.join(host.root, "usr/local/bin", path.basename(bin));
    fs.rmSync(target, { force: true });
    const source = fs.realpathSync(bin);
    try {
      fs.linkSync(source, target);
    } catch {
      fs.copyFileSync(source, target);
      fs.chmodSync(target, 0o755);
    }
  }
}
