/**
 * Recording stand-ins for what cannot run on the test hosts (kubeadm, kubelet, kubectl, systemctl, apt's
 * downloads, modprobe, sysctl, swapoff, nft): each logs its calls (harness.ts, recordingStub) and leaves
 * what the real one would leave, so the host scripts' guards are exercised for real.
 */
import { recordingStub } from "./harness";

export const STUB_STATE = "/var/lib/dare-stub";
const STATE = STUB_STATE;

/**
 * Stand-ins that behave enough for the scripts' guards to be exercised for real. `hosts` are the
 * cluster's host names, control planes first: etcd's member list names them.
 */
export function bootstrapStubs(hosts: string[]): Record<string, string> {
  return {
  kubeadm: recordingStub("kubeadm", `
set -e
case "$1" in
  version) [ -f ${STATE}/version ] || exit 1; echo "v$(cat ${STATE}/version)" ;;
  init|join)
    # Keep what kubeadm was given, to check it; then leave what the real one leaves.
    cp "$3" "${STATE}/kubeadm-$1.yaml"
    mkdir -p /etc/kubernetes
    if [ "$1" = init ]; then echo "admin" > /etc/kubernetes/admin.conf; fi
    echo "kubelet" > /etc/kubernetes/kubelet.conf
    # A test may ask for one failure after kubeadm got half-way.
    if [ -f /etc/dare-test-fail ]; then rm -f /etc/dare-test-fail; exit 1; fi ;;
  token) [ "$2" != create ] || cp "$4" "${STATE}/kubeadm-token.yaml" ;;
  reset) rm -f /etc/kubernetes/admin.conf /etc/kubernetes/kubelet.conf; rm -rf /etc/kubernetes/pki ;;
esac`, { env: ["KUBECONFIG"] }),
  kubelet: recordingStub("kubelet", `echo "Kubernetes v$(cat ${STATE}/version)"`),
  // etcd's member list as `etcdctl member list` prints it, for control-plane removal.
  kubectl: recordingStub("kubectl", `
case "$*" in
  *"etcdctl"*"member list"*) n=0; for h in ${hosts.slice(0, 3).join(" ")}; do echo "\${n}a1b2c3d4e5f6a7b, started, \${h}, https://10.213.0.\${n}:2380, https://10.213.0.\${n}:2379, false"; n=$((n + 1)); done ;;
esac
exit 0`, { env: ["KUBECONFIG"] }),
  "apt-get": recordingStub("apt-get", `
for a in "$@"; do case "$a" in kubeadm=*) v=\${a#kubeadm=}; mkdir -p ${STATE}; echo "\${v%-*}" > ${STATE}/version ;; esac; done`),
  "apt-mark": recordingStub("apt-mark"),
  curl: recordingStub("curl", "echo 'stand-in release key'"),
  gpg: recordingStub("gpg", `
while [ $# -gt 0 ]; do if [ "$1" = -o ]; then cat > "$2"; exit 0; fi; shift; done; cat`),
  modprobe: recordingStub("modprobe"),
  sysctl: recordingStub("sysctl"),
  swapoff: recordingStub("swapoff"),
  systemctl: recordingStub("systemctl"),
  nft: recordingStub("nft"),
  };
}

