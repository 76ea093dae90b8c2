import * as k8s from "@pulumi/kubernetes";
import { DEFAULT_NETWORK, EXAMPLE_HOST_KEY } from "../../lib/config";
import { Host } from "../../lib/hosts";
import { firewallRules, ingressNodeNames } from "../../lib/host-plan";
import { NAMESPACES } from "../../lib/namespaces";
import { CHARTS } from "../../lib/pins";
import {
  cloudControllerRoles,
  INGRESS_CLASS,
  INGRESS_CLUSTER_SERVICE,
  INGRESS_NODE_LABEL,
  INGRESS_POD_SELECTOR,
  ingressClusterIp,
  Networking,
  NetworkingArgs,
  platformHostNames,
} from "../../components/networking";
import { ipIn } from "../support/netpol";
import { RecordedResource, SECRET_SIG, SPECIAL_SIG_KEY } from "../../tools/mocks";
import { validateHelmValues } from "../../tools/validate/helm-values";
import { ofType, redacted, runMocked, valueOf } from "../support/mocked";

const host = (name: string, role: Host["role"], over: Partial<Host> = {}): Host => ({
  name,
  role,
  pool: role === "worker" ? "workers" : "control-plane",
  address: `10.10.0.${name.length}`,
  privateAddress: `10.10.0.${name.length}`,
  sshUser: "ubuntu",
  port: 22,
  disks: [],
  viaBastion: false,
  hostKey: EXAMPLE_HOST_KEY,
  ...over,
});
const HOSTS: Host[] = [
  host("cp-0", "control-plane", { publicAddress: "203.0.113.10" }),
  host("w-0", "worker", { privateAddress: "10.10.0.20", publicAddress: "203.0.113.20" }),
  host("w-1", "worker", { privateAddress: "10.10.0.21", publicAddress: "203.0.113.21" }),
  host("w-2", "worker", { privateAddress: "10.10.0.22" }),
];

const args = (over: Partial<NetworkingArgs> = {}): NetworkingArgs => ({
  provider: new k8s.Provider("test", { kubeconfig: "{}" }),
  cloud: "openstack",
  clusterName: "dare-test",
  hosts: HOSTS,
  podCidr: "10.244.0.0/16",
  serviceCidr: "10.96.0.0/12",
  nodeCidr: "10.10.0.0/24",
  loadBalancer: true,
  ingressNodes: ["w-0", "w-1"],
  externalNetwork: "public",
  ...over,
});

async function build(a: () => NetworkingArgs) {
  let networking: Networking | undefined;
  const resources = await runMocked(() => {
    networking = new Networking("net", a());
  });
  return { resources, networking: networking! };
}

const release = (resources: RecordedResource[], chart: string) =>
  ofType(resources, "kubernetes:helm.sh/v3:Release")
    .map((r) => redacted(r))
    .find((r) => r.chart === chart);
const namespace = (resources: RecordedResource[], name: string) =>
  ofType(resources, "kubernetes:core/v1:Namespace")
    .map((r) => redacted(r))
    .find((n) => n.metadata.name === name);

/** The value behind Pulumi's secret marker, and whether there was one. */
function unwrap(value: any): { secret: boolean; value: any } {
  if (value && value[SPECIAL_SIG_KEY] === SECRET_SIG) return { secret: true, value: value.value };
  return { secret: false, value };
}

describe("Calico", () => {
  let resources: RecordedResource[];
  beforeAll(async () => {
    ({ resources } = await build(() => args({ podCidr: "10.200.0.0/16", nodeCidr: "10.20.0.0/22" })));
  });

  it("pins the tigera-operator chart and leaves the Installation to a typed custom resource", () => {
    const calico = release(resources, "tigera-operator");
    expect(calico.version).toBe("v3.32.1");
    expect(calico.values.installation.enabled).toBe(false);
    expect(validateHelmValues(calico)).toEqual([]);
  });

  it("uses the configured pod range with VXLAN, the encapsulation the security groups let through", () => {
    const [installation] = ofType(resources, "kubernetes:operator.tigera.io/v1:Installation").map((r) => redacted(r));
    const pools = installation.spec.calicoNetwork.ipPools;
    expect(pools).toHaveLength(1);
    expect(pools[0].cidr).toBe("10.200.0.0/16");
    expect(pools[0].encapsulation).toBe("VXLAN");
    // The kubelet's registered address, not a subnet filter: existing hosts may sit outside dare:network.cidr.
    expect(installation.spec.calicoNetwork.nodeAddressAutodetectionV4).toEqual({ kubernetes: "NodeInternalIP" });
    const vxlan = firewallRules({ adminCidrs: ["192.0.2.0/24"], network: DEFAULT_NETWORK }, false).filter(
      (r) => r.protocol === "udp" && r.ports[0] <= 4789 && 4789 <= r.ports[1],
    );
    expect(vxlan.length).toBeGreaterThan(0);
    expect(vxlan.every((r) => "group" in r.from)).toBe(true);
  });
});

describe("Traefik behind an Octavia load balancer", () => {
  let resources: RecordedResource[];
  beforeAll(async () => {
    ({ resources } = await build(() => args()));
  });

  it("is the one default IngressClass, exposed by a LoadBalancer Service, never a NodePort", () => {
    const traefik = release(resources, "traefik");
    expect(traefik.version).toBe(CHARTS.traefik.version);
    expect(traefik.values.ingressClass).toEqual({ enabled: true, isDefaultClass: true, name: INGRESS_CLASS });
    expect(traefik.values.service.spec.type).toBe("LoadBalancer");
    expect(traefik.values.deployment.kind).toBe("Deployment");
    expect(traefik.values.deployment.replicas).toBe(2);
    expect(traefik.values.podDisruptionBudget).toEqual({ enabled: true, maxUnavailable: 1 });
    // Ingresses are HTTPS-only by default; the redirect on port 80 loses against cert-manager's solver routes.
    expect(traefik.values.ports.websecure.asDefault).toBe(true);
    expect(traefik.values.ports.web.asDefault).toBeUndefined();
    expect(traefik.values.ports.web.http.redirections.entryPoint).toMatchObject({ to: "websecure", priority: 1 });
    expect(JSON.stringify(traefik.values)).not.toContain("hostPort");
    expect(validateHelmValues(traefik)).toEqual([]);
    expect(ofType(resources, "kubernetes:core/v1:NodePatch")).toHaveLength(0);
  });

  it("learns each client's address from the load balancer's PROXY header, believed only from the amphorae's subnet", () => {
    const traefik = release(resources, "traefik");
    expect(traefik.values.service.annotations["loadbalancer.openstack.org/proxy-protocol"]).toBe("true");
    // No SNAT on the way in: the sender Traefik sees is the amphora, in the member subnet (the nodes').
    expect(traefik.values.service.spec.externalTrafficPolicy).toBe("Local");
    for (const entryPoint of ["web", "websecure"]) {
      const trusted: string[] = traefik.values.ports[entryPoint].proxyProtocol.trustedIPs;
      expect(trusted).toEqual([args().nodeCidr]);
      // A pod (any address of the pod range) is not believed: it could claim an admin address.
      expect(trusted.some((cidr) => ipIn("10.244.3.4", cidr))).toBe(false);
      expect(traefik.values.ports[entryPoint].proxyProtocol.insecure).toBeUndefined();
      expect(trusted).not.toContain("0.0.0.0/0");
    }
    expect(validateHelmValues(traefik)).toEqual([]);
  });

  it("runs Traefik's namespace at the table's Pod Security level", () => {
    expect(namespace(resources, NAMESPACES.ingress.name).metadata.labels["pod-security.kubernetes.io/enforce"]).toBe(
      NAMESPACES.ingress.podSecurity,
    );
  });

  it("gives the cloud controller an application credential of its own, in a Secret, never a password", () => {
    const credentials = ofType(resources, "openstack:identity/applicationCredential:ApplicationCredential");
    expect(credentials).toHaveLength(1);
    const [secret] = ofType(resources, "kubernetes:core/v1:Secret").map((r) => r.inputs as any);
    expect(secret.metadata.namespace).toBe(NAMESPACES.cloudController.name);
    const stringData = unwrap(secret.stringData);
    const conf = unwrap(stringData.value["cloud.conf"]);
    expect(stringData.secret || conf.secret).toBe(true);
    const text: string = conf.value;
    expect(text).toMatch(/^application-credential-id=\S+$/m);
    expect(text).toMatch(/^application-credential-secret=\S+$/m);
    expect(text).toMatch(/^auth-url=https:\/\/keystone\.example\.org:5000\/v3$/m);
    expect(text).toMatch(/^floating-network-id=public-network-id$/m);
    expect(text).toMatch(/^manage-security-groups=true$/m);
    expect(text).not.toMatch(/^(username|password|user-id)=/m);
  });

  it("gives that credential only the roles OCCM needs of those the deployer holds, never admin, and restarts OCCM when it changes", () => {
    const [credential] = ofType(resources, "openstack:identity/applicationCredential:ApplicationCredential");
    const inputs = redacted(credential);
    // The mocked deployer holds admin, member, reader and load-balancer_member.
    expect(inputs.roles).toEqual(["member", "load-balancer_member"]);
    expect(inputs.unrestricted).toBe(false);
    expect(inputs.accessRules).toBeUndefined();
    expect(cloudControllerRoles(["member", "reader"], "n")).toEqual(["member"]);
    expect(() => cloudControllerRoles(["reader", "load-balancer_member"], "n")).toThrow(
      /no "member" role in the project \(roles: reader, load-balancer_member\)/,
    );
    // A replaced credential (a new id, the old one deleted first) rolls OCCM's pods onto the new cloud.conf.
    const occm = release(resources, CHARTS.cloudController.chart);
    expect(Object.keys(occm.values.podAnnotations)).toEqual(["dare/cloud-config"]);
    expect(occm.values.podAnnotations["dare/cloud-config"]).toMatch(/\S/);
    const occmRelease = ofType(resources, "kubernetes:helm.sh/v3:Release").find(
      (r) => (r.inputs as any).chart === CHARTS.cloudController.chart,
    )!;
    expect(occmRelease.dependencies).toContain(credential.urn);
    expect(validateHelmValues(occm)).toEqual([]);
  });

  it("installs OCCM from the pinned chart reading that Secret, without the route controller", () => {
    const occm = release(resources, CHARTS.cloudController.chart);
    expect(occm.version).toBe("2.36.0");
    expect(occm.values.secret).toEqual({ enabled: true, create: false, name: "cloud-config" });
    expect(occm.values.enabledControllers).not.toContain("route");
    expect(JSON.stringify(occm.values)).not.toMatch(/password|credential/i);
    expect(validateHelmValues(occm)).toEqual([]);
  });
});

describe("Traefik on host ports (no load balancer)", () => {
  let resources: RecordedResource[];
  let addresses: string[];
  beforeAll(async () => {
    let networking: Networking;
    resources = await runMocked(async () => {
      networking = new Networking("net", args({ cloud: "existing", loadBalancer: false, externalNetwork: undefined }));
      addresses = await valueOf(networking.ingressAddresses);
    });
  });

  it("runs a DaemonSet binding 80 and 443 on the labelled nodes, and only those are labelled", () => {
    const traefik = release(resources, "traefik");
    expect(traefik.values.deployment.kind).toBe("DaemonSet");
    expect(traefik.values.ports.web.hostPort).toBe(80);
    expect(traefik.values.ports.websecure.hostPort).toBe(443);
    expect(traefik.values.nodeSelector).toEqual({ [INGRESS_NODE_LABEL]: "true" });
    expect(traefik.values.service.spec.type).toBe("ClusterIP");
    expect(traefik.values.updateStrategy.rollingUpdate.maxSurge).toBe(0);
    // Clients connect straight to the nodes: no PROXY header to expect, none to believe.
    expect(JSON.stringify(traefik.values)).not.toMatch(/proxyProtocol|proxy-protocol/);
    expect(validateHelmValues(traefik)).toEqual([]);
    const labelled = ofType(resources, "kubernetes:core/v1:NodePatch").map((r) => redacted(r));
    expect(labelled.map((n) => n.metadata.name).sort()).toEqual(["w-0", "w-1"]);
    expect(labelled.every((n) => n.metadata.labels[INGRESS_NODE_LABEL] === "true")).toBe(true);
  });

  it("says where DNS points: the ingress nodes' public addresses", () => {
    expect(addresses.sort()).toEqual(["203.0.113.20", "203.0.113.21"]);
  });

  it("makes the ingress namespace privileged (PSA baseline forbids host ports) and creates no cloud resources", () => {
    expect(namespace(resources, NAMESPACES.ingress.name).metadata.labels["pod-security.kubernetes.io/enforce"]).toBe("privileged");
    expect(resources.filter((r) => r.type.startsWith("openstack:"))).toHaveLength(0);
    expect(release(resources, CHARTS.cloudController.chart)).toBeUndefined();
  });
});

describe("argument checks", () => {
  it.each([
    ["a load balancer without OpenStack", { cloud: "existing" as const, loadBalancer: true }, /needs the OpenStack cloud controller/],
    ["host ports without ingress nodes", { loadBalancer: false, ingressNodes: [] }, /at least one ingress node/],
    ["OpenStack without an external network", { externalNetwork: undefined }, /externalNetwork/],
  ])("rejects %s before creating anything", async (_, over, message) => {
    let error: unknown;
    const resources = await runMocked(() => {
      try {
        new Networking("net", args(over));
      } catch (e) {
        error = e;
      }
    });
    expect(String(error)).toMatch(message);
    expect(resources.filter((r) => r.type.startsWith("dare:") || r.type.startsWith("kubernetes:helm"))).toHaveLength(0);
  });
});

describe("ingress nodes", () => {
  const base = { clusterName: "dare-t", hosts: [] };
  it("are the OpenStack workers with floating IPs", () => {
    const nodes = {
      controlPlane: { count: 1, flavor: "m" },
      pools: [
        { name: "workers", count: 2, flavor: "m", disks: { count: 1, sizeGb: 10 }, publicIp: false },
        { name: "edge", count: 2, flavor: "m", disks: { count: 0, sizeGb: 10 }, publicIp: true },
      ],
    };
    expect(ingressNodeNames({ ...base, provider: "openstack", nodes })).toEqual(["dare-t-edge-0", "dare-t-edge-1"]);
  });

  it("are every worker when existing hosts have no separate public address", () => {
    const h = (name: string, role: string) => ({
      name,
      role,
      address: "10.0.0.1",
      privateAddress: "10.0.0.1",
      user: "u",
      port: 22,
      disks: [],
      hostKey: EXAMPLE_HOST_KEY,
    });
    const hosts = [h("cp", "control-plane"), h("a", "workers"), h("b", "workers")];
    expect(
      ingressNodeNames({ ...base, provider: "existing", nodes: { controlPlane: { count: 1, flavor: "m" }, pools: [] }, hosts }),
    ).toEqual(["a", "b"]);
  });
});

describe("Traefik inside the cluster (the platform's public names from pods)", () => {
  it("has a fixed address in the service range, clear of kubeadm's and in the API server's static band", () => {
    expect(ingressClusterIp("10.96.0.0/12")).toBe("10.96.0.12");
    expect(ingressClusterIp("172.20.128.0/17")).toBe("172.20.128.12");
    expect(ingressClusterIp("10.0.0.16/28")).toBe("10.0.0.28");
    for (const range of ["10.96.0.0/12", "192.168.7.0/24", "10.0.0.16/28"]) {
      const ip = ingressClusterIp(range);
      expect(ipIn(ip, range)).toBe(true);
      const [base] = range.split("/");
      const index = Number(ip.split(".")[3]) - Number(base.split(".")[3]);
      // kubeadm: the first address is the kubernetes Service, the tenth kube-dns.
      expect([0, 1, 10]).not.toContain(index);
      // The allocator's static band (KEP-3070): min(max(16, size/16), 256) lowest addresses.
      expect(index).toBeLessThan(16);
    }
    expect(() => ingressClusterIp("10.0.0.0/29")).toThrow(/too small/);
    expect(() => ingressClusterIp("fd00::/108")).toThrow(/IPv4/);
  });

  it("names dare:domain, and harbor.<domain> only with Harbor", () => {
    expect(platformHostNames({ domain: "dare.example.org", harbor: { enabled: false } })).toEqual(["dare.example.org"]);
    expect(platformHostNames({ domain: "dare.example.org", harbor: { enabled: true } })).toEqual([
      "dare.example.org",
      "harbor.dare.example.org",
    ]);
  });

  it.each([
    ["behind an Octavia load balancer", {}],
    ["on host ports", { cloud: "existing" as const, loadBalancer: false, externalNetwork: undefined }],
  ])("%s: a ClusterIP Service of its own at that address, on the pods' HTTPS and HTTP entry points", async (_mode, over) => {
    const { resources, networking } = await build(() => args({ serviceCidr: "10.100.0.0/16", ...over }));
    expect(networking.clusterIp).toBe("10.100.0.12");
    const services = ofType(resources, "kubernetes:core/v1:Service").map((r) => redacted(r));
    const service = services.find((s) => s.metadata.name === INGRESS_CLUSTER_SERVICE);
    expect(service).toBeDefined();
    expect(service.metadata.namespace).toBe(NAMESPACES.ingress.name);
    expect(service.spec.type).toBe("ClusterIP");
    expect(service.spec.clusterIP).toBe(networking.clusterIp);
    const traefik = release(resources, "traefik");
    // The chart's own selector (traefik.labelselector: name, instance <release>-<namespace>).
    expect(service.spec.selector).toEqual({ ...INGRESS_POD_SELECTOR });
    expect(service.spec.selector["app.kubernetes.io/instance"]).toBe(`${traefik.name}-${traefik.namespace}`);
    const port = (p: number) => service.spec.ports.find((x: any) => x.port === p);
    expect(port(443).targetPort).toBe(traefik.values.ports.websecure.port);
    expect(port(80).targetPort).toBe(traefik.values.ports.web.port);
    expect(validateHelmValues(traefik)).toEqual([]);
  });

  it("refuses a service range too small for the address before creating anything", async () => {
    let error: unknown;
    const resources = await runMocked(() => {
      try {
        new Networking("net", args({ serviceCidr: "10.96.0.0/29" }));
      } catch (e) {
        error = e;
      }
    });
    expect(String(error)).toMatch(/too small/);
    expect(resources.filter((r) => r.type.startsWith("dare:") || r.type.startsWith("kubernetes:"))).toHaveLength(0);
  });
});
