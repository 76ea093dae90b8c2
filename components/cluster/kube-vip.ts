/**
 * kube-vip: the Kubernetes API's virtual IP without a cloud load balancer. A static pod on every control
 * plane (`/etc/kubernetes/manifests/kube-vip.yaml`, written by k8s-kube-vip.sh before kubeadm init or join
 * runs there) holds the address on the leader of a Lease and announces it by gratuitous ARP; when that
 * control plane is lost, another wins the Lease and takes the address. Control-plane VIP only: no Service
 * load balancing (`svc_enable` false).
 *
 * The order (the manifest in place, then `kubeadm init` with the VIP as the control-plane endpoint, then the other
 * control planes' manifests and joins) is upstream's: kube-vip.io/docs/installation/static/.
 *
 * Upstream facts, from kube-vip/kube-vip at tag v1.2.3 (2026-08-10, commit 7ce55ca, the newest release tag):
 * - image: ghcr.io/kube-vip/kube-vip:<tag> (.github/workflows/release.yaml pushes `ghcr.io/kube-vip/kube-vip:${github.ref_name}`);
 *   the tag is pinned, the digest is not (no registry is reachable from here to read it: see the configuration reference);
 * - environment variable names: pkg/kubevip/config_envvar.go (`vip_arp`, `vip_interface`, `vip_leaderelection`,
 *   `vip_leasename`, `vip_leaseduration`, `vip_renewdeadline`, `vip_retryperiod`, `address`, `port`, `vip_nodename`,
 *   `cp_enable`, `cp_namespace`, `svc_enable`, `prometheus_server`);
 * - the pod's shape (host network, NET_ADMIN and NET_RAW, the kubeconfig mounted at /etc/kubernetes/admin.conf, the
 *   host alias `kubernetes` → 127.0.0.1 through which a control plane's kube-vip reaches its own API server before the
 *   VIP exists): pkg/kubevip/config_generator.go (generatePodSpec) and pkg/manager/manager.go (the `kubernetes:<port>`
 *   address used when cp_enable is set);
 * - lease timings 5/3/1 s: the values of upstream's own ARP end-to-end manifest, testing/e2e/kube-vip.yaml.tmpl;
 * - since Kubernetes 1.29 kubeadm's admin.conf has no rights until `kubeadm init` has bound its group, so on the first
 *   control plane kube-vip must read /etc/kubernetes/super-admin.conf during init (kube-vip issue #684; upstream's e2e
 *   does the same, testing/e2e/cluster.go "Handle v1.29+ super-admin.conf for first node") and admin.conf afterwards:
 *   k8s-kube-vip.sh and k8s-kubeadm.sh switch the manifest's hostPath (`KUBE_VIP_KUBECONFIG`).
 *
 * A manifest of its own in /etc/kubernetes/manifests does not trip kubeadm's preflight: `kubeadm init` (and a
 * control plane's join) checks only that its own four manifests are absent, `kubeadm join` no longer checks the
 * folder (kubernetes/kubernetes, cmd/kubeadm/app/preflight/checks.go: InitNodeChecks, JoinNodeChecks).
 */
import * as YAML from "yaml";

/** kube-vip's release image, pinned by tag (see the module comment for the source). */
export const KUBE_VIP_IMAGE = "ghcr.io/kube-vip/kube-vip:v1.2.3";

/** Where the kubelet reads static pods on a kubeadm control plane. */
export const KUBE_VIP_MANIFEST = "/etc/kubernetes/manifests/kube-vip.yaml";

/** The kubeconfig kube-vip reads: admin.conf, except on the first control plane while kubeadm init runs. */
export const KUBE_VIP_KUBECONFIG = {
  admin: "/etc/kubernetes/admin.conf",
  superAdmin: "/etc/kubernetes/super-admin.conf",
} as const;

/** Stands for the interface when the configuration names none: the host step puts the one holding the node's address. */
export const INTERFACE_PLACEHOLDER = "@VIP_INTERFACE@";

/** The Lease the control planes' kube-vip instances compete for (namespace kube-system); upstream's default name. */
export const KUBE_VIP_LEASE = "plndr-cp-lock";

/** Where kube-vip serves its metrics: loopback only (nothing scrapes it; upstream's default is :2112 on every address). */
export const KUBE_VIP_METRICS = "127.0.0.1:2112";

export interface KubeVipSettings {
  /** the virtual IP (IPv4), the cluster's controlPlaneEndpoint */
  address: string;
  /** the API server's port, the same on every control plane and on the VIP */
  port: number;
  /** the interface the VIP is added to; undefined: the one holding the node's private address (found on the host) */
  interface?: string;
  /** image reference; default KUBE_VIP_IMAGE */
  image?: string;
}

/** The static pod manifest, identical on every control plane (the host step fills in the interface when unnamed). */
export function kubeVipManifest(settings: KubeVipSettings): string {
  const env: Array<Record<string, unknown>> = [
    // ARP (layer 2) mode: the leader adds the address and sends gratuitous ARP; no BGP, no routing table.
    { name: "vip_arp", value: "true" },
    { name: "address", value: settings.address },
    { name: "port", value: String(settings.port) },
    { name: "vip_interface", value: settings.interface ?? INTERFACE_PLACEHOLDER },
    // The control plane's VIP only.
    { name: "cp_enable", value: "true" },
    { name: "cp_namespace", value: "kube-system" },
    { name: "svc_enable", value: "false" },
    // One holder at a time, chosen by a Lease through the API (the local API server, see hostAliases).
    { name: "vip_leaderelection", value: "true" },
    { name: "vip_leasename", value: KUBE_VIP_LEASE },
    { name: "vip_leaseduration", value: "5" },
    { name: "vip_renewdeadline", value: "3" },
    { name: "vip_retryperiod", value: "1" },
    { name: "vip_nodename", valueFrom: { fieldRef: { fieldPath: "spec.nodeName" } } },
    { name: "prometheus_server", value: KUBE_VIP_METRICS },
  ];
  return YAML.stringify(
    {
      apiVersion: "v1",
      kind: "Pod",
      metadata: { name: "kube-vip", namespace: "kube-system", labels: { "app.kubernetes.io/name": "kube-vip" } },
      spec: {
        hostNetwork: true,
        // kube-vip on a control plane calls the API as `kubernetes:<port>`: its own API server, reachable before the VIP is.
        hostAliases: [{ ip: "127.0.0.1", hostnames: ["kubernetes"] }],
        priorityClassName: "system-node-critical",
        containers: [
          {
            name: "kube-vip",
            image: settings.image ?? KUBE_VIP_IMAGE,
            imagePullPolicy: "IfNotPresent",
            args: ["manager"],
            env,
            securityContext: { capabilities: { add: ["NET_ADMIN", "NET_RAW"], drop: ["ALL"] } },
            // A guess (upstream sets none): enough to schedule; no limit, so the VIP is never lost to an OOM kill.
            resources: { requests: { cpu: "10m", memory: "32Mi" } },
            volumeMounts: [{ name: "kubeconfig", mountPath: KUBE_VIP_KUBECONFIG.admin, readOnly: true }],
          },
        ],
        volumes: [{ name: "kubeconfig", hostPath: { path: KUBE_VIP_KUBECONFIG.admin, type: "File" } }],
      },
    },
    { lineWidth: 0 },
  );
}
