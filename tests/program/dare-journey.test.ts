/**
 * docs/dare-services.md, "End to end": every hop of a user's journey (sign in, register a PE, run a
 * workflow, see its provenance) is carried by what the render declares: the Service and port, the Ingress
 * route with Traefik's prefix handling, and the named NetworkPolicies, which must let the call through on
 * both sides.
 */
import * as fs from "fs";
import * as path from "path";
import { Built, buildDareLayer, configFrom } from "../support/dare-fixture";
import { allowed, Endpoint, matches } from "../support/netpol";

jest.setTimeout(120_000);

const DOC = path.join(__dirname, "..", "..", "docs", "dare-services.md");
const NS = "dare";

interface Hop {
  step: string;
  from: string;
  to: string;
  port: number;
  path?: { outside: string; inside: string };
  policies: string[];
}

function hops(): Hop[] {
  const text = fs.readFileSync(DOC, "utf8");
  const section = text.slice(text.indexOf("## End to end"));
  const rows = section.split("\n").filter((l) => /^\| \d+\./.test(l));
  return rows.map((row) => {
    const [step, from, to, route, policies] = row
      .split("|")
      .slice(1, -1)
      .map((c) => c.trim());
    const [toName, port] = to.split(":");
    const [outside, inside] = route === "—" ? [] : route.split(" → ").map((p) => p.trim());
    return {
      step,
      from,
      to: toName,
      port: Number(port),
      path: outside ? { outside, inside } : undefined,
      policies: policies.split(",").map((p) => p.trim()),
    };
  });
}

/** Peers outside the DARE namespace, as the cluster shows them. */
const OUTSIDE: Record<string, (port: number) => Endpoint> = {
  "ingress-controller": (port) => ({ ns: "traefik", labels: { "app.kubernetes.io/name": "traefik" }, port }),
  keycloak: (port) => ({ ns: "keycloak", labels: { "app.kubernetes.io/name": "keycloakx" }, port }),
  "kubernetes-api": (port) => ({ ns: "", labels: undefined as any, ip: "10.10.0.10", port }),
  "mpi-jobs": (port) => ({
    ns: NS,
    labels: { "training.kubeflow.org/operator-name": "mpi-operator", "training.kubeflow.org/job-role": "worker" },
    port,
  }),
};

let built: Built;
beforeAll(async () => {
  built = await buildDareLayer(configFrom({}));
});
const objects = (kind: string) => built.objects.filter((o) => o.kind === kind && o.metadata.namespace === NS);

/** The pods behind a Service, as an endpoint on the Service's target port. */
function serviceEndpoint(name: string, port: number): Endpoint {
  const svc = objects("Service").find((s) => s.metadata.name === name);
  if (!svc) throw new Error(`no Service ${name} in ${NS}`);
  const servicePort = svc.spec.ports.find((p: any) => p.port === port);
  if (!servicePort) throw new Error(`Service ${name} has no port ${port}`);
  const workloads = [...objects("Deployment"), ...objects("StatefulSet")].filter((w) =>
    matches({ matchLabels: svc.spec.selector }, w.spec.template.metadata.labels),
  );
  if (workloads.length !== 1) throw new Error(`Service ${name} selects ${workloads.length} workloads`);
  return { ns: NS, labels: workloads[0].spec.template.metadata.labels, port: servicePort.targetPort };
}

function endpoint(name: string, port = 0): Endpoint {
  return OUTSIDE[name]
    ? OUTSIDE[name](port)
    : serviceEndpoint(name, port || objects("Service").find((s) => s.metadata.name === name)?.spec.ports[0].port);
}

const journey = hops();

test("the document lists the whole journey", () => {
  expect(journey.length).toBeGreaterThanOrEqual(18);
  const steps = journey.map((h) => h.step).join(" ");
  for (const word of ["signs in", "registers a PE", "runs the workflow", "MPIJob", "provenance"]) expect(steps).toContain(word);
});

test.each(journey.map((h) => [h.step, h] as const))("%s", (_step, hop) => {
  const to = endpoint(hop.to, hop.port);
  const from = endpoint(hop.from);
  // The call gets through: the caller's egress and the callee's ingress.
  const policies = objects("NetworkPolicy");
  expect(allowed(policies, from, to)).toBe(true);
  // The named policies are the ones that decide it: without them, the call is refused.
  for (const name of hop.policies) expect(policies.map((p) => p.metadata.name)).toContain(name);
  expect(
    allowed(
      policies.filter((p) => !hop.policies.includes(p.metadata.name)),
      from,
      to,
    ),
  ).toBe(false);

  if (hop.path) {
    const [ingress] = objects("Ingress");
    const candidates = ingress.spec.rules[0].http.paths.filter((p: any) => hop.path!.outside.startsWith(p.path));
    // Traefik picks the longest matching prefix.
    const route = candidates.sort((a: any, b: any) => b.path.length - a.path.length)[0];
    expect(route.backend.service).toEqual({ name: hop.to, port: { number: hop.port } });
    const [middleware] = objects("Middleware");
    const stripped = (middleware.spec.stripPrefix.prefixes as string[]).find((p) => hop.path!.outside.startsWith(p));
    const inside = stripped ? hop.path.outside.slice(stripped.length) || "/" : hop.path.outside;
    expect(inside).toBe(hop.path.inside);
  }
});
