import * as k8s from "@pulumi/kubernetes";
import { SITE_CONFIG } from "../support/site";
import { ConfigError, loadConfig } from "../../lib/config";
import { NAMESPACES } from "../../lib/namespaces";
import { allowTraffic, DEFAULT_DENY_POLICY, NamespaceIsolation } from "../../lib/network-policies";
import { INGRESS_CLASS, INGRESS_POD_LABELS, PLAIN_HTTP_ANNOTATIONS } from "../../components/networking";
import { CHARTS } from "../../lib/pins";
import { ACME_SERVERS, CA_ISSUER, dareCertificateAuthority, Security, SecurityArgs } from "../../components/security";
import { BLOCK_STORAGE_CLASS } from "../../components/storage";
import { RecordedResource, SECRET_SIG, SPECIAL_SIG_KEY } from "../../tools/mocks";
import { validateHelmValues } from "../../tools/validate/helm-values";
import { isSecretOutput, ofType, redacted, runMocked, valueOf } from "../support/mocked";

const provider = () => new k8s.Provider("test", { kubeconfig: "{}" });
const args = (over: Partial<SecurityArgs> = {}): SecurityArgs => ({
  provider: provider(),
  ca: dareCertificateAuthority("dare-test"),
  domain: "dare.example.org",
  ingressClassName: INGRESS_CLASS,
  tlsIssuer: "letsencrypt-staging",
  acmeEmail: "ops@example.org",
  harbor: { enabled: true, registrySizeGb: 120 },
  storageClass: BLOCK_STORAGE_CLASS,
  ...over,
});
const releases = (resources: RecordedResource[]) => ofType(resources, "kubernetes:helm.sh/v3:Release").map((r) => redacted(r));
const issuers = (resources: RecordedResource[]) => ofType(resources, "kubernetes:cert-manager.io/v1:ClusterIssuer").map((r) => redacted(r));
const isSecret = (v: any) => v !== null && typeof v === "object" && v[SPECIAL_SIG_KEY] === SECRET_SIG;

describe("cert-manager and the ClusterIssuers", () => {
  let resources: RecordedResource[];
  let security: Security;
  let caSecret: boolean;
  beforeAll(async () => {
    resources = await runMocked(async () => {
      security = new Security("security", args());
      caSecret = await isSecretOutput(security.caCertificate);
    });
  });

  it("installs the pinned cert-manager chart with its CRDs", () => {
    const [certManager] = releases(resources).filter((r) => r.chart === "cert-manager");
    expect(certManager.version).toBe("v1.21.1");
    expect(certManager.namespace).toBe(NAMESPACES.certManager.name);
    expect(certManager.values.crds.enabled).toBe(true);
    expect(validateHelmValues(certManager)).toEqual([]);
  });

  it("offers Let's Encrypt staging and production over HTTP-01 through the ingress class, and the self-signed CA", () => {
    const byName = new Map(issuers(resources).map((i) => [i.metadata.name, i]));
    expect([...byName.keys()].sort()).toEqual([CA_ISSUER, "letsencrypt-prod", "letsencrypt-staging"]);
    for (const name of ["letsencrypt-staging", "letsencrypt-prod"] as const) {
      const acme = byName.get(name).spec.acme;
      expect(acme.server).toBe(ACME_SERVERS[name]);
      expect(acme.email).toBe("ops@example.org");
      // Solvers answer on plain HTTP (port 80), where every other route redirects to HTTPS.
      expect(acme.solvers).toEqual([
        {
          http01: { ingress: { ingressClassName: INGRESS_CLASS, ingressTemplate: { metadata: { annotations: PLAIN_HTTP_ANNOTATIONS } } } },
        },
      ]);
    }
    expect(byName.get("letsencrypt-staging").spec.acme.server).toMatch(/staging/);
    expect(byName.get("letsencrypt-prod").spec.acme.server).not.toMatch(/staging/);
    expect(byName.get(CA_ISSUER).spec.ca.secretName).toBe(CA_ISSUER);
  });

  it("keeps the CA's key in a Secret of cert-manager's namespace and offers its certificate as an output", () => {
    const [secret] = ofType(resources, "kubernetes:core/v1:Secret")
      .map((r) => r.inputs as any)
      .filter((s) => s.metadata.name === CA_ISSUER);
    expect(secret.metadata.namespace).toBe(NAMESPACES.certManager.name);
    expect(secret.type).toBe("kubernetes.io/tls");
    expect(isSecret(secret.stringData) || isSecret(secret.stringData["tls.key"])).toBe(true);
    expect(caSecret).toBe(true);
  });

  it("hands the configured issuer to the layers that publish endpoints", () => {
    expect(security.clusterIssuer).toBe("letsencrypt-staging");
  });
});

describe("Harbor", () => {
  let resources: RecordedResource[];
  let harbor: any;
  let adminPasswordSecret: boolean;
  beforeAll(async () => {
    resources = await runMocked(async () => {
      const security = new Security("security", args({ tlsIssuer: "letsencrypt-prod" }));
      adminPasswordSecret = await isSecretOutput(security.harborAdminPassword!);
      expect(security.harborUrl).toBe("https://harbor.dare.example.org");
      expect(await valueOf(security.harborAdminPassword!)).toHaveLength(24);
    });
    harbor = releases(resources).find((r) => r.chart === "harbor");
  });

  it("is the pinned chart with Trivy, values the chart knows", () => {
    expect(harbor.version).toBe(CHARTS.harbor.version);
    expect(harbor.values.trivy.enabled).toBe(true);
    // Single-node volumes: an upgrade must stop the old pod before the new one mounts them.
    expect(harbor.values.updateStrategy).toEqual({ type: "Recreate" });
    expect(validateHelmValues(harbor)).toEqual([]);
  });

  it("is served through the ingress class with a certificate from the chosen issuer", () => {
    const expose = harbor.values.expose;
    expect(expose.type).toBe("ingress");
    expect(expose.ingress.className).toBe(INGRESS_CLASS);
    expect(expose.ingress.hosts.core).toBe("harbor.dare.example.org");
    expect(expose.ingress.annotations["cert-manager.io/cluster-issuer"]).toBe("letsencrypt-prod");
    expect(expose.tls).toMatchObject({ enabled: true, certSource: "secret" });
    expect(harbor.values.externalURL).toBe("https://harbor.dare.example.org");
  });

  it("keeps every volume on Ceph block storage, the registry at the configured size", () => {
    const claims = harbor.values.persistence.persistentVolumeClaim;
    const all = [claims.registry, claims.jobservice.jobLog, claims.database, claims.redis, claims.trivy];
    expect(all.every((c: any) => c.storageClass === BLOCK_STORAGE_CLASS)).toBe(true);
    expect(claims.registry.size).toBe("120Gi");
  });

  it("generates the admin password and every internal secret; the chart's public defaults never apply", () => {
    expect(adminPasswordSecret).toBe(true);
    const raw = ofType(resources, "kubernetes:helm.sh/v3:Release")
      .map((r) => r.inputs as any)
      .find((r) => r.chart === "harbor").values;
    for (const value of [
      raw.database.internal.password,
      raw.core.secret,
      raw.core.xsrfKey,
      raw.jobservice.secret,
      raw.registry.secret,
      raw.registry.credentials.password,
      raw.registry.credentials.htpasswdString,
    ]) {
      expect(isSecret(value)).toBe(true);
    }
    const [admin] = ofType(resources, "kubernetes:core/v1:Secret")
      .map((r) => r.inputs as any)
      .filter((s) => s.metadata.name === harbor.values.existingSecretAdminPassword);
    expect(isSecret(admin.stringData) || isSecret(admin.stringData[harbor.values.existingSecretAdminPasswordKey])).toBe(true);
    expect(harbor.values.existingSecretSecretKey).toBeTruthy();
    const text = JSON.stringify(harbor.values);
    for (const publicDefault of ["Harbor12345", "changeit", "not-a-secure-key", "harbor_registry_password"])
      expect(text).not.toContain(publicDefault);
  });

  it("isolates Harbor's namespace: default deny, with the ingress controller, monitoring and Harbor itself let in", () => {
    const policies = ofType(resources, "kubernetes:networking.k8s.io/v1:NetworkPolicy")
      .map((r) => redacted(r))
      .filter((p) => p.metadata.namespace === NAMESPACES.harbor.name);
    expect(policies.map((p) => p.metadata.name).sort()).toEqual([
      "allow-from-ingress-controller",
      "allow-from-monitoring",
      "allow-within-namespace",
      DEFAULT_DENY_POLICY,
    ]);
    const ns = ofType(resources, "kubernetes:core/v1:Namespace")
      .map((r) => redacted(r))
      .find((n) => n.metadata.name === NAMESPACES.harbor.name);
    expect(ns.metadata.labels["pod-security.kubernetes.io/enforce"]).toBe(NAMESPACES.harbor.podSecurity);
  });

  it("is absent when switched off", async () => {
    const off = await runMocked(() => new Security("security", args({ harbor: { enabled: false, registrySizeGb: 50 } })));
    expect(releases(off).map((r) => r.chart)).toEqual(["cert-manager"]);
    expect(ofType(off, "kubernetes:core/v1:Namespace").map((r) => redacted(r).metadata.name)).toEqual([NAMESPACES.certManager.name]);
  });
});

describe("argument and config checks", () => {
  it("rejects a Let's Encrypt issuer without an e-mail in the constructor", async () => {
    let error: unknown;
    const resources = await runMocked(() => {
      try {
        new Security("security", args({ acmeEmail: "" }));
      } catch (e) {
        error = e;
      }
    });
    expect(String(error)).toMatch(/needs an ACME account e-mail/);
    expect(resources.filter((r) => r.type.startsWith("kubernetes:"))).toHaveLength(0);
  });

  it("accepts the self-signed CA without an e-mail", async () => {
    const resources = await runMocked(
      () => new Security("security", args({ tlsIssuer: CA_ISSUER, acmeEmail: "", harbor: { enabled: false, registrySizeGb: 1 } })),
    );
    expect(issuers(resources).find((i) => i.metadata.name === "letsencrypt-prod").spec.acme.email).toBeUndefined();
  });

  it("the loader names tlsIssuer and acmeEmail problems in one message", () => {
    const values: Record<string, unknown> = {
      domain: "dare.example.org",
      adminCidrs: ["192.0.2.0/24"],
      ...SITE_CONFIG,
      tlsIssuer: "letsencrypt",
      acmeEmail: "not-an-address",
    };
    let error: ConfigError | undefined;
    try {
      loadConfig({ stack: "t", get: (k) => (values[k] === undefined ? undefined : JSON.stringify(values[k])) });
    } catch (e) {
      error = e as ConfigError;
    }
    expect(error?.problems.map((p) => p.key).sort()).toEqual(["acmeEmail", "tlsIssuer"]);
    values.tlsIssuer = "letsencrypt-prod";
    delete values.acmeEmail;
    try {
      loadConfig({ stack: "t", get: (k) => (values[k] === undefined ? undefined : JSON.stringify(values[k])) });
    } catch (e) {
      error = e as ConfigError;
    }
    expect(error?.problems.map((p) => p.key)).toEqual(["acmeEmail"]);
  });
});

/** Which pods a set of NetworkPolicies lets reach `to` (matchLabels only, as the helpers write them). */
function admits(
  policies: any[],
  from: { namespace: string; labels: Record<string, string> },
  to: { namespace: string; labels: Record<string, string> },
  port: number,
): boolean {
  const matches = (selector: any, labels: Record<string, string>) =>
    Object.entries(selector?.matchLabels ?? {}).every(([k, v]) => labels[k] === v);
  const nsLabels = (ns: string) => ({ "kubernetes.io/metadata.name": ns });
  const selecting = policies.filter(
    (p) => p.metadata.namespace === to.namespace && matches(p.spec.podSelector, to.labels) && p.spec.policyTypes.includes("Ingress"),
  );
  if (selecting.length === 0) return true;
  return selecting.some((p) =>
    (p.spec.ingress ?? []).some(
      (rule: any) =>
        (rule.ports === undefined || rule.ports.some((pt: any) => pt.port === port)) &&
        rule.from.some(
          (peer: any) =>
            (peer.namespaceSelector ? matches(peer.namespaceSelector, nsLabels(from.namespace)) : from.namespace === to.namespace) &&
            (peer.podSelector ? matches(peer.podSelector, from.labels) : true),
        ),
    ),
  );
}

describe("network policy helpers", () => {
  let policies: any[];
  beforeAll(async () => {
    const resources = await runMocked(() => {
      const p = provider();
      new NamespaceIsolation("dare", { provider: p, namespace: "dare" });
      allowTraffic(
        "allow-login-to-registry",
        {
          namespace: "dare",
          to: { app: "d4p-registry" },
          from: [{ podLabels: { app: "dare-login" } }],
          ports: [8000],
        },
        { provider: p },
      );
    });
    policies = ofType(resources, "kubernetes:networking.k8s.io/v1:NetworkPolicy").map((r) => redacted(r));
  });
  const registry = { namespace: "dare", labels: { app: "d4p-registry" } };

  it("denies by default, in the namespace only", () => {
    expect(policies.find((p) => p.metadata.name === DEFAULT_DENY_POLICY).spec).toEqual({ podSelector: {}, policyTypes: ["Ingress"] });
    expect(admits(policies, { namespace: "dare", labels: { app: "exec-api" } }, registry, 8000)).toBe(false);
    expect(admits(policies, { namespace: "keycloak", labels: { app: "keycloak" } }, registry, 8000)).toBe(false);
    expect(admits(policies, { namespace: "dare", labels: {} }, { namespace: "keycloak", labels: {} }, 8080)).toBe(true);
  });

  it("lets the ingress controller and monitoring in, and nobody posing as them from elsewhere", () => {
    expect(admits(policies, { namespace: NAMESPACES.ingress.name, labels: { ...INGRESS_POD_LABELS } }, registry, 8000)).toBe(true);
    expect(admits(policies, { namespace: "dare", labels: { ...INGRESS_POD_LABELS } }, registry, 8000)).toBe(false);
    expect(admits(policies, { namespace: NAMESPACES.monitoring.name, labels: { app: "prometheus" } }, registry, 9100)).toBe(true);
  });

  it("allows an explicit service-to-service call on its port only", () => {
    expect(admits(policies, { namespace: "dare", labels: { app: "dare-login" } }, registry, 8000)).toBe(true);
    expect(admits(policies, { namespace: "dare", labels: { app: "dare-login" } }, registry, 22)).toBe(false);
    expect(
      admits(policies, { namespace: "dare", labels: { app: "dare-login" } }, { namespace: "dare", labels: { app: "exec-api" } }, 80),
    ).toBe(false);
  });

  it("refuses an allow rule without callers or ports", () => {
    expect(() => allowTraffic("empty", { namespace: "dare", to: { app: "x" }, from: [], ports: [80] }, {})).toThrow(/at least one caller/);
  });
});
