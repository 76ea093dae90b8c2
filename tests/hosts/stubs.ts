/**
 * Recording stand-ins for what cannot run on the test hosts (kubeadm, kubelet, kubectl, systemctl, apt's
 * downloads, modprobe, sysctl, swapoff, nft): each logs its calls (harness.ts, recordingStub) and leaves
 * what the real one would leave, so the host scripts' guards are exercised for real.
 */
import { recordingStub } from "./harness";

export const STUB_STATE = "/var/lib/dare-stub";
const STATE = STUB_STATE;
/** Packages the apt-get stand-in installed (containerd, containerd.io): a file per package holding its version. */
export const STUB_PACKAGES = `${STATE}/packages`;
const PACKAGES = STUB_PACKAGES;
/** Docker's release key (docs.docker.com/engine/install/ubuntu), as the stand-in for curl serves it. */
export const DOCKER_KEY_FINGERPRINT = "9DC858229FC7DD38854AE2D88D81803C0EBFCD88";
/** pkgs.k8s.io's Release.key (lib/scripts/k8s-prepare.sh cites where it is published), as the stand-in for curl serves it. */
export const KUBERNETES_KEY_FINGERPRINT = "DE15B14486CD377B9E876E1A234654DA9A296436";
/** kubeadm's certificates as the kubeadm stand-in reports and renews them (see bootstrapStubs). */
export const STUB_CERTS = `${STATE}/kubeadm-certs`;
const CERTS = STUB_CERTS;
/** What `kubeadm certs check-expiration` lists besides the CAs (kubeadm 1.36: kubernetes.io's "Certificate Management with kubeadm"). */
export const KUBEADM_CERTIFICATES = [
  "admin.conf",
  "apiserver",
  "apiserver-etcd-client",
  "apiserver-kubelet-client",
  "controller-manager.conf",
  "etcd-healthcheck-client",
  "etcd-peer",
  "etcd-server",
  "front-proxy-client",
  "scheduler.conf",
  "super-admin.conf",
];
/** The simulated Ceph cluster (seedCeph): OSDs, CRUSH host buckets, Rook's OSD deployments, backfill. */
const CEPH = `${STATE}/ceph`;

/**
 * Stand-ins that behave enough for the scripts' guards to be exercised for real. `hosts` are the
 * cluster's host names, control planes first: etcd's member list names them.
 */
export function bootstrapStubs(hosts: string[]): Record<string, string> {
  return {
    kubeadm: recordingStub(
      "kubeadm",
      `
set -e
case "$1" in
  version) [ -f ${STATE}/version ] || exit 1; echo "v$(cat ${STATE}/version)" ;;
  # The manifests as kubeadm would write them from the configuration given (here: the configuration itself,
  # so they change exactly when it does); the uploaded ClusterConfiguration kept as the ConfigMap would be.
  init)
    if [ "$2" = phase ]; then
      config=$(for a in "$@"; do [ "\${prev:-}" = --config ] && echo "$a"; prev=$a; done)
      case "$3 $4" in
        "control-plane all") mkdir -p /etc/kubernetes/manifests; for c in kube-apiserver kube-controller-manager kube-scheduler; do cp "$config" /etc/kubernetes/manifests/$c.yaml; done ;;
        "upload-config kubeadm") cp "$config" "${STATE}/kubeadm-config-configmap.yaml" ;;
      esac
      exit 0
    fi
    ;;&
  init|join)
    # Keep what kubeadm was given, to check it; then leave what the real one leaves.
    cp "$3" "${STATE}/kubeadm-$1.yaml"
    # kube-vip's static pod as it stood when kubeadm ran (the kubelet would start it with the API server).
    if [ -f /etc/kubernetes/manifests/kube-vip.yaml ]; then cp /etc/kubernetes/manifests/kube-vip.yaml "${STATE}/kube-vip-at-$1.yaml"; fi
    mkdir -p /etc/kubernetes
    # Since Kubernetes 1.29 init writes super-admin.conf beside admin.conf.
    if [ "$1" = init ]; then echo "admin" > /etc/kubernetes/admin.conf; echo "super-admin" > /etc/kubernetes/super-admin.conf; fi
    echo "kubelet" > /etc/kubernetes/kubelet.conf
    mkdir -p /var/lib/kubelet; echo "kubelet configuration" > /var/lib/kubelet/config.yaml
    # A test may ask for one failure after kubeadm got half-way.
    if [ -f /etc/dare-test-fail ]; then rm -f /etc/dare-test-fail; exit 1; fi ;;
  token) [ "$2" != create ] || cp "$4" "${STATE}/kubeadm-token.yaml" ;;
  # As the real one: the kubeconfigs, the certificates and every static pod manifest go.
  reset) rm -f /etc/kubernetes/admin.conf /etc/kubernetes/super-admin.conf /etc/kubernetes/kubelet.conf /var/lib/kubelet/config.yaml; rm -rf /etc/kubernetes/pki; rm -f /etc/kubernetes/manifests/*.yaml; rm -rf ${CERTS} ;;
  # kubeadm's certificates as "<kind> <name> <expiry RFC 3339> <externally managed> <missing>" lines in
  # ${CERTS} (made on first use: a year for the leaves, ten for the CAs; a test may write its own). The
  # check prints them as the jsonpath template of k8s-certs-renew.sh makes real kubeadm print them (the
  # template itself is in the call log); renew all gives every certificate kubeadm manages a new year.
  certs)
    if [ ! -f ${CERTS} ]; then
      mkdir -p ${STATE}
      leaf=$(date -u -d '+365 days' +%Y-%m-%dT%H:%M:%SZ); ca=$(date -u -d '+3650 days' +%Y-%m-%dT%H:%M:%SZ)
      for n in ${KUBEADM_CERTIFICATES.join(" ")}; do echo "certificate $n $leaf false false"; done > ${CERTS}
      for n in ca etcd-ca front-proxy-ca; do echo "authority $n $ca false false"; done >> ${CERTS}
    fi
    case "$2" in
      check-expiration) cat ${CERTS} ;;
      renew) [ "$3" = all ] || exit 1; leaf=$(date -u -d '+365 days' +%Y-%m-%dT%H:%M:%SZ)
        awk -v d="$leaf" '$1 == "certificate" && $4 == "false" && $5 == "false" { $3 = d } { print }' ${CERTS} > ${CERTS}.new; mv ${CERTS}.new ${CERTS} ;;
    esac ;;
esac`,
      { env: ["KUBECONFIG"] },
    ),
    kubelet: recordingStub("kubelet", `echo "Kubernetes v$(cat ${STATE}/version)"`),
    // etcd's member list as \`etcdctl member list\` prints it, for control-plane removal; Nodes that were
    // deleted are gone until labelled again; Rook's objects and the toolbox once seedCeph() ran (cephStub).
    kubectl: recordingStub(
      "kubectl",
      `
C=${CEPH}
case "$*" in
  *"etcdctl"*"member list"*) n=0; for h in ${hosts.slice(0, 3).join(" ")}; do echo "\${n}a1b2c3d4e5f6a7b, started, \${h}, https://10.213.0.\${n}:2380, https://10.213.0.\${n}:2379, false"; n=$((n + 1)); done ;;
  # A Node's kubelet version: ${STATE}/node-version-<node> when a test set one, else this host's own version.
  "get node "*" -o jsonpath={.status.nodeInfo.kubeletVersion}") [ ! -f "${STATE}/deleted-node-$3" ] || exit 1; cat "${STATE}/node-version-$3" 2>/dev/null || echo "v$(cat ${STATE}/version)" ;;
  "get node "*" -o jsonpath={.metadata.annotations.dare\\.io/upgrade-drain}") [ ! -f "${STATE}/deleted-node-$3" ] || exit 1; cat "${STATE}/drain-mark-$3" 2>/dev/null || true ;;
  "annotate node "*" --overwrite dare.io/upgrade-drain="*) mkdir -p ${STATE}; echo -n "\${5#*=}" > "${STATE}/drain-mark-$3" ;;
  "annotate node "*" dare.io/upgrade-drain-") rm -f "${STATE}/drain-mark-$3" ;;
  # kube-vip's mirror pod as the kubelet makes it from the manifest: its kubeconfig and phase; a test may put a
  # number in ${STATE}/kube-vip-lag: that many more answers still show the pod of before the switch.
  "-n kube-system get pod kube-vip-"*)
    lag=$(cat ${STATE}/kube-vip-lag 2>/dev/null || echo 0)
    if [ "$lag" -gt 0 ]; then echo $((lag - 1)) > ${STATE}/kube-vip-lag; printf '/etc/kubernetes/super-admin.conf Running'; exit 0; fi
    printf '%s Running' "$(sed -n 's/^ *path: *//p' /etc/kubernetes/manifests/kube-vip.yaml)" ;;
  "get node "*) [ ! -f "${STATE}/deleted-node-$3" ] || { echo "Error from server (NotFound): nodes $3 not found" >&2; exit 1; } ;;
  "delete node "*) mkdir -p ${STATE}; touch "${STATE}/deleted-node-$3" ;;
  "label node "*) rm -f "${STATE}/deleted-node-$3" ;;
  # The API server's mirror pod as the kubelet reports it: its hash follows the manifest the kubelet runs.
  "-n kube-system get pod kube-apiserver-"*config*hash*) sha256sum /etc/kubernetes/manifests/kube-apiserver.yaml 2>/dev/null | cut -c1-32 ;;
  # A control-plane static pod's mirror pod: "<uid> <Ready>" while its manifest is in place (a new uid once the
  # kubelet re-created it: the manifest's ctime, which a move changes), not Ready while ${STATE}/unready-<component>.
  "-n kube-system get pod "*" -o jsonpath="*)
    for c in kube-apiserver kube-controller-manager kube-scheduler etcd; do case "$5" in "$c-"*) component=$c ;; esac; done
    m=/etc/kubernetes/manifests/\${component:-none}.yaml; [ -f "$m" ] || { echo "Error from server (NotFound): pods $5 not found" >&2; exit 1; }
    ready=True; [ ! -f "${STATE}/unready-\${component}" ] || ready=False
    echo "$(stat -c %z "$m" | md5sum | cut -c1-12) $ready" ;;
  # CertificateSigningRequests: ${STATE}/csrs ("name signer requestor conditions" lines), each request's
  # base64 PKCS#10 in ${STATE}/csr-<name>; approvals appended to ${STATE}/approved.
  "get csr -o jsonpath="*) cat ${STATE}/csrs 2>/dev/null || true ;;
  "get csr "*" -o jsonpath={.spec.request}") cat "${STATE}/csr-$3" ;;
  "certificate approve "*) echo "$3" >> ${STATE}/approved ;;
  "get crd cephclusters.ceph.rook.io "*) [ ! -d $C ] || echo customresourcedefinition.apiextensions.k8s.io/cephclusters.ceph.rook.io ;;
  "-n rook-ceph get cephcluster "*) [ ! -d $C ] || echo "rook-ceph $(cat $C/deleting 2>/dev/null)" ;;
  "-n rook-ceph get deployment rook-ceph-tools "*) [ ! -d $C ] || [ -f $C/no-toolbox ] || echo deployment.apps/rook-ceph-tools ;;
  "-n rook-ceph exec deploy/rook-ceph-tools -- ceph "*) shift 6; exec ceph "$@" ;;
  "-n rook-ceph exec deploy/rook-ceph-osd-"*" -c osd -- readlink -f "*)
    id=\${4#deploy/rook-ceph-osd-}
    awk -v id="$id" '$1 == id && $3 != 0 { found = 1 } END { exit !found }' $C/deployments || { echo "error: no running pod of rook-ceph-osd-$id" >&2; exit 1; }
    kname=$(awk -v d="\${10}" '$1 == d { print $2 }' $C/links); echo "/dev/\${kname:-\${10#/dev/}}" ;;
  "-n rook-ceph get deployment -l app=rook-ceph-osd,topology-location-host="*) awk -v h="\${5#*topology-location-host=}" '$2 == h { print $1 }' $C/deployments ;;
  "-n rook-ceph get deployment rook-ceph-operator "*) cat $C/operator-replicas 2>/dev/null || echo 1 ;;
  "-n rook-ceph scale deployment rook-ceph-operator "*) echo "\${6#--replicas=}" > $C/operator-replicas ;;
  "-n rook-ceph scale deployment rook-ceph-osd-"*) id=\${5#rook-ceph-osd-}; awk -v id="$id" -v r="\${6#--replicas=}" '$1 == id { $3 = r } { print }' $C/deployments > $C/d.new; mv $C/d.new $C/deployments ;;
  "-n rook-ceph delete deployment rook-ceph-osd-"*) id=\${5#rook-ceph-osd-}; awk -v id="$id" '$1 != id' $C/deployments > $C/d.new; mv $C/d.new $C/deployments ;;
esac
exit 0`,
      { env: ["KUBECONFIG"] },
    ),
    ceph: cephStub(),
    ...packageStubs(),
    containerd: recordingStub("containerd"),
    // Docker's and Kubernetes' keys carry their fingerprints (a test may put others in
    // ${STATE}/docker-key-fingerprint or ${STATE}/k8s-key-fingerprint).
    curl: recordingStub(
      "curl",
      `
case "$*" in
  *download.docker.com*) echo 'stand-in release key'; echo "fingerprint: $(cat ${STATE}/docker-key-fingerprint 2>/dev/null || echo ${DOCKER_KEY_FINGERPRINT})" ;;
  *pkgs.k8s.io*Release.key*) echo 'stand-in release key'; echo "fingerprint: $(cat ${STATE}/k8s-key-fingerprint 2>/dev/null || echo ${KUBERNETES_KEY_FINGERPRINT})" ;;
  *) echo 'stand-in release key' ;;
esac`,
    ),
    // --show-keys: a primary key record and its fingerprint, as gpg --with-colons prints them.
    gpg: recordingStub(
      "gpg",
      `
case " $* " in *" --show-keys "*) sed -n 's/^fingerprint: \\(.*\\)$/pub:-:2048:1:0000000000000000:::::::\\nfpr:::::::::\\1:/p' "\${*: -1}"; exit 0 ;; esac
while [ $# -gt 0 ]; do if [ "$1" = -o ]; then cat > "$2"; exit 0; fi; shift; done; cat`,
    ),
    modprobe: recordingStub("modprobe"),
    sysctl: recordingStub("sysctl"),
    swapoff: recordingStub("swapoff"),
    systemctl: recordingStub("systemctl"),
    nft: recordingStub("nft"),
  };
}

/**
 * `ceph` as the Rook toolbox runs it (kubectl exec deploy/rook-ceph-tools -- ceph …), on a simulated
 * cluster in ${CEPH}: \`osds\` ("ID HOST KERNEL-NAME in|out up|down"), \`buckets\` (CRUSH hosts). Marking an
 * OSD out starts a backfill that lasts \`backfill-polls\` polls of \`ceph pg stat\` (default 2; "never": it
 * never ends); until it has, placement groups are not all active+clean and safe-to-destroy refuses.
 */
export function cephStub(): string {
  return recordingStub(
    "ceph",
    `
C=${CEPH}
osd_field() { awk -v id="$1" -v f="$2" '$1 == id { print $f }' $C/osds; }
set_osd() { awk -v id="$1" -v f="$2" -v v="$3" '$1 == id { $f = v } { print }' $C/osds > $C/o.new; mv $C/o.new $C/osds; }
remaining() { cat $C/backfill 2>/dev/null || echo 0; }
case "$1 $2" in
  "health ") echo HEALTH_OK ;;
  "osd ls-tree") grep -qx -- "$3" $C/buckets || { echo "Error ENOENT: bucket '$3' does not exist" >&2; exit 2; }; awk -v h="$3" '$2 == h { print $1 }' $C/osds ;;
  "osd ls") awk '{ print $1 }' $C/osds ;;
  "osd metadata")
    [ -n "$(osd_field "$3" 1)" ] || { echo "Error ENOENT: osd.$3 does not exist" >&2; exit 2; }
    printf '{\n    "id": %s,\n    "devices": "%s",\n    "hostname": "%s",\n    "osd_objectstore": "bluestore"\n}\n' "$3" "$(osd_field "$3" 3)" "$(osd_field "$3" 2)" ;;
  "osd out"|"osd in"|"osd down")
    id=\${3#osd.}; [ -n "$(osd_field "$id" 1)" ] || { echo "Error ENOENT: osd.$id does not exist" >&2; exit 2; }
    if [ "$2" = down ]; then set_osd "$id" 5 down; echo "marked down osd.$id."; exit 0; fi
    if [ "$(osd_field "$id" 4)" != "$2" ]; then set_osd "$id" 4 "$2"; cat $C/backfill-polls 2>/dev/null > $C/backfill || echo 2 > $C/backfill; fi
    echo "marked $2 osd.$id." ;;
  "pg stat")
    r=$(remaining)
    if [ "$r" = never ] || [ "$r" -gt 0 ]; then
      [ "$r" = never ] || echo $((r - 1)) > $C/backfill
      echo "64 pgs: 57 active+clean, 7 active+remapped+backfilling; 2.1 GiB data, 6.4 GiB used, 594 GiB / 600 GiB avail; 12 MiB/s, 3 objects/s recovering"
    else
      echo "64 pgs: 64 active+clean; 2.1 GiB data, 6.4 GiB used, 594 GiB / 600 GiB avail"
    fi ;;
  "osd safe-to-destroy")
    shift 2
    for o in "$@"; do [ "$(osd_field "\${o#osd.}" 4)" = out ] || { echo "Error EBUSY: $o has data on it" >&2; exit 16; }; done
    [ "$(remaining)" = 0 ] || { echo "Error EBUSY: 7 pgs are backfilling from $*" >&2; exit 16; }
    echo "OSD(s) $* are safe to destroy without reducing data durability." ;;
  "osd purge")
    [ -n "$(osd_field "$3" 1)" ] || { echo "osd.$3 does not exist"; exit 0; }
    [ "$(osd_field "$3" 5)" = down ] || { echo "Error EBUSY: osd.$3 is still up; must be down before removal." >&2; exit 16; }
    awk -v id="$3" '$1 != id' $C/osds > $C/o.new; mv $C/o.new $C/osds; echo "purged osd.$3" ;;
  "osd crush")
    [ "$3" = rm ] || exit 1
    [ -z "$(awk -v h="$4" '$2 == h' $C/osds)" ] || { echo "Error ENOTEMPTY: (39) Directory not empty" >&2; exit 39; }
    grep -vx -- "$4" $C/buckets > $C/b.new || true; mv $C/b.new $C/buckets; echo "removed item name '$4' from crush map" ;;
  *) echo "ceph stand-in: not simulated: $*" >&2; exit 1 ;;
esac`,
  );
}

export interface SimulatedOsd {
  id: number;
  host: string;
  /** the disk as Rook was given it (/dev/disk/by-id/… or /dev/sdX) */
  device: string;
  /** the kernel name it resolves to on the host, e.g. vdb */
  kernelName: string;
}

/**
 * Shell command (run as root on the first control plane) that installs a Rook Ceph cluster for the
 * stand-ins: the OSDs up and in, a CRUSH bucket per host, a running deployment per OSD, the operator
 * at one replica. `backfillPolls`: how many \`ceph pg stat\` polls a re-replication takes, or "never".
 */
export function seedCeph(osds: SimulatedOsd[], backfillPolls: number | "never" = 2): string {
  const lines = (rows: string[]) => rows.map((r) => `${r}\n`).join("");
  const files: Record<string, string> = {
    osds: lines(osds.map((o) => `${o.id} ${o.host} ${o.kernelName} in up`)),
    buckets: lines([...new Set(osds.map((o) => o.host))]),
    deployments: lines(osds.map((o) => `${o.id} ${o.host} 1`)),
    links: lines(osds.map((o) => `${o.device} ${o.kernelName}`)),
    "backfill-polls": `${backfillPolls}\n`,
    "operator-replicas": "1\n",
  };
  return [
    `rm -rf ${CEPH}`,
    `mkdir -p ${CEPH}`,
    ...Object.entries(files).map(([name, text]) => `printf '%s' '${text}' > ${CEPH}/${name}`),
  ].join(" && ");
}

/** Shell command printing the simulated cluster's state files (for assertions). */
export const CEPH_STATE = CEPH;

/** Packages the apt stand-ins install, hold and report (dpkg-query asks the real dpkg about any other). */
const STUB_MANAGED = ["containerd.io", "containerd", "borgbackup"];

/**
 * apt-get, apt-mark and dpkg-query for the packages the host scripts pin: apt-get records an install of
 * `pkg=version` (a file per package holding its version), apt-mark hold/unhold marks it, and dpkg-query
 * reports it as dpkg does, `hold ok installed <version>` once held.
 */
export function packageStubs(): Record<string, string> {
  return {
    "apt-get": recordingStub(
      "apt-get",
      `
case " $* " in *" --download-only "*) exit 0 ;; esac
for a in "$@"; do case "$a" in
  kubeadm=*) v=\${a#kubeadm=}; mkdir -p ${STATE}; echo "\${v%-*}" > ${STATE}/version ;;
  # containerd.io replaces Ubuntu's containerd (Conflicts/Replaces), as apt would.
  containerd.io=*) v=\${a#containerd.io=}; mkdir -p ${PACKAGES}; echo "\${v%\\*}1~ubuntu.24.04~noble" > ${PACKAGES}/containerd.io; rm -f ${PACKAGES}/containerd ;;
  borgbackup=*) mkdir -p ${PACKAGES}; echo "\${a#borgbackup=}" > ${PACKAGES}/borgbackup ;;
esac; done`,
    ),
    "apt-mark": recordingStub(
      "apt-mark",
      `
op=$1; shift
for p in "$@"; do case "$op" in
  hold) mkdir -p ${PACKAGES}; touch "${PACKAGES}/$p.hold" ;;
  unhold) rm -f "${PACKAGES}/$p.hold" ;;
esac; done`,
    ),
    // The packages apt-get installed above, as dpkg-query reports them; any other package as this machine has it.
    "dpkg-query": `#!/bin/bash
pkg=\${*: -1}
case " ${STUB_MANAGED.join(" ")} " in *" $pkg "*)
  [ -f ${PACKAGES}/$pkg ] || { echo "dpkg-query: no packages found matching $pkg" >&2; exit 1; }
  want=install; [ ! -f ${PACKAGES}/$pkg.hold ] || want=hold
  format='\${Status} \${Version}\n'
  for a in "$@"; do case "$a" in -f=*|--showformat=*) format=\${a#*=} ;; esac; done
  format=\${format//'\${Status}'/$want ok installed}
  printf '%b' "\${format//'\${Version}'/$(cat ${PACKAGES}/$pkg)}"
  exit 0 ;;
esac
exec /usr/bin/dpkg-query "$@"
`,
  };
}
