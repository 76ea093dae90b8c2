/**
 * The availability probes: the component under Pulumi's mock runtime (one Probe per target, the
 * exporter's Deployment, arguments refused early), and the rendered blackbox.yml run by the real
 * blackbox exporter (Debian package prometheus-blackbox-exporter) against small local servers: each
 * module passes and fails where it should, and ingress probes send the platform's host name as Host
 * header and TLS server name to an HTTPS server that answers only for that name.
 */
import { ChildProcess, execFileSync, spawn, spawnSync } from "child_process";
import * as fs from "fs";
import * as http from "http";
import * as https from "https";
import * as net from "net";
import * as os from "os";
import * as path from "path";
import * as k8s from "@pulumi/kubernetes";
import * as pulumi from "@pulumi/pulumi";
import * as YAML from "yaml";
import {
  AvailabilityProbes,
  AvailabilityProbesArgs,
  BLACKBOX_EXPORTER_IMAGE,
  PROBE_JOB,
  PROBER_ADDRESS,
  ProbeTarget,
  REACHABLE_STATUS_CODES,
  renderBlackboxConfig,
  resolveTargets,
} from "../../../components/monitoring/availability-probes";
import { Monitoring } from "../../../components/monitoring";
import { checkRenderDir } from "../../../policy/check-render";
import { RecordedResource } from "../../../tools/mocks";
import { renderFiles, writeFiles } from "../../../tools/render-writer";
import { validateRenderDir } from "../../../tools/validate";
import { ofType, runMocked, unsecret } from "../../support/mocked";
import { DataProtection } from "../../../lib/data-protection";

const DOMAIN = "dare.example.org";
const INGRESS = "https://traefik.traefik.svc";
const TARGETS: ProbeTarget[] = [
  { service: "sprov", workload: "sprov", via: "cluster", target: "http://sprov.dare.svc:8082/", module: "http_2xx" },
  { service: "sprov", workload: "sprov", via: "ingress", target: "/prov/", module: "http_2xx" },
  { service: "d4p-registry", workload: "d4p-registry", via: "cluster", target: "d4p-registry.dare.svc:8000", module: "tcp_connect" },
  { service: "d4p-registry", workload: "d4p-registry", via: "ingress", target: "/d4p-registry/", module: "http_reachable" },
  { service: "cwl", workload: "workflow-registry", via: "cluster", target: "http://workflow-registry.dare.svc/", module: "http_reachable" },
];

type Build = Partial<Omit<AvailabilityProbesArgs, "provider" | "monitoring">>;

async function build(over: Build = {}): Promise<{ resources: RecordedResource[]; probes: AvailabilityProbes }> {
  let probes: AvailabilityProbes | undefined;
  const resources = await runMocked(() => {
    // As program.ts does: the monitoring namespace holds Prometheus' volume and is protected.
    new DataProtection([]).install();
    const provider = new k8s.Provider("test", { kubeconfig: "{}" });
    const monitoring = new Monitoring("monitoring", { clusterName: "dare-test", domain: DOMAIN, provider });
    probes = new AvailabilityProbes("availability", {
      provider,
      monitoring,
      image: BLACKBOX_EXPORTER_IMAGE,
      domain: DOMAIN,
      ingressServiceUrl: INGRESS,
      targets: TARGETS,
      ...over,
    });
  });
  return { resources, probes: probes! };
}

/** Builds with a ComponentResource standing in for Monitoring. */
function attempt(over: Build): Promise<unknown> {
  return runMocked(() => {
    const provider = new k8s.Provider("test", { kubeconfig: "{}" });
    const monitoring = new pulumi.ComponentResource("test:index:Monitoring", "monitoring");
    new AvailabilityProbes("availability", {
      provider,
      monitoring,
      image: BLACKBOX_EXPORTER_IMAGE,
      domain: DOMAIN,
      ingressServiceUrl: INGRESS,
      targets: TARGETS,
      ...over,
    });
  });
}

const PROBE_TYPE = "kubernetes:monitoring.coreos.com/v1:Probe";

describe("AvailabilityProbes under the mock runtime", () => {
  let resources: RecordedResource[];
  let probes: AvailabilityProbes;
  const probeObjects = () => ofType(resources, PROBE_TYPE).map((r) => unsecret(r.inputs));
  const deployment = () =>
    unsecret(ofType(resources, "kubernetes:apps/v1:Deployment").find((r) => r.name === "availability-deployment")!.inputs);
  beforeAll(async () => {
    ({ resources, probes } = await build());
  });

  it("declares one Probe per target, asking the exporter's Service with the target's module and labels", () => {
    const byName = new Map(probeObjects().map((p) => [p.metadata.name, p]));
    expect([...byName.keys()].sort()).toEqual([
      "dare-d4p-registry-cluster",
      "dare-d4p-registry-ingress",
      "dare-sprov-cluster",
      "dare-sprov-ingress",
      "dare-workflow-registry-cluster",
    ]);
    expect(probes.probeNames).toEqual([
      "dare-sprov-cluster",
      "dare-sprov-ingress",
      "dare-d4p-registry-cluster",
      "dare-d4p-registry-ingress",
      "dare-workflow-registry-cluster",
    ]);
    for (const p of byName.values()) {
      expect(p.metadata.namespace).toBe("monitoring");
      expect(p.spec).toMatchObject({
        jobName: PROBE_JOB,
        interval: "30s",
        prober: { url: "blackbox-exporter.monitoring.svc:9115", scheme: "http", path: "/probe" },
      });
      expect(p.spec.targets.staticConfig.static).toHaveLength(1);
    }
    expect(byName.get("dare-sprov-cluster").spec).toMatchObject({
      module: "http_2xx",
      targets: {
        staticConfig: {
          static: ["http://sprov.dare.svc:8082/"],
          labels: {
            service: "sprov",
            workload: "sprov",
            via: "cluster",
            module: "http_2xx",
            namespace: "dare",
            url: "http://sprov.dare.svc:8082/",
          },
        },
      },
    });
    // Through the ingress controller's Service; the public URL is a label for people.
    expect(byName.get("dare-sprov-ingress").spec).toMatchObject({
      module: "ingress_http_2xx",
      targets: {
        staticConfig: {
          static: ["https://traefik.traefik.svc/prov/"],
          labels: { service: "sprov", workload: "sprov", via: "ingress", namespace: "dare", url: "https://dare.example.org/prov/" },
        },
      },
    });
    expect(byName.get("dare-d4p-registry-cluster").spec).toMatchObject({
      module: "tcp_connect",
      targets: { staticConfig: { static: ["d4p-registry.dare.svc:8000"] } },
    });
    expect(byName.get("dare-d4p-registry-ingress").spec.module).toBe("ingress_http_reachable");
    expect(byName.get("dare-workflow-registry-cluster").spec.targets.staticConfig.labels).toMatchObject({
      service: "cwl",
      workload: "workflow-registry",
    });
  });

  it("makes every Probe wait for the Monitoring component (its CRD) and the exporter", () => {
    const stack = resources.find((r) => r.type === "kubernetes:helm.sh/v3:Release" && (r.inputs as any).chart === "kube-prometheus-stack")!;
    for (const r of ofType(resources, PROBE_TYPE)) {
      // Pulumi records a dependency on a component as its children: the release that installs the CRDs among them.
      expect(r.dependencies).toContain(stack.urn);
      expect(r.dependencies).toEqual(
        expect.arrayContaining([
          resources.find((x) => x.name === "availability-deployment")!.urn,
          resources.find((x) => x.name === "availability-service")!.urn,
        ]),
      );
      expect(r.parent).toBe(resources.find((x) => x.type === "dare:monitoring:AvailabilityProbes")!.urn);
    }
  });

  it("is selected by kube-prometheus-stack's Prometheus: Probes of every namespace, whatever their labels", () => {
    const stack = unsecret(
      resources.find((r) => r.type === "kubernetes:helm.sh/v3:Release" && (r.inputs as any).chart === "kube-prometheus-stack")!.inputs,
    );
    const spec = stack.values.prometheus.prometheusSpec;
    expect(spec.probeSelectorNilUsesHelmValues).toBe(false);
    // Neither narrowed here: the chart's defaults ({}) select every Probe in every namespace.
    expect(spec.probeSelector).toBeUndefined();
    expect(spec.probeNamespaceSelector).toBeUndefined();
  });

  it("runs the exporter restricted: non-root, read-only root file system, no capabilities, RuntimeDefault seccomp", () => {
    const pod = deployment().spec.template.spec;
    expect(pod.securityContext).toEqual({
      runAsNonRoot: true,
      runAsUser: 65534,
      runAsGroup: 65534,
      seccompProfile: { type: "RuntimeDefault" },
    });
    expect(pod.automountServiceAccountToken).toBe(false);
    expect(pod.containers).toHaveLength(1);
    const [c] = pod.containers;
    expect(c.image).toBe("quay.io/prometheus/blackbox-exporter:v0.28.0");
    expect(c.securityContext).toEqual({ allowPrivilegeEscalation: false, readOnlyRootFilesystem: true, capabilities: { drop: ["ALL"] } });
    expect(c.livenessProbe.httpGet).toEqual({ path: "/-/healthy", port: "http" });
    expect(c.readinessProbe.httpGet).toEqual({ path: "/-/healthy", port: "http" });
    expect(c.resources.requests).toEqual({ cpu: expect.any(String), memory: expect.any(String) });
    expect(c.resources.limits.memory).toEqual(expect.any(String));
    expect(c.args).toContain("--config.file=/etc/blackbox_exporter/blackbox.yml");
    expect(c.volumeMounts).toEqual([{ name: "config", mountPath: "/etc/blackbox_exporter", readOnly: true }]);
  });

  it("serves the exporter at the address the Probes name, and rolls the pod when blackbox.yml changes", async () => {
    const service = unsecret(ofType(resources, "kubernetes:core/v1:Service").find((r) => r.name === "availability-service")!.inputs);
    expect(`${service.metadata.name}.${service.metadata.namespace}.svc:${service.spec.ports[0].port}`).toBe(PROBER_ADDRESS);
    expect(service.spec.type).toBe("ClusterIP");
    expect(service.spec.selector).toEqual(deployment().spec.template.metadata.labels);
    const configMap = unsecret(ofType(resources, "kubernetes:core/v1:ConfigMap").find((r) => r.name === "availability-config")!.inputs);
    expect(configMap.data["blackbox.yml"]).toBe(renderBlackboxConfig(DOMAIN));
    const other = await build({ domain: "other.example.org" });
    const otherDeployment = unsecret(
      ofType(other.resources, "kubernetes:apps/v1:Deployment").find((r) => r.name === "availability-deployment")!.inputs,
    );
    expect(otherDeployment.spec.template.metadata.annotations["checksum/config"]).not.toBe(
      deployment().spec.template.metadata.annotations["checksum/config"],
    );
  });

  it("renders objects that pass validation and the policy pack", async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "availability-render-"));
    writeFiles(dir, await renderFiles(resources, {}, []));
    expect(await validateRenderDir(dir)).toEqual([]);
    expect(checkRenderDir(dir)).toEqual([]);
  });

  it("takes the probe interval from its arguments", async () => {
    const { resources: r } = await build({ interval: "1m" });
    for (const p of ofType(r, PROBE_TYPE)) expect((p.inputs as any).spec.interval).toBe("1m");
  });
});

describe("AvailabilityProbes arguments", () => {
  const sprov = TARGETS[0];
  it.each<[string, Build, RegExp]>([
    [
      "an unknown module",
      { targets: [{ ...sprov, module: "http_200" as any }] },
      /targets\[0\] \(sprov via cluster\): unknown module "http_200": one of http_2xx, http_reachable, tcp_connect/,
    ],
    [
      "an ingress target that is not a path",
      { targets: [{ ...sprov, via: "ingress", target: "prov/" }] },
      /targets\[0\] \(sprov via ingress\): an ingress target is a path on the public host starting with "\/"/,
    ],
    [
      "an ingress target that is a URL",
      { targets: [{ ...sprov, via: "ingress", target: "https://dare.example.org/prov/" }] },
      /an ingress target is a path on the public host starting with "\/"/,
    ],
    [
      "the same workload twice via the same path",
      { targets: [sprov, { ...sprov, target: "http://sprov.dare.svc:8082/other" }] },
      /targets\[1\] \(sprov via cluster\): duplicate: sprov is already probed via cluster/,
    ],
    [
      "tcp_connect through the ingress",
      { targets: [{ ...sprov, via: "ingress", target: "/prov/", module: "tcp_connect" }] },
      /tcp_connect through the ingress .* use http_reachable/,
    ],
    [
      "a short Service name (not resolvable from the monitoring namespace)",
      { targets: [{ ...sprov, target: "http://sprov:8082/" }] },
      /http:\/\/<service>\.<namespace>\.svc\[:port\]\/path/,
    ],
    [
      "a tcp_connect target without port",
      { targets: [{ ...sprov, module: "tcp_connect", target: "sprov.dare.svc" }] },
      /<service>\.<namespace>\.svc:<port>/,
    ],
    ["an http target for tcp_connect", { targets: [{ ...sprov, module: "tcp_connect" }] }, /<service>\.<namespace>\.svc:<port>/],
    ["a service that is no lower-case label", { targets: [{ ...sprov, service: "S Prov" }] }, /service must be a lower-case label/],
    ["no target", { targets: [] }, /targets must list at least one target/],
    ["an ingress URL over plain HTTP", { ingressServiceUrl: "http://traefik.traefik.svc" }, /ingressServiceUrl must be an https:\/\/ URL/],
    [
      "an ingress URL with a path",
      { ingressServiceUrl: "https://traefik.traefik.svc/prov" },
      /ingressServiceUrl must be an https:\/\/ URL/,
    ],
    ["a domain that is no DNS name", { domain: "https://dare.example.org" }, /domain must be a DNS name/],
    ["an interval below the scrape timeout", { interval: "5s" }, /interval must be a Prometheus duration from 10s to 2m/],
    ["an interval that is no duration", { interval: "30" }, /interval must be a Prometheus duration/],
  ])("refuses %s", (_what, over, message) => {
    // Thrown by the constructor itself, before any child is declared.
    const provider = new k8s.Provider("reject", { kubeconfig: "{}" });
    const monitoring = new pulumi.ComponentResource("test:index:Monitoring", "reject-monitoring");
    expect(
      () =>
        new AvailabilityProbes("bad", {
          provider,
          monitoring,
          image: BLACKBOX_EXPORTER_IMAGE,
          domain: DOMAIN,
          ingressServiceUrl: INGRESS,
          targets: TARGETS,
          ...over,
        }),
    ).toThrow(message);
  });

  it("labels an ingress probe with its workload's namespace only when the workload's Service is probed too", () => {
    const ingressOnly = resolveTargets({ domain: DOMAIN, ingressServiceUrl: INGRESS, targets: [TARGETS[1]] });
    expect(ingressOnly[0].namespace).toBeUndefined();
    expect(resolveTargets({ domain: DOMAIN, ingressServiceUrl: INGRESS, targets: TARGETS.slice(0, 2) })[1].namespace).toBe("dare");
  });

  it("lists every problem at once", () => {
    expect(() =>
      resolveTargets({
        domain: DOMAIN,
        ingressServiceUrl: INGRESS,
        targets: [
          { ...sprov, module: "x" as any },
          { ...sprov, via: "ingress", target: "prov" },
        ],
      }),
    ).toThrow(/unknown module "x"[\s\S]*starting with "\/"/);
  });

  it.each([
    "prom/blackbox-exporter:v0.28.0",
    `quay.io/prometheus/blackbox-exporter@sha256:${"a".repeat(64)}`,
    "harbor.example.org:8443/mirror/blackbox-exporter:v0.28.0",
  ])("accepts the image %s (pinned by tag or digest)", async (image) => {
    await expect(attempt({ image })).resolves.toBeDefined();
  });
});

// ---------------------------------------------------------------------------------------------------
// The real exporter
// ---------------------------------------------------------------------------------------------------

/** The exporter binary: upstream's name, or the Debian package's. */
function exporterBinary(): string {
  for (const name of ["blackbox_exporter", "prometheus-blackbox-exporter"]) {
    try {
      execFileSync("sh", ["-c", `command -v ${name}`], { stdio: "pipe" });
      return name;
    } catch {
      /* next */
    }
  }
  throw new Error("no blackbox exporter on PATH: apt-get install prometheus-blackbox-exporter (.ci/run does)");
}

function run(cmd: string, args: string[]): { ok: boolean; output: string } {
  const r = spawnSync(cmd, args, { encoding: "utf8" });
  return { ok: r.status === 0, output: `${r.stdout ?? ""}${r.stderr ?? ""}` };
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.on("error", reject);
    s.listen(0, "127.0.0.1", () => {
      const { port } = s.address() as net.AddressInfo;
      s.close(() => resolve(port));
    });
  });
}

function listen(server: net.Server): Promise<number> {
  return new Promise((resolve) => server.listen(0, "127.0.0.1", () => resolve((server.address() as net.AddressInfo).port)));
}

const TRAEFIK_404 = "404 page not found\n";

describe("the rendered blackbox.yml in the real exporter", () => {
  const bin = exporterBinary();
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "blackbox-"));
  const servers: net.Server[] = [];
  let exporter: ChildProcess | undefined;
  let exporterLog = "";
  let exporterUrl = "";
  const port: Record<string, number> = {};
  /** What the HTTPS server saw: Host header and TLS server name of each request. */
  const seen: Array<{ host?: string; servername?: string | false }> = [];

  const configFile = (domain: string) => {
    const file = path.join(dir, `blackbox-${domain}.yml`);
    fs.writeFileSync(file, renderBlackboxConfig(domain));
    return file;
  };

  beforeAll(async () => {
    // Plain HTTP services, as a Service in the cluster would answer.
    const answer = (status: number, body = "", headers: Record<string, string> = {}) =>
      http.createServer((_req, res) => {
        res.writeHead(status, { "content-type": "text/plain", ...headers });
        res.end(body);
      });
    for (const [name, server] of Object.entries({
      ok: answer(200, "This is the s-prov service"),
      unauthorised: answer(401, '{"detail":"Authentication credentials were not provided."}'),
      unavailable: answer(503, "no available server"),
      appNotFound: answer(404, "<h1>Not Found</h1><p>The requested resource was not found on this server.</p>"),
    })) {
      servers.push(server);
      port[name] = await listen(server);
    }
    const redirect = answer(302, "", { location: `http://127.0.0.1:${port.unavailable}/` });
    servers.push(redirect);
    port.redirect = await listen(redirect);
    port.closed = await freePort();

    // The ingress controller: HTTPS with a certificate for the platform's name; like Traefik it routes on
    // the Host header and refuses a request whose TLS server name is another host (421).
    execFileSync(
      "openssl",
      [
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-keyout",
        path.join(dir, "tls.key"),
        "-out",
        path.join(dir, "tls.crt"),
        "-days",
        "1",
        "-subj",
        `/CN=${DOMAIN}`,
        "-addext",
        `subjectAltName=DNS:${DOMAIN}`,
      ],
      { stdio: "pipe" },
    );
    const ingress = https.createServer(
      { key: fs.readFileSync(path.join(dir, "tls.key")), cert: fs.readFileSync(path.join(dir, "tls.crt")) },
      (req, res) => {
        const servername = (req.socket as import("tls").TLSSocket & { servername?: string | false }).servername;
        seen.push({ host: req.headers.host, servername });
        const reply = (status: number, body: string) => {
          res.writeHead(status, { "content-type": "text/plain" });
          res.end(body);
        };
        if (req.headers.host !== DOMAIN) return reply(404, TRAEFIK_404);
        if (servername !== DOMAIN) return reply(421, "Misdirected Request");
        const routes: Record<string, [number, string]> = {
          "/prov/": [200, "This is the s-prov service"],
          "/d4p-registry/": [401, '{"detail":"Authentication credentials were not provided."}'],
          "/down/": [503, "Service Unavailable"],
          "/gateway/": [502, "Bad Gateway"],
          "/app-404/": [404, "<h1>Not Found</h1>"],
        };
        const [status, body] = routes[req.url ?? ""] ?? [404, TRAEFIK_404];
        reply(status, body);
      },
    );
    servers.push(ingress);
    port.ingress = await listen(ingress);

    const listenPort = await freePort();
    exporterUrl = `http://127.0.0.1:${listenPort}`;
    exporter = spawn(bin, [`--config.file=${configFile(DOMAIN)}`, `--web.listen-address=127.0.0.1:${listenPort}`], {
      stdio: ["ignore", "pipe", "pipe"],
    });
    exporter.stdout!.on("data", (b: Buffer) => {
      exporterLog += b.toString();
    });
    exporter.stderr!.on("data", (b: Buffer) => {
      exporterLog += b.toString();
    });
    // Ready when /-/healthy answers: the path the Deployment's probes use.
    for (let i = 0; ; i++) {
      try {
        if ((await fetch(`${exporterUrl}/-/healthy`)).ok) break;
      } catch {
        /* not yet */
      }
      if (i > 100 || exporter.exitCode !== null) throw new Error(`the exporter did not start:\n${exporterLog}`);
      await new Promise((r) => setTimeout(r, 100));
    }
  }, 30_000);

  afterAll(async () => {
    if (exporter && exporter.exitCode === null) {
      const exited = new Promise((r) => exporter!.once("exit", r));
      exporter.kill("SIGTERM");
      await exited;
    }
    await Promise.all(servers.map((s) => new Promise((r) => s.close(r))));
    fs.rmSync(dir, { recursive: true, force: true });
  });

  /** probe_success of one probe, as Prometheus would scrape it from the Probe's prober URL. */
  async function probe(module: string, target: string): Promise<number> {
    const res = await fetch(`${exporterUrl}/probe?${new URLSearchParams({ module, target })}`);
    const text = await res.text();
    const m = /^probe_success (\d+)$/m.exec(text);
    if (res.status !== 200 || !m)
      throw new Error(`no probe_success for ${module} ${target} (HTTP ${res.status}):\n${text}\n${exporterLog}`);
    return Number(m[1]);
  }

  /** The exporter's module and target of a ProbeTarget, as the component resolves them. */
  const resolved = (t: Omit<ProbeTarget, "service" | "workload">) => {
    const [r] = resolveTargets({
      domain: DOMAIN,
      ingressServiceUrl: `https://127.0.0.1:${port.ingress}`,
      targets: [{ service: "sprov", workload: "sprov", ...t }],
    });
    return { module: r.via === "ingress" ? `ingress_${r.module}` : r.module, target: r.proberTarget };
  };

  it("passes blackbox_exporter --config.check, which refuses a broken configuration (the check can fail)", () => {
    const good = run(bin, ["--config.check", `--config.file=${configFile(DOMAIN)}`]);
    expect(good.output).toMatch(/Config file is ok/);
    expect(good.ok).toBe(true);
    const broken = path.join(dir, "broken.yml");
    const config = YAML.parse(renderBlackboxConfig(DOMAIN));
    config.modules.http_reachable.http.valid_status_kodes = [200];
    fs.writeFileSync(broken, YAML.stringify(config));
    expect(run(bin, ["--config.check", `--config.file=${broken}`]).ok).toBe(false);
  });

  it("http_2xx: succeeds on 200 only (not 401, 503, a redirect or a closed port)", async () => {
    expect(await probe("http_2xx", `http://127.0.0.1:${port.ok}/`)).toBe(1);
    expect(await probe("http_2xx", `http://127.0.0.1:${port.unauthorised}/`)).toBe(0);
    expect(await probe("http_2xx", `http://127.0.0.1:${port.unavailable}/`)).toBe(0);
    expect(await probe("http_2xx", `http://127.0.0.1:${port.redirect}/`)).toBe(0);
    expect(await probe("http_2xx", `http://127.0.0.1:${port.closed}/`)).toBe(0);
  });

  it("http_reachable: succeeds on any answer of the application (200, 401, its 404, a redirect, not followed); fails on 503 and a closed port", async () => {
    expect(await probe("http_reachable", `http://127.0.0.1:${port.ok}/`)).toBe(1);
    expect(await probe("http_reachable", `http://127.0.0.1:${port.unauthorised}/`)).toBe(1);
    expect(await probe("http_reachable", `http://127.0.0.1:${port.appNotFound}/`)).toBe(1);
    // The redirect leads to the 503 server: success means the probe judged the 302 itself.
    expect(await probe("http_reachable", `http://127.0.0.1:${port.redirect}/`)).toBe(1);
    expect(await probe("http_reachable", `http://127.0.0.1:${port.unavailable}/`)).toBe(0);
    expect(await probe("http_reachable", `http://127.0.0.1:${port.closed}/`)).toBe(0);
    expect(REACHABLE_STATUS_CODES).not.toContain(502);
    expect(REACHABLE_STATUS_CODES).not.toContain(503);
    expect(REACHABLE_STATUS_CODES).not.toContain(504);
  });

  it("tcp_connect: succeeds on a listening port, fails on a closed one", async () => {
    expect(await probe("tcp_connect", `127.0.0.1:${port.unavailable}`)).toBe(1);
    expect(await probe("tcp_connect", `127.0.0.1:${port.closed}`)).toBe(0);
  });

  it("ingress probes ask the ingress controller's address with the platform's name as Host header and TLS server name", async () => {
    seen.length = 0;
    const prov = resolved({ via: "ingress", target: "/prov/", module: "http_2xx" });
    expect(prov).toEqual({ module: "ingress_http_2xx", target: `https://127.0.0.1:${port.ingress}/prov/` });
    expect(await probe(prov.module, prov.target)).toBe(1);
    expect(seen).toEqual([{ host: DOMAIN, servername: DOMAIN }]);
    // The self-signed certificate is accepted: trust and expiry are the certificate alerts' business.
  });

  it("ingress_http_2xx and ingress_http_reachable judge the route's answer; Traefik's 404 and 5xx fail", async () => {
    const check = async (module: "http_2xx" | "http_reachable", target: string) => {
      const r = resolved({ via: "ingress", target, module });
      return probe(r.module, r.target);
    };
    expect(await check("http_2xx", "/d4p-registry/")).toBe(0);
    expect(await check("http_reachable", "/prov/")).toBe(1);
    expect(await check("http_reachable", "/d4p-registry/")).toBe(1);
    expect(await check("http_reachable", "/app-404/")).toBe(1);
    // No router for the path: Traefik's own 404 is no answer of the application.
    expect(await check("http_reachable", "/no-such-route/")).toBe(0);
    expect(await check("http_reachable", "/down/")).toBe(0);
    expect(await check("http_reachable", "/gateway/")).toBe(0);
  });

  it("ingress probes fail without the platform's name (another domain's configuration) and over plain HTTP", async () => {
    const other = await freePort();
    const second = spawn(bin, [`--config.file=${configFile("other.example.org")}`, `--web.listen-address=127.0.0.1:${other}`], {
      stdio: "ignore",
    });
    try {
      let text = "";
      for (let i = 0; i < 100 && !text; i++) {
        try {
          const res = await fetch(
            `http://127.0.0.1:${other}/probe?${new URLSearchParams({ module: "ingress_http_reachable", target: `https://127.0.0.1:${port.ingress}/prov/` })}`,
          );
          text = await res.text();
        } catch {
          await new Promise((r) => setTimeout(r, 100));
        }
      }
      expect(text).toMatch(/^probe_success 0$/m);
      expect(seen[seen.length - 1]).toEqual({ host: "other.example.org", servername: "other.example.org" });
    } finally {
      const exited = new Promise((r) => second.once("exit", r));
      second.kill("SIGTERM");
      await exited;
    }
    // fail_if_not_ssl: an ingress probe that reached a plain HTTP listener fails even on 200.
    expect(await probe("ingress_http_2xx", `http://127.0.0.1:${port.ok}/`)).toBe(0);
  });
});
