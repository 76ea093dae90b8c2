/**
 * Certificates on the rendered stacks (testbed and production use Let's Encrypt over HTTP-01):
 * cert-manager's solver pods must be reachable from Traefik through every namespace's
 * NetworkPolicies, evaluated here with Kubernetes' NetworkPolicy semantics.
 */
import * as fs from "fs";
import * as path from "path";
import * as YAML from "yaml";
import { NAMESPACES } from "../components/namespaces";
import { INGRESS_POD_LABELS } from "../components/networking";
import { readTree, render } from "./support/render";

jest.setTimeout(240_000);

const STACKS = ["testbed", "production"] as const;
type Stack = (typeof STACKS)[number];
const SOLVER_LABELS = { "acme.cert-manager.io/http01-solver": "true" };
const SOLVER_PORT = 8089;
/** Traefik's pods as its chart labels them. */
const TRAEFIK = { namespace: NAMESPACES.ingress.name, labels: { ...INGRESS_POD_LABELS, "app.kubernetes.io/instance": "traefik-traefik" } };

interface Rendered { objects: any[]; releases: any[] }
const rendered = {} as Record<Stack, Rendered>;

beforeAll(() => {
  for (const stack of STACKS) {
    const result = render(stack);
    if (result.status !== 0) throw new Error(`render ${stack}: ${result.stderr}`);
    const objects: any[] = [];
    const releases: any[] = [];
    for (const [file, text] of readTree(result.dir)) {
      if (file.startsWith(`kubernetes${path.sep}`)) objects.push(...YAML.parseAllDocuments(text).map((d) => d.toJS()));
      if (file.startsWith(`helm${path.sep}`)) releases.push(YAML.parse(text));
    }
    rendered[stack] = { objects, releases };
    fs.rmSync(path.dirname(result.dir), { recursive: true, force: true });
  }
});

type Selector = { matchLabels?: Record<string, string>; matchExpressions?: Array<{ key: string; operator: string; values?: string[] }> };
/** A label selector, as the API server reads it ({} selects everything). */
function selects(selector: Selector | undefined, labels: Record<string, string>): boolean {
  if (!selector) return true;
  const byLabels = Object.entries(selector.matchLabels ?? {}).every(([k, v]) => labels[k] === v);
  const byExpressions = (selector.matchExpressions ?? []).every((e) => {
    switch (e.operator) {
      case "In": return e.values!.includes(labels[e.key]);
      case "NotIn": return !(e.key in labels) || !e.values!.includes(labels[e.key]);
      case "Exists": return e.key in labels;
      case "DoesNotExist": return !(e.key in labels);
      default: throw new Error(`operator ${e.operator}`);
    }
  });
  return byLabels && byExpressions;
}

interface Pod { namespace: string; labels: Record<string, string> }

/** Whether the NetworkPolicies let `from` open a TCP connection to `to` on `port`. */
function admits(objects: any[], from: Pod, to: Pod, port: number): boolean {
  const nsLabels = (ns: string): Record<string, string> => ({
    ...(objects.find((o) => o.kind === "Namespace" && o.metadata.name === ns)?.metadata.labels ?? {}),
    "kubernetes.io/metadata.name": ns,
  });
  const applying = objects.filter((o) => o.kind === "NetworkPolicy" && o.metadata.namespace === to.namespace
    && selects(o.spec.podSelector, to.labels) && (o.spec.policyTypes ?? ["Ingress"]).includes("Ingress"));
  // A pod no policy selects for ingress is not isolated.
  if (applying.length === 0) return true;
  return applying.some((policy) => (policy.spec.ingress ?? []).some((rule: any) => {
    const peerOk = !rule.from?.length || rule.from.some((peer: any) => {
      if (peer.ipBlock) return false;
      const nsOk = peer.namespaceSelector ? selects(peer.namespaceSelector, nsLabels(from.namespace)) : from.namespace === to.namespace;
      return nsOk && selects(peer.podSelector, from.labels);
    });
    const portOk = !rule.ports?.length || rule.ports.some((p: any) => (p.protocol ?? "TCP") === "TCP"
      && (p.port === undefined || p.port === port || (p.endPort !== undefined && port >= p.port && port <= p.endPort)));
    return peerOk && portOk;
  }));
}

describe.each(STACKS)("%s", (stack) => {
  const objects = () => rendered[stack].objects;
  const isolatedNamespaces = () => [...new Set(objects().filter((o) => o.kind === "NetworkPolicy"
    && Object.keys(o.spec.podSelector ?? {}).length === 0 && (o.spec.policyTypes ?? ["Ingress"]).includes("Ingress"))
    .map((o) => o.metadata.namespace as string))];

  it("uses Let's Encrypt over HTTP-01, so the solver pods matter", () => {
    const issuer = objects().find((o) => o.kind === "ClusterIssuer" && o.metadata.name.startsWith("letsencrypt-"));
    expect(issuer.spec.acme.solvers[0].http01).toBeDefined();
  });

  it("lets Traefik reach cert-manager's HTTP-01 solver pods on TCP 8089 in every namespace that denies by default", () => {
    const namespaces = isolatedNamespaces();
    expect(namespaces).toContain(NAMESPACES.dare.name);
    for (const namespace of namespaces) {
      const solver = { namespace, labels: { ...SOLVER_LABELS, "acme.cert-manager.io/http-domain": "1234", "acme.cert-manager.io/http-token": "5678" } };
      expect({ namespace, admitted: admits(objects(), TRAEFIK, solver, SOLVER_PORT) }).toEqual({ namespace, admitted: true });
    }
  });

  it("admits nothing else that way: the allow is for the solver pods and from Traefik only", () => {
    const dare = NAMESPACES.dare.name;
    const solver = { namespace: dare, labels: SOLVER_LABELS };
    expect(admits(objects(), TRAEFIK, { namespace: dare, labels: { app: "not-a-solver" } }, SOLVER_PORT)).toBe(false);
    expect(admits(objects(), { namespace: dare, labels: { app: "playground" } }, solver, SOLVER_PORT)).toBe(false);
    expect(admits(objects(), TRAEFIK, solver, SOLVER_PORT + 1)).toBe(false);
  });
});
