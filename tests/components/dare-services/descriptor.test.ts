/**
 * Adding a stateless DARE service is one descriptor (components/dare-services/workloads.ts: its name in
 * DARE_WORKLOADS and its entry in WORKLOADS) and its image default (lib/config-keys.ts,
 * dare:images). Here an `example-api` is added that way, under mocks, and the DARE layer is rendered:
 * it gets its Deployment, Service, route, NetworkPolicies per its calls, environment and probes, and the
 * configuration knows it, with nothing else edited.
 */
import * as YAML from "yaml";
import { CONFIG_KEYS, pulumiYamlConfig } from "../../../lib/config-keys";
import { CALL_GRAPH, probeTargets } from "../../../components/dare-services";
import { DARE_WORKLOADS, DareWorkload, WORKLOADS } from "../../../components/dare-services/workloads";
import { generateReference } from "../../../tools/config-reference";
import { Built, buildDareLayer, configFrom } from "../../support/dare-fixture";
import { allowed, Endpoint } from "../../support/netpol";

// The descriptor, added to the table as a new service's author would add it.
jest.mock("../../../components/dare-services/workloads", () => {
  const actual = jest.requireActual("../../../components/dare-services/workloads");
  const descriptor = {
    kind: "Deployment",
    monitoringService: "example-api",
    serviceName: "example-api",
    port: 8080,
    portSource: { guess: "a service made up for this test" },
    routes: { paths: ["/example-api"], strip: true, source: { guess: "made up" } },
    health: { http: "/healthz", source: { guess: "made up" } },
    calls: ["dare-login", "sprov", "internet-https"],
    env: { GREETING: { value: "hello" }, SPROV_HOST: { serviceHost: "sprov" }, SPROV_PORT: { servicePort: "sprov" } },
  };
  return {
    ...actual,
    DARE_WORKLOADS: [...actual.DARE_WORKLOADS, "example-api"],
    WORKLOADS: { ...actual.WORKLOADS, "example-api": descriptor },
  };
});
// Its image default, one entry of dare:images' declared default.
jest.mock("../../../lib/config-keys", () => {
  const actual = jest.requireActual("../../../lib/config-keys");
  actual.CONFIG_KEYS.images.default["example-api"] = "registry.example.org/example-api:1.0";
  return actual;
});

jest.setTimeout(120_000);

const EXAMPLE = "example-api" as DareWorkload;
const DARE_NS = "dare";

let built: Built;
beforeAll(async () => {
  built = await buildDareLayer(configFrom({}));
});

const object = (kind: string, name: string) => built.objects.find((o) => o.kind === kind && o.metadata.name === name);

it("is in the table the rest is derived from", () => {
  expect(DARE_WORKLOADS).toContain(EXAMPLE);
  expect(WORKLOADS[EXAMPLE].port).toBe(8080);
  expect(CALL_GRAPH).toEqual(
    expect.arrayContaining([
      [EXAMPLE, "dare-login"],
      [EXAMPLE, "sprov"],
      [EXAMPLE, "internet-https"],
      ["ingress-controller", EXAMPLE],
      ["monitoring", EXAMPLE],
    ]),
  );
});

it("gets a Deployment with its image, environment and health probes, and a Service", () => {
  const deployment = object("Deployment", EXAMPLE);
  expect(deployment.metadata.namespace).toBe(DARE_NS);
  const container = deployment.spec.template.spec.containers[0];
  expect(container.image).toBe("registry.example.org/example-api:1.0");
  expect(container.env).toEqual([
    { name: "GREETING", value: "hello" },
    { name: "SPROV_HOST", value: "sprov.dare.svc" },
    { name: "SPROV_PORT", value: "8082" },
  ]);
  expect(container.readinessProbe.httpGet).toEqual({ path: "/healthz", port: 8080 });
  expect(container.livenessProbe.httpGet).toEqual({ path: "/healthz", port: 8080 });
  expect(deployment.spec.template.spec.automountServiceAccountToken).toBe(false);
  expect(object("Service", EXAMPLE).spec.ports).toEqual([{ name: "main", port: 8080, targetPort: 8080 }]);
});

it("is routed at its path, with the prefix stripped", () => {
  const paths = object("Ingress", "dare").spec.rules[0].http.paths;
  expect(paths).toContainEqual({
    path: "/example-api",
    pathType: "Prefix",
    backend: { service: { name: EXAMPLE, port: { number: 8080 } } },
  });
  expect(object("Middleware", "strip-prefix").spec.stripPrefix.prefixes).toContain("/example-api");
});

it("may make exactly its calls, and is reached by the ingress controller and the prober only", () => {
  const policies = built.objects.filter((o) => o.kind === "NetworkPolicy");
  const pod = (name: string): Endpoint => {
    const tpl = object("Deployment", name).spec.template;
    return { ns: DARE_NS, labels: tpl.metadata.labels, port: tpl.spec.containers[0].ports[0].containerPort };
  };
  const example = pod(EXAMPLE);
  expect(allowed(policies, example, pod("dare-login"))).toBe(true);
  expect(allowed(policies, example, pod("sprov"))).toBe(true);
  expect(allowed(policies, example, { ns: "", labels: undefined as any, ip: "198.51.100.7", port: 443 })).toBe(true);
  expect(allowed(policies, example, pod("exec-api"))).toBe(false);
  expect(allowed(policies, example, { ns: "", labels: undefined as any, ip: "198.51.100.7", port: 80 })).toBe(false);
  expect(allowed(policies, pod("exec-api"), example)).toBe(false);
  const traefik = { ns: "traefik", labels: { "app.kubernetes.io/name": "traefik" }, port: 8443 };
  const prober = { ns: "monitoring", labels: { "app.kubernetes.io/name": "blackbox-exporter" }, port: 9115 };
  expect(allowed(policies, traefik, example)).toBe(true);
  expect(allowed(policies, prober, example)).toBe(true);
});

it("is probed by the blackbox exporter, on its Service and through the ingress", () => {
  const config = configFrom({});
  const ports = Object.fromEntries(DARE_WORKLOADS.map((w) => [w, config.dare.services[w].port])) as Record<DareWorkload, number>;
  expect(probeTargets(DARE_NS, ports).filter((t) => t.workload === EXAMPLE)).toEqual([
    { service: EXAMPLE, workload: EXAMPLE, via: "cluster", target: "http://example-api.dare.svc:8080/healthz", module: "http_2xx" },
    { service: EXAMPLE, workload: EXAMPLE, via: "ingress", target: "/example-api/healthz", module: "http_2xx" },
  ]);
});

it("is configured through dare:images and dare:services like the others", () => {
  const config = configFrom({ services: { [EXAMPLE]: { replicas: 2 } } });
  expect(config.dare.images[EXAMPLE as keyof typeof config.dare.images]).toBe("registry.example.org/example-api:1.0");
  expect(config.dare.services[EXAMPLE]).toMatchObject({ replicas: 2, port: 8080 });
  expect(CONFIG_KEYS.images.default).toHaveProperty(EXAMPLE);
  const reference = generateReference(YAML.stringify({ name: "dare", config: pulumiYamlConfig() }));
  expect(reference).toContain("example-api: registry.example.org/example-api:1.0");
});
