/**
 * Pods calling the platform's public names (https://<domain>/auth/…, harbor.<domain>): the name resolves, in
 * the pod, to Traefik's fixed ClusterIP (hostAliases), that Service leads to Traefik's HTTPS entry point, and
 * the rendered NetworkPolicies let the call through (after Service translation, as NetworkPolicy judges it),
 * in both ingress modes. The public address itself is not reachable from the `dare` namespace: behind
 * Octavia with PROXY protocol, OCCM publishes it with ipMode Proxy, so kube-proxy does not translate it and
 * the packet leaves for the floating IP; on host ports it is a node's address.
 */
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import * as k8s from "@pulumi/kubernetes";
import { DareServices } from "../../../components/dare-services";
import { EXAMPLE_HOST_KEY } from "../../../lib/config";
import { Host } from "../../../lib/hosts";
import { Identity } from "../../../components/identity";
import { INGRESS_CLUSTER_SERVICE, Networking, NetworkingArgs, platformHostNames } from "../../../components/networking";
import { DARE_WORKLOADS } from "../../../components/dare-services/workloads";
import { RecordedResource } from "../../../tools/mocks";
import { renderFiles, writeFiles } from "../../../tools/render-writer";
import { validateRenderDir } from "../../../tools/validate";
import { configFrom } from "../../support/dare-fixture";
import { redacted, runMocked, valueOf } from "../../support/mocked";
import { allowed, Endpoint, matches } from "../../support/netpol";

jest.setTimeout(120_000);

const DOMAIN = "dare.example.org";
const SERVICE_CIDR = "10.100.0.0/16";
/** Where DNS points the names behind Octavia (the floating IP OCCM reports; a documentation address here). */
const FLOATING_IP = "203.0.113.80";

const host = (name: string, role: Host["role"], privateAddress: string, publicAddress?: string): Host => ({
  name,
  role,
  pool: role === "worker" ? "workers" : "control-plane",
  address: publicAddress ?? privateAddress,
  privateAddress,
  publicAddress,
  sshUser: "ubuntu",
  port: 22,
  disks: [],
  viaBastion: false,
  hostKey: EXAMPLE_HOST_KEY,
});
const HOSTS: Host[] = [
  host("cp-0", "control-plane", "10.10.0.10", "203.0.113.10"),
  host("w-0", "worker", "10.10.0.20", "203.0.113.20"),
  host("w-1", "worker", "10.10.0.21"),
];

const MODES: Array<[string, Partial<NetworkingArgs>]> = [
  ["behind an Octavia load balancer", { cloud: "openstack", loadBalancer: true, externalNetwork: "public" }],
  ["on host ports", { cloud: "existing", loadBalancer: false }],
];

interface Rendered {
  resources: RecordedResource[];
  objects: any[];
  releases: any[];
  publicAddresses: string[];
  clusterIp: string;
}

async function render(mode: Partial<NetworkingArgs>, harbor: boolean): Promise<Rendered> {
  const config = configFrom({ harbor: { enabled: harbor, registrySizeGb: 10 } });
  let publicAddresses: string[] = [];
  let clusterIp = "";
  const resources: RecordedResource[] = await runMocked(async () => {
    const provider = new k8s.Provider("test", { kubeconfig: "{}" });
    const networking = new Networking("networking", {
      provider,
      cloud: "existing",
      clusterName: "dare-test",
      hosts: HOSTS,
      podCidr: "10.244.0.0/16",
      serviceCidr: SERVICE_CIDR,
      nodeCidr: "10.10.0.0/24",
      loadBalancer: false,
      ingressNodes: ["w-0"],
      ...mode,
    });
    clusterIp = networking.clusterIp;
    const identity = new Identity("identity", {
      provider,
      domain: DOMAIN,
      adminCidrs: ["192.0.2.0/24"],
      identityProviders: [],
      replicas: 1,
      databaseInstances: 1,
      databaseSizeGb: 10,
    });
    const dare = config.dare;
    new DareServices("dare", {
      provider,
      domain: DOMAIN,
      images: dare.images,
      services: dare.services,
      sharedFilesystemSize: dare.sharedFilesystemSize,
      jupyterhub: false,
      workflowInternetAccess: false,
      apiServerCidrs: ["10.10.0.10/32"],
      keycloak: identity.dareLogin,
      ingressClassName: networking.ingressClassName,
      publicNames: { address: networking.clusterIp, hostnames: platformHostNames(config) },
    });
    publicAddresses = mode.loadBalancer ? [FLOATING_IP] : await valueOf(networking.ingressAddresses);
  });
  const k8sObjects = resources.filter((r) => r.custom && r.type.startsWith("kubernetes:"));
  return {
    resources,
    objects: k8sObjects.filter((r) => !r.type.startsWith("kubernetes:helm.sh/")).map((r) => redacted(r)),
    releases: k8sObjects.filter((r) => r.type.startsWith("kubernetes:helm.sh/")).map((r) => redacted(r)),
    publicAddresses,
    clusterIp,
  };
}

const podSpecs = (r: Rendered, ns = "dare") =>
  r.objects
    .filter((o) => o.metadata?.namespace === ns)
    .flatMap((o) => {
      if (o.kind === "Deployment" || o.kind === "StatefulSet") return [{ name: o.metadata.name, template: o.spec.template }];
      if (o.kind === "CronJob") return [{ name: o.metadata.name, template: o.spec.jobTemplate.spec.template }];
      return [];
    });

/** The address a pod's resolver gives for a name: /etc/hosts (hostAliases) first, else the platform's DNS records. */
function resolve(r: Rendered, podSpec: any, name: string): string {
  const alias = (podSpec.hostAliases ?? []).find((a: any) => a.hostnames.includes(name));
  return alias ? alias.ip : r.publicAddresses[0];
}

/** The Traefik pods as the pinned chart labels them (traefik.labels), on the container port of an entry point. */
function traefikPod(r: Rendered, entryPoint: "web" | "websecure"): Endpoint {
  const release = r.releases.find((x) => x.chart === "traefik");
  const defaults = { web: 8000, websecure: 8443 };
  return {
    ns: release.namespace,
    labels: {
      "app.kubernetes.io/name": "traefik",
      "app.kubernetes.io/instance": `${release.name}-${release.namespace}`,
      "helm.sh/chart": `traefik-${release.version}`,
      "app.kubernetes.io/managed-by": "Helm",
    },
    port: release.values.ports[entryPoint].port ?? defaults[entryPoint],
  };
}

/**
 * Where a TCP connection to ip:port lands: a ClusterIP Service of the render is translated to its pods'
 * target port (kube-proxy, before NetworkPolicy sees the packet); any other address stays as it is.
 */
function connect(r: Rendered, ip: string, port: number): Endpoint {
  const service = r.objects.find((o) => o.kind === "Service" && o.spec?.clusterIP === ip);
  if (!service) return { ns: "", labels: undefined as any, ip, port };
  const servicePort = service.spec.ports.find((p: any) => p.port === port);
  if (!servicePort) throw new Error(`Service ${service.metadata.name} has no port ${port}`);
  const pod = [traefikPod(r, "websecure"), traefikPod(r, "web")].find(
    (p) => p.ns === service.metadata.namespace && p.port === servicePort.targetPort,
  );
  if (!pod) throw new Error(`Service ${service.metadata.name} port ${port} leads to no Traefik entry point`);
  expect(matches({ matchLabels: service.spec.selector }, pod.labels)).toBe(true);
  return pod;
}

const policies = (r: Rendered) => r.objects.filter((o) => o.kind === "NetworkPolicy");

describe.each(MODES)("%s", (_mode, mode) => {
  let rendered: Rendered;
  beforeAll(async () => {
    rendered = await render(mode, true);
  });

  it("dare-login reaches https://<domain>/auth: the name leads to Traefik's HTTPS entry point, and Traefik on to Keycloak", () => {
    const login = podSpecs(rendered).find((p) => p.name === "dare-login")!;
    const url = new URL(`https://${DOMAIN}/auth/realms/dare/.well-known/openid-configuration`);
    const ip = resolve(rendered, login.template.spec, url.hostname);
    expect(ip).toBe(rendered.clusterIp);
    const traefik = connect(rendered, ip, 443);
    expect(traefik).toEqual(traefikPod(rendered, "websecure"));
    const from: Endpoint = { ns: "dare", labels: login.template.metadata.labels, port: 0 };
    expect(allowed(policies(rendered), from, traefik)).toBe(true);
    // Traefik routes /auth to Keycloak's pods (keycloakx labels, port 8080): its namespace lets the ingress controller in.
    const keycloak: Endpoint = {
      ns: "keycloak",
      labels: { "app.kubernetes.io/name": "keycloakx", "app.kubernetes.io/instance": "keycloak" },
      port: 8080,
    };
    expect(allowed(policies(rendered), traefik, keycloak)).toBe(true);
  });

  it("every DARE pod resolves dare:domain and harbor.<domain> to the ClusterIP the Traefik Service has in the render", () => {
    const service = rendered.objects.find((o) => o.kind === "Service" && o.metadata.name === INGRESS_CLUSTER_SERVICE);
    expect(service.spec.clusterIP).toBe(rendered.clusterIp);
    const pods = podSpecs(rendered);
    expect(pods.map((p) => p.name).sort()).toEqual([...DARE_WORKLOADS].sort());
    for (const pod of pods) {
      for (const name of [DOMAIN, `harbor.${DOMAIN}`])
        expect([pod.name, name, resolve(rendered, pod.template.spec, name)]).toEqual([pod.name, name, service.spec.clusterIP]);
    }
  });

  it("passes the project's Kubernetes and Helm validation (the Service, the hostAliases, Traefik's values)", async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "in-cluster-urls-"));
    writeFiles(dir, await renderFiles(rendered.resources, {}, []));
    expect(await validateRenderDir(dir)).toEqual([]);
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it("the public address itself is refused by the dare namespace's egress: why the names must not lead there", () => {
    const login = podSpecs(rendered).find((p) => p.name === "dare-login")!;
    const from: Endpoint = { ns: "dare", labels: login.template.metadata.labels, port: 0 };
    for (const address of rendered.publicAddresses) {
      expect(allowed(policies(rendered), from, connect(rendered, address, 443))).toBe(false);
    }
  });
});

it("without Harbor, only dare:domain is aliased", async () => {
  const rendered = await render(MODES[1][1], false);
  const login = podSpecs(rendered).find((p) => p.name === "dare-login")!;
  expect(login.template.spec.hostAliases).toEqual([{ ip: rendered.clusterIp, hostnames: [DOMAIN] }]);
});

it("refuses public names that leave out the domain the services are served under", async () => {
  const config = configFrom({});
  let error: unknown;
  await runMocked(() => {
    try {
      new DareServices("dare", {
        provider: new k8s.Provider("test", { kubeconfig: "{}" }),
        domain: DOMAIN,
        images: config.dare.images,
        services: config.dare.services,
        sharedFilesystemSize: "1Gi",
        jupyterhub: false,
        workflowInternetAccess: false,
        apiServerCidrs: [],
        keycloak: { url: "u", realm: "r", clientId: "c", clientSecret: "s", adminUsername: "a", adminPassword: "p" },
        publicNames: { address: "10.96.0.12", hostnames: [`harbor.${DOMAIN}`] },
      });
    } catch (e) {
      error = e;
    }
  });
  expect(String(error)).toMatch(/publicNames must include the domain/);
});
