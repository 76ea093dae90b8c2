/**
 * dare:apiVirtualIp: kube-vip's static pod manifest, the loader's checks, the OpenStack resources that let the
 * control planes carry the VIP, and the bootstrap's use of it (endpoint, certificate SANs, step order), under the
 * mock runtime. The host steps themselves run on real sshd in tests/hosts/kube-vip.test.ts.
 */
import * as fs from "fs";
import * as path from "path";
import * as YAML from "yaml";
import { KubernetesCluster } from "../../../components/cluster";
import { ClusterNode, clusterNodes } from "../../../lib/host-plan";
import { ConfigError, ConfigSource, DEFAULT_NETWORK, EXAMPLE_HOST_KEY, loadConfig, NodesSpec, Problem } from "../../../lib/config";
import { Infrastructure, InfrastructureArgs } from "../../../components/infrastructure";
import { INTERFACE_PLACEHOLDER, KUBE_VIP_IMAGE, KUBE_VIP_LEASE, kubeVipManifest } from "../../../components/cluster/kube-vip";
import { installMocks, RecordedResource, settle } from "../../../tools/mocks";
import { runMocked, valueOf } from "../../support/mocked";
import { render } from "../../support/render";
import { SITE_CONFIG } from "../../support/site";
import { stepEnv } from "../../support/step-env";

describe("kube-vip's static pod", () => {
  const pod = (over: { interface?: string; image?: string } = {}) =>
    YAML.parse(kubeVipManifest({ address: "10.10.0.250", port: 6443, ...over }));
  const env = (p: any) => Object.fromEntries(p.spec.containers[0].env.map((e: any) => [e.name, e.value ?? e.valueFrom]));

  it("is a kube-system Pod on the host network with the pinned image", () => {
    const p = pod();
    expect(p).toMatchObject({ apiVersion: "v1", kind: "Pod", metadata: { name: "kube-vip", namespace: "kube-system" } });
    expect(p.spec.hostNetwork).toBe(true);
    expect(p.spec.containers).toHaveLength(1);
    expect(p.spec.containers[0].image).toBe(KUBE_VIP_IMAGE);
    expect(KUBE_VIP_IMAGE).toMatch(/^ghcr\.io\/kube-vip\/kube-vip:v\d+\.\d+\.\d+$/);
    expect(p.spec.containers[0].args).toEqual(["manager"]);
    expect(pod({ image: "registry.example.org/kube-vip:v1.2.3" }).spec.containers[0].image).toBe("registry.example.org/kube-vip:v1.2.3");
  });

  it("is listed in the README at the pinned tag", () => {
    const readme = fs.readFileSync(path.join(__dirname, "..", "..", "..", "README.md"), "utf8");
    const row = readme.split("\n").find((l) => l.startsWith("| 2 Kubernetes | kube-vip"));
    expect(row).toContain(`| ${KUBE_VIP_IMAGE.split(":")[1]} (`);
  });

  it("holds the VIP in ARP mode for the control plane only, chosen by leader election", () => {
    expect(env(pod())).toEqual({
      vip_arp: "true",
      address: "10.10.0.250",
      port: "6443",
      vip_interface: INTERFACE_PLACEHOLDER,
      cp_enable: "true",
      cp_namespace: "kube-system",
      svc_enable: "false",
      vip_leaderelection: "true",
      vip_leasename: KUBE_VIP_LEASE,
      vip_leaseduration: "5",
      vip_renewdeadline: "3",
      vip_retryperiod: "1",
      vip_nodename: { fieldRef: { fieldPath: "spec.nodeName" } },
      prometheus_server: "127.0.0.1:2112",
    });
    expect(env(pod({ interface: "ens3" })).vip_interface).toBe("ens3");
    // No BGP, no Service load balancing.
    expect(Object.keys(env(pod())).filter((k) => /^(bgp_|lb_|svc_election)/.test(k))).toEqual([]);
  });

  it("may change addresses and send ARP (NET_ADMIN, NET_RAW) and nothing else", () => {
    expect(pod().spec.containers[0].securityContext).toEqual({ capabilities: { add: ["NET_ADMIN", "NET_RAW"], drop: ["ALL"] } });
    expect(pod().spec.containers[0].securityContext.privileged).toBeUndefined();
  });

  it("reads admin.conf (a file) and reaches its own API server as `kubernetes`", () => {
    const p = pod();
    expect(p.spec.volumes).toEqual([{ name: "kubeconfig", hostPath: { path: "/etc/kubernetes/admin.conf", type: "File" } }]);
    expect(p.spec.containers[0].volumeMounts).toEqual([{ name: "kubeconfig", mountPath: "/etc/kubernetes/admin.conf", readOnly: true }]);
    expect(p.spec.hostAliases).toEqual([{ ip: "127.0.0.1", hostnames: ["kubernetes"] }]);
    // The host step swaps this one line for super-admin.conf on the first control plane before init.
    expect(kubeVipManifest({ address: "10.10.0.250", port: 6443 }).match(/^ *path: \/etc\/kubernetes\/admin\.conf$/gm)).toHaveLength(1);
  });
});

function source(values: Record<string, unknown>): ConfigSource {
  return {
    stack: "test",
    get: (key) =>
      values[key] === undefined ? undefined : typeof values[key] === "string" ? (values[key] as string) : JSON.stringify(values[key]),
  };
}
const valid = { domain: "dare.example.org", adminCidrs: ["192.0.2.0/24"], ...SITE_CONFIG };
const host = (name: string, privateAddress: string, role = "control-plane", address = privateAddress) => ({
  name,
  role,
  address,
  privateAddress,
  user: "ubuntu",
  port: 22,
  disks: [],
  hostKey: EXAMPLE_HOST_KEY,
});
const existing = {
  provider: "existing",
  network: { cidr: "10.0.0.0/24" },
  hosts: [
    host("cp-0", "10.0.0.10"),
    host("cp-1", "10.0.0.11"),
    host("cp-2", "10.0.0.12"),
    { ...host("w-0", "10.0.0.20", "workers"), disks: ["/dev/sdb"] },
  ],
};
const openstackNoLb = { apiLoadBalancer: false, nodes: { pools: [{ publicIp: true }] } };

function problemsOf(values: Record<string, unknown>): Problem[] {
  try {
    loadConfig(source({ ...valid, ...values }));
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigError);
    return (err as ConfigError).problems;
  }
  throw new Error("expected the configuration to be refused");
}
function expectProblem(values: Record<string, unknown>, key: string, why: RegExp, example?: RegExp): void {
  const problem = problemsOf(values).find((p) => p.key === key && why.test(p.why));
  expect(problem).toBeDefined();
  expect(problem!.example).toMatch(example ?? /./);
}

describe("dare:apiVirtualIp in the loader", () => {
  it("is off unless set", () => {
    expect(loadConfig(source({ ...valid, ...existing })).apiVirtualIp).toBeUndefined();
    expect(loadConfig(source({ ...valid, ...existing, apiVirtualIp: {} })).apiVirtualIp).toBeUndefined();
  });

  it("takes a free address in the nodes' subnet, with existing hosts or OpenStack without the API load balancer", () => {
    expect(loadConfig(source({ ...valid, ...existing, apiVirtualIp: { address: "10.0.0.5" } })).apiVirtualIp).toEqual({
      address: "10.0.0.5",
    });
    expect(
      loadConfig(
        source({
          ...valid,
          ...existing,
          apiVirtualIp: { address: "10.0.0.5", interface: "ens3", image: "registry.example.org/kube-vip:v1.2.3" },
        }),
      ).apiVirtualIp,
    ).toEqual({ address: "10.0.0.5", interface: "ens3", image: "registry.example.org/kube-vip:v1.2.3" });
    expect(loadConfig(source({ ...valid, ...openstackNoLb, apiVirtualIp: { address: "10.10.0.250" } })).apiVirtualIp).toEqual({
      address: "10.10.0.250",
    });
  });

  it("refuses it beside the API load balancer", () => {
    expectProblem({ apiVirtualIp: { address: "10.10.0.250" } }, "apiVirtualIp", /dare:apiLoadBalancer is on/, /apiLoadBalancer false/);
  });

  it("refuses an address outside the nodes' subnet, or one no host can hold", () => {
    expectProblem(
      { ...existing, apiVirtualIp: { address: "10.0.1.5" } },
      "apiVirtualIp.address",
      /must be in the nodes' subnet dare:network.cidr \(10\.0\.0\.0\/24\).*ARP/,
      /10\.0\.0\.254/,
    );
    expectProblem({ ...existing, apiVirtualIp: { address: "10.0.0.255" } }, "apiVirtualIp.address", /broadcast address/);
    expectProblem({ ...existing, apiVirtualIp: { address: "10.0.0.0" } }, "apiVirtualIp.address", /network address/);
    expectProblem({ ...openstackNoLb, apiVirtualIp: { address: "10.10.0.1" } }, "apiVirtualIp.address", /gateway of 10\.10\.0\.0\/24/);
    expectProblem({ ...existing, apiVirtualIp: { address: "300.0.0.1" } }, "apiVirtualIp.address", /IPv4 address/);
    expectProblem({ ...existing, apiVirtualIp: { interface: "ens3" } }, "apiVirtualIp.address", /is required/);
  });

  it("refuses a host's address, and a control plane outside the VIP's subnet", () => {
    expectProblem(
      { ...existing, apiVirtualIp: { address: "10.0.0.20" } },
      "apiVirtualIp.address",
      /host w-0's address \(dare:hosts\[3\]\)/,
    );
    const outside = { ...existing, hosts: [...existing.hosts.slice(0, 2), host("cp-2", "10.0.9.12"), existing.hosts[3]] };
    expectProblem(
      { ...outside, apiVirtualIp: { address: "10.0.0.5" } },
      "apiVirtualIp.address",
      /control plane cp-2 \(10\.0\.9\.12, dare:hosts\[2\]\) is outside dare:network.cidr/,
    );
    // A worker elsewhere does not matter: it reaches the VIP through its router.
    const worker = { ...existing, hosts: [...existing.hosts.slice(0, 3), { ...host("w-0", "10.0.9.20", "workers"), disks: ["/dev/sdb"] }] };
    expect(loadConfig(source({ ...valid, ...worker, apiVirtualIp: { address: "10.0.0.5" } })).apiVirtualIp).toEqual({
      address: "10.0.0.5",
    });
  });

  it("refuses unknown fields, a bad interface name and an unpinned image", () => {
    expectProblem({ ...existing, apiVirtualIp: { address: "10.0.0.5", adress: "x" } }, "apiVirtualIp.adress", /unknown key/);
    expectProblem(
      { ...existing, apiVirtualIp: { address: "10.0.0.5", interface: "a very long interface name" } },
      "apiVirtualIp.interface",
      /interface name/,
    );
    expectProblem(
      { ...existing, apiVirtualIp: { address: "10.0.0.5", image: "ghcr.io/kube-vip/kube-vip" } },
      "apiVirtualIp.image",
      /neither a tag nor a digest/,
      /kube-vip:v/,
    );
    expectProblem({ ...existing, apiVirtualIp: "10.0.0.5" }, "apiVirtualIp", /must be an object/, /address/);
  });
});

const nodesSpec = (controlPlanes: number, workers: number): NodesSpec => ({
  controlPlane: { count: controlPlanes, flavor: "m1.large" },
  pools: [{ name: "workers", count: workers, flavor: "m1.large", disks: { count: 0, sizeGb: 50 }, publicIp: true }],
});
const VIP = "10.10.0.250";
const NETWORK = { ...DEFAULT_NETWORK, cidr: "10.10.0.0/16" };
const openstackArgs = (over: Partial<InfrastructureArgs> = {}): InfrastructureArgs => ({
  provider: "openstack",
  clusterName: "dare-test",
  nodes: nodesSpec(3, 2),
  hosts: [],
  network: NETWORK,
  adminCidrs: ["192.0.2.0/24"],
  image: "Ubuntu 24.04",
  sshUser: "ubuntu",
  apiLoadBalancer: false,
  apiVirtualIp: { address: VIP },
  ...over,
});

describe("OpenStack: the control planes may carry the VIP, which Neutron reserves and the API's floating IP points at", () => {
  let resources: RecordedResource[];
  let infra: Infrastructure;
  beforeAll(async () => {
    resources = await runMocked(() => {
      infra = new Infrastructure("dare-test", openstackArgs());
    });
  });
  const ofType = (type: string) => resources.filter((r) => r.type === type);

  it("reserves the VIP with a port of its own and associates the API's floating IP with it", () => {
    const vipPort = ofType("openstack:networking/port:Port").find((r) => r.name === "dare-test-api-vip")!;
    expect((vipPort.inputs as any).fixedIps).toEqual([{ subnetId: expect.anything(), ipAddress: VIP }]);
    const association = ofType("openstack:networking/floatingIpAssociate:FloatingIpAssociate").find((r) => r.name === "dare-test-api-fip")!;
    expect(association.dependencies).toContain(vipPort.urn);
    expect(
      ofType("openstack:networking/floatingIpAssociate:FloatingIpAssociate").filter((r) => r.dependencies.includes(vipPort.urn)),
    ).toEqual([association]);
    expect(ofType("openstack:loadbalancer/loadBalancer:LoadBalancer")).toEqual([]);
  });

  it("lets every control plane's port, and no worker's, carry it", () => {
    const ports = ofType("openstack:networking/port:Port").filter((r) => r.name !== "dare-test-api-vip");
    const pairs = Object.fromEntries(ports.map((p) => [p.name, (p.inputs as any).allowedAddressPairs]));
    expect(pairs).toEqual({
      "dare-test-cp-0-port": [{ ipAddress: VIP }],
      "dare-test-cp-1-port": [{ ipAddress: VIP }],
      "dare-test-cp-2-port": [{ ipAddress: VIP }],
      "dare-test-workers-0-port": undefined,
      "dare-test-workers-1-port": undefined,
    });
    // Reserved before any machine's port is given an address.
    const vipPort = ofType("openstack:networking/port:Port").find((r) => r.name === "dare-test-api-vip")!;
    for (const p of ports) expect(p.dependencies).toContain(vipPort.urn);
    // Never removed by an update: a running cluster's endpoint stays the VIP (the bootstrap refuses to move it).
    for (const p of ports) expect(p.options?.ignoreChanges).toContain("allowedAddressPairs");
  });

  it("makes the VIP the API's private address and the floating IP its public one", async () => {
    const api = await valueOf(infra.apiServer);
    expect(api.privateAddress).toBe(VIP);
    expect(api.publicAddress).toMatch(/^\d+\.\d+\.\d+\.\d+$/);
    expect(api.publicAddress).not.toBe((await valueOf(infra.bastion))!.address);
  });

  it("refuses a VIP beside the load balancer before registering anything", async () => {
    const registered = installMocks("test");
    expect(() => new Infrastructure("x", openstackArgs({ apiLoadBalancer: true }))).toThrow(/apiVirtualIp and apiLoadBalancer/);
    await settle();
    expect(registered).toEqual([]);
  });
});

describe("existing hosts: the VIP is the endpoint", () => {
  const hostsOf = (publicFirst: boolean) => [
    {
      name: "cp-0",
      role: "control-plane",
      address: publicFirst ? "203.0.113.5" : "10.0.0.10",
      privateAddress: "10.0.0.10",
      user: "ubuntu",
      port: 22,
      disks: [],
      hostKey: EXAMPLE_HOST_KEY,
    },
  ];
  const apiOf = async (publicFirst: boolean) => {
    let infra: Infrastructure | undefined;
    await runMocked(() => {
      infra = new Infrastructure(
        "e",
        openstackArgs({ provider: "existing", hosts: hostsOf(publicFirst), apiVirtualIp: { address: "10.0.0.5" } }),
      );
    });
    return valueOf(infra!.apiServer);
  };
  it("for nodes and, on a flat network, for operators", async () => {
    expect(await apiOf(false)).toEqual({ privateAddress: "10.0.0.5", publicAddress: "10.0.0.5", port: 6443 });
  });
  it("for nodes; operators keep the first control plane's public address, where it has one", async () => {
    expect(await apiOf(true)).toEqual({ privateAddress: "10.0.0.5", publicAddress: "203.0.113.5", port: 6443 });
  });
});

describe("the bootstrap with a VIP", () => {
  let resources: RecordedResource[];
  const nodes: ClusterNode[] = clusterNodes({ provider: "openstack", clusterName: "dare-test", nodes: nodesSpec(3, 2), hosts: [] });
  beforeAll(async () => {
    resources = await runMocked(() => {
      const infra = new Infrastructure("dare-test", openstackArgs());
      new KubernetesCluster("dare-test", {
        nodes,
        hosts: infra.hostByName,
        apiServer: infra.apiServer,
        bastion: infra.bastion,
        sshPrivateKey: infra.sshPrivateKey,
        kubernetesVersion: "1.36.4",
        network: NETWORK,
        clusterName: "dare-test",
        adminCidrs: ["192.0.2.0/24"],
        apiLoadBalancer: false,
        apiVirtualIp: { address: VIP },
      });
    });
  });
  const step = (host: string, name: string) =>
    resources.find((r) => r.type === "command:remote:Command" && r.name === `k8s-dare-test-${host}-${name}`);
  const envValue = (r: RecordedResource, key: string) => stepEnv(r)[key];

  it("writes kube-vip's manifest on every control plane after its preparation, and on no worker", () => {
    for (const cp of ["cp-0", "cp-1", "cp-2"]) {
      const kubeVip = step(cp, "kube-vip")!;
      expect(kubeVip).toBeDefined();
      expect(kubeVip.dependencies).toContain(step(cp, "prepare")!.urn);
      expect((kubeVip.inputs as any).delete).toBeUndefined();
      expect(envValue(kubeVip, "FIRST_CONTROL_PLANE")).toBe(String(cp === "cp-0"));
      expect(envValue(kubeVip, "API_ENDPOINT")).toBe(`${VIP}:6443`);
      expect(YAML.parse(envValue(kubeVip, "KUBE_VIP_MANIFEST")).spec.containers[0].env).toContainEqual({ name: "address", value: VIP });
    }
    expect(step("workers-0", "kube-vip")).toBeUndefined();
  });

  it("runs kubeadm init and each control plane's join only after that host's manifest", () => {
    expect(step("cp-0", "init")!.dependencies).toContain(step("cp-0", "kube-vip")!.urn);
    expect(step("cp-1", "join")!.dependencies).toContain(step("cp-1", "kube-vip")!.urn);
    expect(step("cp-2", "join")!.dependencies).toContain(step("cp-2", "kube-vip")!.urn);
  });

  it("makes the VIP kubeadm's controlPlaneEndpoint and puts it in the API server's certificate", () => {
    const [, cluster] = YAML.parseAllDocuments(envValue(step("cp-0", "init")!, "KUBEADM_CONFIG")).map((d) => d.toJS());
    expect(cluster.controlPlaneEndpoint).toBe(`${VIP}:6443`);
    expect(cluster.apiServer.certSANs).toContain(VIP);
    const join = YAML.parse(envValue(step("workers-0", "join")!, "KUBEADM_CONFIG"));
    expect(join.discovery.bootstrapToken.apiServerEndpoint).toBe(`${VIP}:6443`);
  });

  it("refuses a VIP beside the load balancer in the constructor", async () => {
    const registered = installMocks("test");
    expect(
      () =>
        new KubernetesCluster("x", {
          nodes,
          hosts: {},
          apiServer: { privateAddress: VIP, publicAddress: VIP, port: 6443 },
          bastion: undefined,
          sshPrivateKey: "k",
          kubernetesVersion: "1.36.4",
          network: NETWORK,
          clusterName: "x",
          adminCidrs: [],
          apiLoadBalancer: true,
          apiVirtualIp: { address: VIP },
        }),
    ).toThrow(/apiVirtualIp 10\.10\.0\.250 and apiLoadBalancer/);
    await settle();
    expect(registered).toEqual([]);
  });
});

describe("the render of a testbed with a VIP (the real program and loader, as `npm run render` runs them)", () => {
  // Without the API load balancer the ingress needs workers with public addresses (the loader says so).
  const withVip = ["--set", "apiLoadBalancer=false", "--set", "nodes.pools[0].publicIp=true", "--set", "apiVirtualIp.address=10.10.0.250"];

  it("writes kube-vip's step on the control plane before kubeadm init, with the VIP as the endpoint", () => {
    const result = render("testbed", withVip);
    expect(result.status).toBe(0);
    const files = fs.readdirSync(path.join(result.dir, "hosts", "dare-testbed-cp-0"));
    const numbered = (stepName: string) => files.find((f) => new RegExp(`^\\d+-${stepName}\\.sh$`).test(f))!;
    expect(numbered("kube-vip")).toBeDefined();
    expect(numbered("kube-vip") < numbered("init")).toBe(true);
    const env = fs.readFileSync(path.join(result.dir, "hosts", "dare-testbed-cp-0", numbered("kube-vip").replace(/\.sh$/, ".env")), "utf8");
    expect(env).toContain("API_ENDPOINT='10.10.0.250:6443'");
    expect(env).toContain("FIRST_CONTROL_PLANE='true'");
    expect(fs.readdirSync(path.join(result.dir, "hosts", "dare-testbed-workers-0")).some((f) => f.includes("kube-vip"))).toBe(false);
    const outputs = JSON.parse(fs.readFileSync(path.join(result.dir, "outputs.json"), "utf8"));
    expect(outputs.apiServer.privateAddress).toBe("10.10.0.250");
  });

  it("refuses the VIP beside the API load balancer with the loader's message, writing nothing", () => {
    const result = render("testbed", ["--set", "apiVirtualIp.address=10.10.0.250"]);
    expect(result.status).not.toBe(0);
    expect(result.stderr).toContain('dare:apiVirtualIp = {"address":"10.10.0.250"}: is for clusters without an API load balancer');
    expect(fs.existsSync(result.dir)).toBe(false);
  });
});
