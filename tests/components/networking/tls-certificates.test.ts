/**
 * Certificates on the rendered stacks (testbed and production use Let's Encrypt over HTTP-01):
 * cert-manager's solver pods must be reachable from Traefik through every namespace's
 * NetworkPolicies, evaluated here with Kubernetes' NetworkPolicy semantics; and dare:domain, which
 * Keycloak, Grafana and the DARE services share, is ordered once (Let's Encrypt issues at most 5
 * certificates a week for one exact set of names), then served by Traefik as its default certificate.
 */
import * as fs from "fs";
import * as path from "path";
import * as YAML from "yaml";
import { NAMESPACES } from "../../../lib/namespaces";
import { INGRESS_POD_LABELS } from "../../../components/networking";
import { readTree, render } from "../../support/render";

jest.setTimeout(240_000);

const STACKS = ["testbed", "production"] as const;
type Stack = (typeof STACKS)[number];
const SOLVER_LABELS = { "acme.cert-manager.io/http01-solver": "true" };
const SOLVER_PORT = 8089;
/** Traefik's pods as its chart labels them. */
const TRAEFIK = { namespace: NAMESPACES.ingress.name, labels: { ...INGRESS_POD_LABELS, "app.kubernetes.io/instance": "traefik-traefik" } };

interface Rendered {
  objects: any[];
  releases: any[];
  domain: string;
}
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
    const outputs = JSON.parse(fs.readFileSync(path.join(result.dir, "outputs.json"), "utf8"));
    rendered[stack] = { objects, releases, domain: new URL(outputs.dareUrl).hostname };
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
      case "In":
        return e.values!.includes(labels[e.key]);
      case "NotIn":
        return !(e.key in labels) || !e.values!.includes(labels[e.key]);
      case "Exists":
        return e.key in labels;
      case "DoesNotExist":
        return !(e.key in labels);
      default:
        throw new Error(`operator ${e.operator}`);
    }
  });
  return byLabels && byExpressions;
}

interface Pod {
  namespace: string;
  labels: Record<string, string>;
}

/** Whether the NetworkPolicies let `from` open a TCP connection to `to` on `port`. */
function admits(objects: any[], from: Pod, to: Pod, port: number): boolean {
  const nsLabels = (ns: string): Record<string, string> => ({
    ...(objects.find((o) => o.kind === "Namespace" && o.metadata.name === ns)?.metadata.labels ?? {}),
    "kubernetes.io/metadata.name": ns,
  });
  const applying = objects.filter(
    (o) =>
      o.kind === "NetworkPolicy" &&
      o.metadata.namespace === to.namespace &&
      selects(o.spec.podSelector, to.labels) &&
      (o.spec.policyTypes ?? ["Ingress"]).includes("Ingress"),
  );
  // A pod no policy selects for ingress is not isolated.
  if (applying.length === 0) return true;
  return applying.some((policy) =>
    (policy.spec.ingress ?? []).some((rule: any) => {
      const peerOk =
        !rule.from?.length ||
        rule.from.some((peer: any) => {
          if (peer.ipBlock) return false;
          const nsOk = peer.namespaceSelector ? selects(peer.namespaceSelector, nsLabels(from.namespace)) : from.namespace === to.namespace;
          return nsOk && selects(peer.podSelector, from.labels);
        });
      const portOk =
        !rule.ports?.length ||
        rule.ports.some(
          (p: any) =>
            (p.protocol ?? "TCP") === "TCP" &&
            (p.port === undefined || p.port === port || (p.endPort !== undefined && port >= p.port && port <= p.endPort)),
        );
      return peerOk && portOk;
    }),
  );
}

describe.each(STACKS)("%s", (stack) => {
  const objects = () => rendered[stack].objects;
  const isolatedNamespaces = () => [
    ...new Set(
      objects()
        .filter(
          (o) =>
            o.kind === "NetworkPolicy" &&
            Object.keys(o.spec.podSelector ?? {}).length === 0 &&
            (o.spec.policyTypes ?? ["Ingress"]).includes("Ingress"),
        )
        .map((o) => o.metadata.namespace as string),
    ),
  ];

  it("uses Let's Encrypt over HTTP-01, so the solver pods matter", () => {
    const issuer = objects().find((o) => o.kind === "ClusterIssuer" && o.metadata.name.startsWith("letsencrypt-"));
    expect(issuer.spec.acme.solvers[0].http01).toBeDefined();
  });

  it("lets Traefik reach cert-manager's HTTP-01 solver pods on TCP 8089 in every namespace that denies by default", () => {
    const namespaces = isolatedNamespaces();
    expect(namespaces).toContain(NAMESPACES.dare.name);
    for (const namespace of namespaces) {
      const solver = {
        namespace,
        labels: { ...SOLVER_LABELS, "acme.cert-manager.io/http-domain": "1234", "acme.cert-manager.io/http-token": "5678" },
      };
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

/** Every node of a value tree. */
function* nodes(value: unknown): Generator<any> {
  if (Array.isArray(value)) for (const v of value) yield* nodes(v);
  else if (value && typeof value === "object") {
    yield value;
    for (const v of Object.values(value)) yield* nodes(v);
  }
}
const ISSUER_ANNOTATION = "cert-manager.io/cluster-issuer";
const hostsOf = (h: unknown): string[] =>
  (Array.isArray(h) ? h : h && typeof h === "object" ? Object.values(h) : []).filter((x): x is string => typeof x === "string");

describe.each(STACKS)("certificates of %s", (stack) => {
  const r = () => rendered[stack];
  /** Each certificate cert-manager will order: its exact set of names, whoever asks (a Certificate, or an annotated Ingress in objects or chart values). */
  const orders = (): Array<{ by: string; names: string }> => {
    const list: Array<{ by: string; names: string }> = [];
    for (const o of r().objects) {
      if (o.kind === "Certificate")
        list.push({ by: `Certificate ${o.metadata.namespace}/${o.metadata.name}`, names: [...o.spec.dnsNames].sort().join(",") });
      if (o.kind === "Ingress" && o.metadata.annotations?.[ISSUER_ANNOTATION]) {
        for (const tls of o.spec.tls ?? [])
          list.push({ by: `Ingress ${o.metadata.namespace}/${o.metadata.name}`, names: [...tls.hosts].sort().join(",") });
      }
    }
    for (const release of r().releases) {
      for (const node of nodes(release.values)) {
        if (node.annotations?.[ISSUER_ANNOTATION]) list.push({ by: `chart ${release.chart}`, names: hostsOf(node.hosts).sort().join(",") });
      }
    }
    return list;
  };

  it("orders dare:domain's certificate once, and no name set twice", () => {
    const all = orders();
    expect(all.filter((o) => o.names === r().domain)).toHaveLength(1);
    const counts = new Map<string, string[]>();
    for (const o of all) counts.set(o.names, [...(counts.get(o.names) ?? []), o.by]);
    expect([...counts.entries()].filter(([, by]) => by.length > 1)).toEqual([]);
  });

  it("makes that certificate Traefik's default, in the namespace of its Secret", () => {
    const [cert] = r().objects.filter((o) => o.kind === "Certificate" && o.spec.dnsNames.includes(r().domain));
    expect(cert.spec.issuerRef).toMatchObject({ kind: "ClusterIssuer", name: expect.stringMatching(/^letsencrypt-/) });
    // Traefik reads only the TLSStore named "default", and one of them in the whole cluster.
    const stores = r().objects.filter((o) => o.kind === "TLSStore" && o.metadata.name === "default");
    expect(stores).toHaveLength(1);
    expect(stores[0].metadata.namespace).toBe(cert.metadata.namespace);
    expect(stores[0].spec.defaultCertificate.secretName).toBe(cert.spec.secretName);
    expect(cert.metadata.namespace).toBe(TRAEFIK.namespace);
  });

  it("serves every route on dare:domain over TLS without a certificate of its own", () => {
    const onDomain = r().objects.filter((o) => o.kind === "Ingress" && o.spec.rules.some((rule: any) => rule.host === r().domain));
    const grafana = r().releases.find((x) => x.chart === "kube-prometheus-stack")!.values.grafana.ingress;
    const routes = [
      ...onDomain.map((o) => ({ by: `${o.metadata.namespace}/${o.metadata.name}`, tls: o.spec.tls })),
      { by: "grafana", tls: grafana.tls },
    ];
    expect(onDomain.map((o) => o.metadata.namespace).sort()).toEqual(
      [NAMESPACES.dare.name, NAMESPACES.keycloak.name, NAMESPACES.keycloak.name].sort(),
    );
    for (const { by, tls } of routes) {
      // A named Secret would be that namespace's own certificate (or none at all without an issuer annotation).
      expect({ by, tls }).toEqual({ by, tls: [{ hosts: [r().domain] }] });
    }
  });
});
