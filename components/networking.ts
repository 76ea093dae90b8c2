/**
 * Layer 3, networking on the cluster: Calico (pod network), Traefik (the one ingress controller) and,
 * on OpenStack, the cloud controller manager that turns LoadBalancer Services into Octavia load
 * balancers. Without a load balancer, Traefik binds ports 80/443 of the nodes labelled for ingress.
 */
import * as k8s from "@pulumi/kubernetes";
import * as openstack from "@pulumi/openstack";
import * as pulumi from "@pulumi/pulumi";
import { DEFAULT_NETWORK, Provider } from "../lib/config";
import { Host, LONG_CONNECTION_SECONDS } from "../lib/hosts";
import { pinnedRelease } from "../lib/helm";
import { CHARTS } from "../lib/pins";
import { parseCidr } from "../lib/cidr";
import { createNamespace, NAMESPACES } from "../lib/namespaces";

/** Pinned upstream charts (the versions in ../shared/charts). */
/** The cluster's only IngressClass, and its default: every Ingress of every layer uses it. */
export const INGRESS_CLASS = "traefik";
/** Node label that places Traefik on a node when it listens on host ports. */
export const INGRESS_NODE_LABEL = "dare.io/ingress";
/**
 * Puts an Ingress's routes on plain HTTP (port 80). Every other Ingress is served on HTTPS only (the
 * default entry point) and port 80 answers with a redirect; cert-manager's HTTP-01 solver Ingresses
 * carry this annotation (see the ClusterIssuers), because ACME challenges are asked over plain HTTP.
 */
export const PLAIN_HTTP_ANNOTATIONS = { "traefik.ingress.kubernetes.io/router.entrypoints": "web" } as const;
/** OCCM: the Octavia listeners speak PROXY protocol, passing each client's address on to Traefik. */
export const PROXY_PROTOCOL_ANNOTATIONS = { "loadbalancer.openstack.org/proxy-protocol": "true" } as const;
/** The cloud controller's Octavia listener keeps websockets and long uploads open (its default: 50 s). */
export const LONG_CONNECTION_ANNOTATIONS = {
  "loadbalancer.openstack.org/timeout-client-data": String(LONG_CONNECTION_SECONDS * 1000),
  "loadbalancer.openstack.org/timeout-member-data": String(LONG_CONNECTION_SECONDS * 1000),
} as const;
/** Traefik reads a request body for at most this long (v3's default, 60 s, breaks large Harbor pushes). */
const LONG_TRANSPORT = { respondingTimeouts: { readTimeout: `${LONG_CONNECTION_SECONDS}s` } };
/** Labels of the Traefik pods (chart defaults), for NetworkPolicies that admit the ingress controller. */
export const INGRESS_POD_LABELS = { "app.kubernetes.io/name": "traefik" } as const;
/** The chart's selector of its pods (traefik.labelselector: name, and instance `<release>-<namespace>`). */
export const INGRESS_POD_SELECTOR = { ...INGRESS_POD_LABELS, "app.kubernetes.io/instance": `traefik-${NAMESPACES.ingress.name}` } as const;
/**
 * Container ports of Traefik's entry points (the chart's defaults, set explicitly below): the in-cluster
 * Service forwards to them, and NetworkPolicies see them, since they judge the address after Service translation.
 */
export const INGRESS_POD_PORTS = { web: 8000, websecure: 8443 } as const;
/**
 * In-cluster entry to Traefik for the platform's public names (dare:domain, harbor.<domain>), a ClusterIP
 * Service of its own with a fixed address: pods that call https://<domain>/… carry hostAliases to it.
 * The public address does not serve them: behind Octavia with PROXY protocol, OCCM publishes the load
 * balancer's address with ipMode Proxy, so kube-proxy no longer short-circuits it and the packet leaves for
 * the floating IP (where egress policies drop it); on host ports only the ingress nodes answer it.
 * A Service of its own, not the chart's: a ClusterIP is immutable, and replacing the chart's LoadBalancer
 * Service would replace the Octavia load balancer and its floating IP, the address DNS points at.
 */
export const INGRESS_CLUSTER_SERVICE = "traefik-cluster";
/**
 * Index of that Service's address in dare:network.serviceCidr. kubeadm takes index 1 (the kubernetes
 * Service) and 10 (kube-dns); the API server hands out addresses from the low band of the range (its first
 * min(max(16, size/16), 256) addresses) only when the rest is used up, so a fixed address there is not
 * taken by a Service created first. 12 is in that band for every range of 16 addresses or more.
 */
export const INGRESS_CLUSTER_IP_INDEX = 12;
/** Service addresses kubeadm fixes (kubernetes, kube-dns) and the network address: never ours. */
const KUBEADM_SERVICE_INDEXES = [0, 1, 10];

/** The ingress controller's fixed in-cluster address in a service range (IPv4). */
export function ingressClusterIp(serviceCidr: string): string {
  const cidr = parseCidr(serviceCidr);
  if (!cidr || cidr.version !== 4) throw new Error(`service range ${serviceCidr}: must be an IPv4 CIDR`);
  const size = 2 ** (32 - cidr.prefix);
  const staticBand = Math.min(Math.max(16, size / 16), 256);
  const index = INGRESS_CLUSTER_IP_INDEX;
  if (KUBEADM_SERVICE_INDEXES.includes(index) || index >= staticBand || index > size - 2) {
    throw new Error(
      `service range ${serviceCidr} is too small for the ingress controller's fixed address (index ${index}): use /28 or larger`,
    );
  }
  const address = cidr.network + BigInt(index);
  return [24n, 16n, 8n, 0n].map((shift) => String((address >> shift) & 255n)).join(".");
}

/**
 * The platform's public names that pods inside the cluster call, all answered by Traefik: dare:domain
 * (Keycloak, Grafana, the DARE services, JupyterHub) and, with Harbor, harbor.<domain> (components/security.ts).
 */
export function platformHostNames(config: { domain: string; harbor: { enabled: boolean } }): string[] {
  return [config.domain, ...(config.harbor.enabled ? [`harbor.${config.domain}`] : [])];
}

/** hostAliases that make a pod resolve the platform's public names to the ingress controller's ClusterIP. */
export interface PublicNames {
  /** the ClusterIP of INGRESS_CLUSTER_SERVICE (Networking.clusterIp) */
  address: string;
  /** platformHostNames(config) */
  hostnames: string[];
}
/**
 * Traefik's Service inside the cluster (the chart names it after the release, "traefik"; port 443 in both
 * load-balancer and host-port modes): the availability probes reach it here by its Service name. Pods that
 * call the platform's public names reach Traefik at INGRESS_CLUSTER_SERVICE's fixed address instead.
 */
export const INGRESS_SERVICE_URL = "https://traefik.traefik.svc";

export interface NetworkingArgs {
  /** Helm repository every chart of this layer is pulled from instead of its upstream one (dare:chartMirror). */
  chartMirror?: string;
  /** Provider of the cluster (KubernetesCluster.provider). */
  provider: k8s.Provider;
  /** `openstack` also installs the cloud controller manager; `existing` has no load balancer. */
  cloud: Provider;
  /** Prefix of cloud resource names (the load balancers OCCM creates carry it). */
  clusterName: string;
  /** Every host, from the IaaS layer. */
  hosts: pulumi.Input<Host[]>;
  /** Calico's pod range: the same range kubeadm's podSubnet uses (dare:network.podCidr). */
  podCidr: string;
  /**
   * kubeadm's serviceSubnet (dare:network.serviceCidr): Traefik's in-cluster Service gets a fixed address in
   * it. Default: the configuration's default range (DEFAULT_NETWORK.serviceCidr); pass the stack's own.
   */
  serviceCidr?: string;
  /** The nodes' subnet: Calico takes each node's address from it. */
  nodeCidr: string;
  /** Traefik behind an Octavia load balancer (openstack only); false: host ports 80/443 on `ingressNodes`. */
  loadBalancer: boolean;
  /** Nodes (by name) labelled for ingress and serving ports 80/443 when there is no load balancer. */
  ingressNodes: string[];
  /** OpenStack external network the load balancers' floating IPs come from (openstack only). */
  externalNetwork?: string;
}

/** Calico's Installation: VXLAN between nodes (UDP 4789 is open between cluster members), no BGP. */
export function calicoInstallation(podCidr: string): Record<string, unknown> {
  return {
    apiVersion: "operator.tigera.io/v1",
    kind: "Installation",
    metadata: { name: "default" },
    spec: {
      calicoNetwork: {
        // VXLAN carries pod traffic without BGP peering: nothing but UDP 4789 crosses the security groups.
        bgp: "Disabled",
        ipPools: [
          {
            name: "default-ipv4-ippool",
            cidr: podCidr,
            encapsulation: "VXLAN",
            natOutgoing: "Enabled",
            nodeSelector: "all()",
          },
        ],
        // The address the kubelet registered (kubeadm's node-ip, the host's private address): right for
        // existing hosts outside dare:network.cidr too, where a subnet filter found none and calico-node exited.
        nodeAddressAutodetectionV4: { kubernetes: "NodeInternalIP" },
      },
      // Calico's own CSI driver is for its enterprise features; Ceph CSI serves the volumes here.
      kubeletVolumePluginPath: "None",
    },
  };
}

/** The cloud controller manager's cloud.conf (INI): application credential, Octavia, security groups. */
/**
 * Octavia's rules under Keystone's default roles (octavia/policies/keystone_default_roles.py) let the project's
 * `member` role create and change the project's load balancers, and Neutron's give the project's members its
 * floating IPs, ports and security groups (e.g. neutron/conf/policies/floatingip.py: PROJECT_MEMBER), and
 * readers (implied by member) the servers OCCM looks up; `load-balancer_member` is Octavia's own
 * role (octavia/policies/advanced_rbac.py), which clouds still on those rules require, kept when the deployer
 * holds it. No `admin`, `reader` (`member` implies it) or any other role the deployer holds.
 */
export const CLOUD_CONTROLLER_ROLES = ["member", "load-balancer_member"];

/** The roles of CLOUD_CONTROLLER_ROLES the deployer holds (a credential can only carry those); `member` is required. */
export function cloudControllerRoles(held: string[], name: string): string[] {
  if (!held.includes("member")) {
    throw new Error(
      `${name}: the OpenStack user running pulumi has no "member" role in the project (roles: ${held.join(", ") || "none"}); ` +
        `the cloud controller's application credential needs it to manage load balancers, ports and floating IPs`,
    );
  }
  return CLOUD_CONTROLLER_ROLES.filter((role) => held.includes(role));
}

export function cloudConfig(c: {
  authUrl: string;
  region: string;
  credentialId: string;
  credentialSecret: string;
  floatingNetworkId: string;
}): string {
  return [
    "[Global]",
    `auth-url=${c.authUrl}`,
    `region=${c.region}`,
    `application-credential-id=${c.credentialId}`,
    `application-credential-secret=${c.credentialSecret}`,
    "",
    "[LoadBalancer]",
    `floating-network-id=${c.floatingNetworkId}`,
    // Octavia members are the nodes' NodePorts: OCCM opens exactly those ports from the load balancer.
    "manage-security-groups=true",
    "create-monitor=true",
    "",
  ].join("\n");
}

export class Networking extends pulumi.ComponentResource {
  /** The IngressClass every Ingress uses (the cluster default). */
  public readonly ingressClassName: string;
  /** Addresses to point the DNS names at (A records): the load balancer's, or the ingress nodes'. */
  public readonly ingressAddresses: pulumi.Output<string[]>;
  /**
   * Traefik's fixed address inside the cluster (Service INGRESS_CLUSTER_SERVICE, ports 443 and 80, in both
   * modes): pods resolve the platform's public names to it with hostAliases (DareServicesArgs.publicNames).
   */
  public readonly clusterIp: string;

  constructor(name: string, args: NetworkingArgs, opts?: pulumi.ComponentResourceOptions) {
    if (args.loadBalancer && args.cloud !== "openstack") {
      throw new Error(
        `${name}: an ingress load balancer needs the OpenStack cloud controller manager (cloud "openstack"), not "${args.cloud}"`,
      );
    }
    if (args.cloud === "openstack" && !args.externalNetwork) {
      throw new Error(`${name}: cloud "openstack" needs externalNetwork for the load balancers' floating IPs`);
    }
    if (!args.loadBalancer && args.ingressNodes.length === 0) {
      throw new Error(`${name}: without a load balancer Traefik needs at least one ingress node`);
    }
    // Before anything is created: a range too small for the fixed address stops here.
    const clusterIp = ingressClusterIp(args.serviceCidr ?? DEFAULT_NETWORK.serviceCidr);
    super("dare:platform:Networking", name, {}, opts);
    this.clusterIp = clusterIp;
    const k8sOpts = { provider: args.provider, parent: this };

    // Calico first: no pod starts without a pod network.
    const calicoNs = createNamespace("tigeraOperator", k8sOpts);
    const calicoOperator = pinnedRelease(
      `${name}-calico`,
      {
        release: "calico",
        chart: CHARTS.calico,
        mirror: args.chartMirror,
        namespace: calicoNs.metadata.name,
        values: {
          // The Installation is declared below as a typed custom resource, validated against its CRD.
          installation: { enabled: false },
          // Flow-log UI and its aggregator: not used, and they cost memory on every node.
          goldmane: { enabled: false },
          whisker: { enabled: false },
        },
      },
      k8sOpts,
    );
    const installation = new k8s.apiextensions.CustomResource(
      `${name}-calico-installation`,
      calicoInstallation(args.podCidr) as k8s.apiextensions.CustomResourceArgs,
      { ...k8sOpts, dependsOn: [calicoOperator] },
    );

    let cloudController: k8s.helm.v3.Release | undefined;
    if (args.cloud === "openstack") cloudController = this.cloudController(name, args, k8sOpts, installation);

    this.ingressClassName = INGRESS_CLASS;
    const hostPorts = !args.loadBalancer;
    // PSA baseline forbids host ports: only the host-port mode needs a privileged namespace.
    const ingressNs = createNamespace("ingress", k8sOpts, hostPorts ? "privileged" : undefined);
    const labels = hostPorts
      ? args.ingressNodes.map(
          (node) =>
            new k8s.core.v1.NodePatch(
              `${name}-ingress-label-${node}`,
              {
                metadata: { name: node, labels: { [INGRESS_NODE_LABEL]: "true" } },
              },
              k8sOpts,
            ),
        )
      : [];
    const workers = pulumi.output(args.hosts).apply((hosts) => hosts.filter((h) => h.role === "worker").length);
    // Behind Octavia, Traefik would see the balancer's or a node's address, and every ipAllowList (the
    // Keycloak console's) would judge that: the listeners add a PROXY header with the client's address.
    // Traefik believes a header only from the amphorae: OCCM makes the pool members in the nodes' subnet
    // (member-subnet-id defaults to the VIP's subnet, found from the nodes' network; "the load balancer gets
    // another network port on this subnet": cloud-provider-openstack, using-openstack-cloud-controller-manager.md),
    // so they connect from an address of the node cidr. externalTrafficPolicy Local keeps that address: kube-proxy
    // then hands node-port traffic only to a Traefik pod on the same node, without the SNAT that would make the
    // sender a node's VXLAN tunnel address in the pod range (create-monitor=true, which Local needs, is set in
    // cloudConfig). So no pod can forge a client address: the pod range is not trusted. A connection without a
    // header is served as it is (go-proxyproto: policy USE, or IGNORE for untrusted senders): that is how pods
    // reach Traefik through its ClusterIP Service below.
    const proxyProtocol = hostPorts ? {} : { proxyProtocol: { trustedIPs: [args.nodeCidr] } };
    const traefik = pinnedRelease(
      `${name}-traefik`,
      {
        release: "traefik",
        chart: CHARTS.traefik,
        mirror: args.chartMirror,
        namespace: ingressNs.metadata.name,
        // Pods wait for Calico, and for OCCM to initialise the nodes: give both time.
        timeout: 900,
        values: {
          ingressClass: { enabled: true, isDefaultClass: true, name: INGRESS_CLASS },
          ports: {
            web: {
              port: INGRESS_POD_PORTS.web,
              ...(hostPorts ? { hostPort: 80 } : {}),
              ...proxyProtocol,
              // Priority 1: the ACME solvers' routes on port 80 win, so HTTP-01 challenges are not redirected
              // (cert-manager's self-check and Let's Encrypt both ask over plain HTTP).
              http: { redirections: { entryPoint: { to: "websecure", scheme: "https", permanent: true, priority: 1 } } },
            },
            // Routes of an Ingress without an entry-point annotation: HTTPS only, whichever layer wrote it.
            websecure: {
              port: INGRESS_POD_PORTS.websecure,
              asDefault: true,
              ...(hostPorts ? { hostPort: 443 } : {}),
              ...proxyProtocol,
              transport: LONG_TRANSPORT,
            },
          },
          resources: { requests: { cpu: "100m", memory: "128Mi" }, limits: { memory: "512Mi" } },
          ...(hostPorts
            ? {
                deployment: { kind: "DaemonSet" },
                nodeSelector: { [INGRESS_NODE_LABEL]: "true" },
                // A second pod cannot bind the same host ports: replace pods one at a time, never surge.
                updateStrategy: { type: "RollingUpdate", rollingUpdate: { maxUnavailable: 1, maxSurge: 0 } },
                service: { spec: { type: "ClusterIP" } },
                // The Service's ClusterIP is no address for clients: leave Ingress status empty.
                providers: { kubernetesIngress: { publishedService: { enabled: false } } },
              }
            : {
                deployment: { kind: "Deployment", replicas: workers.apply((n) => Math.max(1, Math.min(2, n))) },
                // Two pods on two nodes, and a node drain (upgrade, scale-down) never takes both.
                topologySpreadConstraints: [
                  {
                    labelSelector: { matchLabels: { ...INGRESS_POD_LABELS } },
                    maxSkew: 1,
                    topologyKey: "kubernetes.io/hostname",
                    whenUnsatisfiable: "ScheduleAnyway",
                  },
                ],
                podDisruptionBudget: workers.apply((n) => (n >= 2 ? { enabled: true, maxUnavailable: 1 } : { enabled: false })),
                service: {
                  spec: { type: "LoadBalancer", externalTrafficPolicy: "Local" },
                  annotations: { ...PROXY_PROTOCOL_ANNOTATIONS, ...LONG_CONNECTION_ANNOTATIONS },
                },
              }),
        },
      },
      { ...k8sOpts, dependsOn: [installation, ...labels, ...(cloudController ? [cloudController] : [])] },
    );

    // The public names from inside the cluster (see INGRESS_CLUSTER_SERVICE): a plain ClusterIP Service,
    // which kube-proxy translates on the caller's node in both modes. Created after the release: Pulumi
    // waits for a Service to select pods.
    new k8s.core.v1.Service(
      `${name}-traefik-cluster`,
      {
        metadata: {
          name: INGRESS_CLUSTER_SERVICE,
          namespace: ingressNs.metadata.name,
          // Not the pods' name label: nothing that selects Traefik's own Service should pick this one up.
          labels: { "app.kubernetes.io/part-of": "dare-platform" },
        },
        spec: {
          type: "ClusterIP",
          clusterIP: clusterIp,
          selector: { ...INGRESS_POD_SELECTOR },
          ports: [
            { name: "websecure", protocol: "TCP", port: 443, targetPort: INGRESS_POD_PORTS.websecure },
            { name: "web", protocol: "TCP", port: 80, targetPort: INGRESS_POD_PORTS.web },
          ],
        },
      },
      { ...k8sOpts, dependsOn: [traefik] },
    );

    if (hostPorts) {
      const names = new Set(args.ingressNodes);
      this.ingressAddresses = pulumi
        .output(args.hosts)
        .apply((hosts) => hosts.filter((h) => names.has(h.name)).map((h) => h.publicAddress ?? h.address));
    } else {
      // Read back once the release exists: the id is unknown in a first preview, so nothing is read too early.
      const service = k8s.core.v1.Service.get(
        `${name}-traefik-service`,
        pulumi.interpolate`${traefik.status.namespace}/${traefik.status.name}`,
        { ...k8sOpts, dependsOn: [traefik] },
      );
      this.ingressAddresses = service.status.apply((s) =>
        (s?.loadBalancer?.ingress ?? []).map((i) => i.ip ?? i.hostname).filter((a): a is string => !!a),
      );
    }

    this.registerOutputs({ ingressClassName: this.ingressClassName, ingressAddresses: this.ingressAddresses, clusterIp: this.clusterIp });
  }

  /** OCCM with an application credential of its own: never the operator's password. */
  private cloudController(
    name: string,
    args: NetworkingArgs,
    k8sOpts: pulumi.CustomResourceOptions,
    installation: pulumi.Resource,
  ): k8s.helm.v3.Release {
    const parent = { parent: this };
    const scope = openstack.identity.getAuthScopeOutput({ name: `${name}-scope` }, parent);
    const credential = new openstack.identity.ApplicationCredential(
      `${name}-cloud-controller`,
      {
        name: `${args.clusterName}-cloud-controller`,
        description: `openstack-cloud-controller-manager of ${args.clusterName}: Octavia load balancers for LoadBalancer Services`,
        // Without `roles` Keystone gives the credential every role the deployer holds (admin included).
        roles: scope.roles.apply((held) =>
          cloudControllerRoles(
            held.map((r) => r.roleName),
            name,
          ),
        ),
        // Not `unrestricted`: the credential cannot make other credentials or trusts. No access rules: a service
        // whose keystonemiddleware lacks `[keystone_authtoken] service_type` refuses every token carrying them
        // (keystonemiddleware auth_token validate_allowed_request), which would silently break LoadBalancer
        // Services on such clouds (docs/operations.md, "The cloud controller's credential").
        unrestricted: false,
      },
      {
        ...parent,
        // Keystone refuses a second application credential of the same name for a user.
        deleteBeforeReplace: true,
      },
    );
    const external = openstack.networking.getNetworkOutput({ name: args.externalNetwork! }, parent);
    const authUrl = scope.serviceCatalogs.apply((catalog) => {
      const identity = catalog.find((s) => s.type === "identity")?.endpoints.find((e) => e.interface === "public");
      if (!identity)
        throw new Error(`${name}: the OpenStack service catalog has no public identity endpoint for the cloud controller manager`);
      return identity.url;
    });
    const conf = pulumi.secret(
      pulumi
        .all([authUrl, scope.region, credential.id, credential.secret, external.id])
        .apply(([url, region, id, secret, networkId]) =>
          cloudConfig({ authUrl: url, region, credentialId: id, credentialSecret: secret, floatingNetworkId: networkId }),
        ),
    );

    const ns = createNamespace("cloudController", k8sOpts);
    const secret = new k8s.core.v1.Secret(
      `${name}-cloud-config`,
      {
        metadata: { name: "cloud-config", namespace: ns.metadata.name },
        type: "Opaque",
        stringData: { "cloud.conf": conf },
      },
      k8sOpts,
    );
    return pinnedRelease(
      `${name}-cloud-controller`,
      {
        release: "openstack-cloud-controller-manager",
        chart: CHARTS.cloudController,
        mirror: args.chartMirror,
        namespace: ns.metadata.name,
        values: {
          // The Secret above holds cloud.conf: credentials stay out of the Helm values.
          secret: { enabled: true, create: false, name: "cloud-config" },
          // OCCM reads cloud.conf at start: a new credential (the old one is deleted first) restarts its pods.
          // The value is the credential's id, not its secret.
          podAnnotations: { "dare/cloud-config": credential.id },
          cluster: { name: args.clusterName },
          // No "route" controller: Calico's VXLAN carries pod traffic, Neutron routes are not needed.
          enabledControllers: ["cloud-node", "cloud-node-lifecycle", "service"],
        },
      },
      { ...k8sOpts, dependsOn: [secret, installation] },
    );
  }
}
