/**
 * The A/A layer under Pulumi's mock runtime: the realm document, where the generated secrets go,
 * what the render shows, when keycloak-config-cli runs again, and the admin console's allow-list.
 */
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import * as k8s from "@pulumi/kubernetes";
import * as pulumi from "@pulumi/pulumi";
import { IdentityProviderSpec } from "../../lib/config";
import { Identity, IdentityArgs, idpSecretVariable, REALM } from "../../components/identity";
import { RecordedResource, SECRET_SIG, SPECIAL_SIG_KEY } from "../../tools/mocks";
import { renderFiles, writeFiles } from "../../tools/render-writer";
import { validateRenderDir } from "../../tools/validate";
import { DareServices } from "../../components/dare-services";
import { configFrom } from "../support/dare-fixture";
import { isSecretOutput, ofType, runMocked, unsecret, valueOf } from "../support/mocked";

const egi: IdentityProviderSpec = {
  protocol: "oidc",
  alias: "egi-checkin",
  displayName: "EGI Check-in",
  issuer: "https://aai.egi.eu/auth/realms/egi",
  authorizationUrl: "https://aai.egi.eu/auth/realms/egi/protocol/openid-connect/auth",
  tokenUrl: "https://aai.egi.eu/auth/realms/egi/protocol/openid-connect/token",
  jwksUrl: "https://aai.egi.eu/auth/realms/egi/protocol/openid-connect/certs",
  clientId: "dare-testbed",
  clientSecret: pulumi.secret("egi-client-secret-value-0123456789"),
};
const b2access: IdentityProviderSpec = {
  protocol: "saml",
  alias: "b2access",
  displayName: "EUDAT B2ACCESS",
  idpEntityId: "https://b2access.eudat.eu/saml-idp/metadata",
  singleSignOnServiceUrl: "https://b2access.eudat.eu/saml-idp/saml2webssoidp",
};

function args(over: Partial<IdentityArgs> = {}): IdentityArgs {
  return {
    domain: "dare.example.org",
    adminCidrs: ["192.0.2.0/24", "198.51.100.0/24"],
    identityProviders: [egi, b2access],
    replicas: 2,
    databaseInstances: 3,
    databaseSizeGb: 20,
    provider: undefined as unknown as k8s.Provider,
    ...over,
  };
}

async function build(a: IdentityArgs) {
  let identity: Identity | undefined;
  const resources = await runMocked(() => {
    identity = new Identity("identity", { ...a, provider: new k8s.Provider("test", { kubeconfig: "{}" }) });
  });
  return { resources, identity: identity! };
}

function k8sObject(resources: RecordedResource[], kind: string, name: string): any {
  const found = resources.filter(
    (r) => r.type.startsWith("kubernetes:") && (r.inputs as any).kind === kind && unsecret((r.inputs as any).metadata?.name) === name,
  );
  expect(found).toHaveLength(1);
  return found[0];
}

/** The Service both Keycloak Ingresses route to. */
function ingressBackend(resources: RecordedResource[]): string {
  const ingress = unsecret(ofType(resources, "kubernetes:networking.k8s.io/v1:Ingress")[0].inputs);
  return ingress.spec.rules[0].http.paths[0].backend.service.name;
}

function realmJob(resources: RecordedResource[]): any {
  const jobs = ofType(resources, "kubernetes:batch/v1:Job");
  expect(jobs).toHaveLength(1);
  return unsecret(jobs[0].inputs);
}

describe("Identity (Keycloak, realm dare)", () => {
  let resources: RecordedResource[];
  let identity: Identity;
  let realm: any;
  beforeAll(async () => {
    ({ resources, identity } = await build(args()));
    const map = unsecret(k8sObject(resources, "ConfigMap", `keycloak-realm-${REALM}`).inputs);
    realm = JSON.parse(map.data[`${REALM}.json`]);
  });

  it("imports realm dare with the confidential client dare-login and an admin", () => {
    expect(realm.realm).toBe("dare");
    const client = realm.clients.find((c: any) => c.clientId === "dare-login");
    expect(client).toMatchObject({ publicClient: false, clientAuthenticatorType: "client-secret", enabled: true });
    expect(client.redirectUris).toEqual(["https://dare.example.org/*"]);
    expect(client.webOrigins).toEqual(["https://dare.example.org"]);
    const admin = realm.users.find((u: any) => u.username === "dare-admin");
    expect(admin.enabled).toBe(true);
    expect(admin.clientRoles["realm-management"]).toContain("realm-admin");
    expect(admin.credentials[0]).toMatchObject({ type: "password", temporary: false });
  });

  it("hands dare-login the client secret and admin password config-cli gives Keycloak", async () => {
    const job = realmJob(resources);
    const container = job.spec.template.spec.containers[0];
    // The realm refers to variables; config-cli takes them from the Secret the Job loads.
    const client = realm.clients.find((c: any) => c.clientId === identity.dareLogin.clientId);
    const variable = (text: string) => /^\$\(env:([A-Z_]+)\)$/.exec(text)![1];
    const realmSecrets = unsecret(k8sObject(resources, "Secret", container.envFrom[0].secretRef.name).inputs).stringData;
    const clientSecret = realmSecrets[variable(client.secret)];
    expect(clientSecret).toMatch(/^[A-Za-z0-9]{32}$/);
    expect(await valueOf(identity.dareLogin.clientSecret)).toBe(clientSecret);
    const admin = realm.users.find((u: any) => u.username === identity.dareLogin.adminUsername);
    expect(await valueOf(identity.dareLogin.adminPassword)).toBe(realmSecrets[variable(admin.credentials[0].value)]);
    expect(realmSecrets[variable(admin.credentials[0].value)]).not.toBe(clientSecret);
    // In-cluster: dare-login's admin calls (/auth/admin/realms/dare/users) must not meet the admin allow-list.
    const service = ingressBackend(resources);
    expect(identity.dareLogin.url).toBe(`http://${service}.keycloak.svc/auth`);
  });

  it("keeps every secret a Pulumi secret, in the Secrets and in the outputs", async () => {
    for (const name of [`keycloak-realm-${REALM}-secrets`, "keycloak-admin", "keycloak-db-app"]) {
      const stringData = (k8sObject(resources, "Secret", name).inputs as any).stringData;
      const wrapped =
        stringData[SPECIAL_SIG_KEY] === SECRET_SIG || Object.values(stringData).some((v: any) => v?.[SPECIAL_SIG_KEY] === SECRET_SIG);
      expect(wrapped).toBe(true);
    }
    expect(await isSecretOutput(identity.clientSecret)).toBe(true);
    expect(await isSecretOutput(identity.keycloakAdmin.password)).toBe(true);
    expect(await isSecretOutput(identity.realmAdmin.password)).toBe(true);
    expect(await isSecretOutput(identity.dareLogin.clientSecret)).toBe(true);
  });

  it("renders without any secret in plain text, and the render passes validation", async () => {
    const files = await renderFiles(resources, {}, []);
    const text = Object.values(files).join("\n");
    const secrets = [
      await valueOf(identity.clientSecret),
      await valueOf(identity.keycloakAdmin.password),
      await valueOf(identity.realmAdmin.password),
      "egi-client-secret-value-0123456789",
    ];
    for (const s of secrets) expect(text).not.toContain(s);
    // The realm document itself is reviewable in the render.
    expect(Object.keys(files)).toContain("kubernetes/keycloak/configmap-keycloak-realm-dare.yaml");
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "identity-render-"));
    writeFiles(dir, files);
    expect(await validateRenderDir(dir)).toEqual([]);
  });

  it("brokers the configured OIDC provider with its secret from config and the SAML provider", () => {
    const oidc = realm.identityProviders.find((p: any) => p.alias === "egi-checkin");
    expect(oidc.providerId).toBe("oidc");
    expect(oidc.config).toMatchObject({ issuer: egi.protocol === "oidc" && egi.issuer, clientId: "dare-testbed" });
    expect(oidc.config.clientSecret).toBe(`$(env:${idpSecretVariable("egi-checkin")})`);
    const job = realmJob(resources);
    const realmSecrets = unsecret(k8sObject(resources, "Secret", job.spec.template.spec.containers[0].envFrom[0].secretRef.name).inputs);
    expect(realmSecrets.stringData[idpSecretVariable("egi-checkin")]).toBe("egi-client-secret-value-0123456789");
    const saml = realm.identityProviders.find((p: any) => p.alias === "b2access");
    expect(saml.providerId).toBe("saml");
    expect(saml.config.singleSignOnServiceUrl).toBe("https://b2access.eudat.eu/saml-idp/saml2webssoidp");
  });

  it("serves /auth with the chosen issuer and lets only adminCidrs reach /auth/admin", () => {
    const ingresses = ofType(resources, "kubernetes:networking.k8s.io/v1:Ingress").map((r) => unsecret(r.inputs));
    const byPath = (p: string) => ingresses.find((i) => i.spec.rules[0].http.paths[0].path === p);
    const publicIngress = byPath("/auth");
    const adminIngress = byPath("/auth/admin");
    // TLS with the domain's one certificate (Traefik's default): no certificate of Keycloak's own.
    for (const ing of [publicIngress, adminIngress]) {
      expect(ing.spec.tls).toEqual([{ hosts: ["dare.example.org"] }]);
      expect(ing.metadata.annotations?.["cert-manager.io/cluster-issuer"]).toBeUndefined();
    }
    expect(publicIngress.spec.rules[0].host).toBe("dare.example.org");
    expect(publicIngress.spec.ingressClassName).toBe("traefik");
    const middlewareRef = adminIngress.metadata.annotations["traefik.ingress.kubernetes.io/router.middlewares"];
    const [, ns, name] = /^([a-z0-9-]+?)-(admin-allowlist)@kubernetescrd$/.exec(middlewareRef)!;
    const middleware = unsecret(k8sObject(resources, "Middleware", name).inputs);
    expect(middleware.metadata.namespace).toBe(ns);
    expect(middleware.spec.ipAllowList.sourceRange).toEqual(["192.0.2.0/24", "198.51.100.0/24"]);
    // Both routes point at the Keycloak service.
    expect(adminIngress.spec.rules[0].http.paths[0].backend).toEqual(publicIngress.spec.rules[0].http.paths[0].backend);
  });

  it("lets only the ingress, monitoring, the namespace, the CNPG operator, dare-login and the database dumps connect", () => {
    const policies = ofType(resources, "kubernetes:networking.k8s.io/v1:NetworkPolicy")
      .map((r) => unsecret(r.inputs))
      .filter((p) => p.metadata.namespace === "keycloak");
    const deny = policies.find((p) => p.spec.ingress === undefined);
    expect(deny.spec.podSelector).toEqual({});
    const allowedInto = (labels: Record<string, string>, port: number) =>
      policies
        .filter(
          (p) =>
            p.spec.ingress &&
            Object.entries(p.spec.podSelector.matchLabels ?? {}).every(([k, v]) => labels[k] === v) &&
            p.spec.ingress.some((rule: any) => !rule.ports || rule.ports.some((x: any) => x.port === port)),
        )
        .flatMap((p) => p.spec.ingress.flatMap((rule: any) => rule.from));
    const keycloakPod = { "app.kubernetes.io/name": "keycloakx", "app.kubernetes.io/instance": "keycloak" };
    const callers = allowedInto(keycloakPod, 8080).map(
      (peer: any) => peer.namespaceSelector?.matchLabels?.["kubernetes.io/metadata.name"] ?? "(same)",
    );
    expect(callers.sort()).toEqual(["(same)", "dare", "monitoring", "traefik"]);
    const dbCallers = allowedInto({ "cnpg.io/cluster": "keycloak-db" }, 8000).map(
      (peer: any) => peer.namespaceSelector?.matchLabels?.["kubernetes.io/metadata.name"] ?? "(same)",
    );
    expect(dbCallers).toContain("cnpg-system");
    const dumpCallers = allowedInto({ "cnpg.io/cluster": "keycloak-db" }, 5432).map(
      (peer: any) => peer.namespaceSelector?.matchLabels?.["kubernetes.io/metadata.name"] ?? "(same)",
    );
    expect(dumpCallers.sort()).toEqual(["(same)", "dare-backups", "monitoring", "traefik"]);
  });

  it("runs Keycloak on the CloudNativePG cluster with the generated database password", () => {
    const release = unsecret(
      ofType(resources, "kubernetes:helm.sh/v3:Release").find((r) => (r.inputs as any).chart === "keycloakx")!.inputs,
    );
    const cluster = unsecret(k8sObject(resources, "Cluster", "keycloak-db").inputs);
    expect(cluster.spec.instances).toBe(3);
    // Replicated: CloudNativePG's own PodDisruptionBudget stays (a drain waits for a replica to take over).
    expect(cluster.spec.enablePDB).toBeUndefined();
    expect(release.values.database.hostname).toBe(`${cluster.metadata.name}-rw`);
    // The dump CronJob reaches the same read-write Service, as the database's owner.
    expect(identity.database.host).toBe(`${cluster.metadata.name}-rw.${cluster.metadata.namespace}.svc`);
    expect(identity.database).toMatchObject({
      database: cluster.spec.bootstrap.initdb.database,
      username: cluster.spec.bootstrap.initdb.owner,
    });
    expect(release.values.database.existingSecret).toBe(cluster.spec.bootstrap.initdb.secret.name);
    expect(release.values.replicas).toBe(2);
    expect(release.values.image.tag).toMatch(/^26\.\d+\.\d+$/);
  });
});

describe("realm configuration runs", () => {
  const jobName = async (a: IdentityArgs) => realmJob((await build(a)).resources).metadata.name as string;

  it("a second run with the same configuration declares the same Job (nothing to do)", async () => {
    expect(await jobName(args())).toBe(await jobName(args()));
  });

  it.each([
    ["the domain (redirect URIs)", { domain: "dare2.example.org" }],
    ["the identity providers", { identityProviders: [egi] }],
    [
      "an identity provider's secret",
      { identityProviders: [{ ...egi, clientSecret: pulumi.secret("rotated-secret-abcdefghij") } as IdentityProviderSpec, b2access] },
    ],
  ])("a change of %s declares a new Job, which applies it", async (_what, over) => {
    expect(await jobName(args(over as Partial<IdentityArgs>))).not.toBe(await jobName(args()));
  });
});

describe("Identity arguments", () => {
  it.each([
    // Aliases made in code, not by the loader (whose alias grammar has no "_").
    [{ identityProviders: [egi, { ...b2access, alias: "egi_checkin" }] }, /map to the same variable IDP_EGI_CHECKIN_CLIENT_SECRET/],
  ])("rejects %o", (over, message) => {
    const provider = new k8s.Provider("reject", { kubeconfig: "{}" });
    expect(() => new Identity("bad", { ...args(over as Partial<IdentityArgs>), provider })).toThrow(message);
  });
});

describe("with the DARE services layer", () => {
  it("gives Keycloak's client and dare-login's Secret one generated value", async () => {
    const config = configFrom({});
    let identity: Identity | undefined;
    const resources = await runMocked(() => {
      const provider = new k8s.Provider("test", { kubeconfig: "{}" });
      identity = new Identity("identity", { ...args(), provider });
      const dare = config.dare;
      new DareServices("dare", {
        provider,
        domain: config.domain,
        images: dare.images,
        services: dare.services,
        sharedFilesystemSize: dare.sharedFilesystemSize,
        jupyterhub: false,
        apiServerCidrs: ["10.10.0.10/32"],
        keycloak: identity.dareLogin,
        workflowInternetAccess: false,
      });
    });
    const job = realmJob(resources);
    const realmSecrets = unsecret(
      k8sObject(resources, "Secret", job.spec.template.spec.containers[0].envFrom[0].secretRef.name).inputs,
    ).stringData;
    const loginSecrets = resources
      .filter((r) => (r.inputs as any).kind === "Secret" && (r.inputs as any).metadata?.namespace === "dare")
      .map((r) => unsecret(r.inputs).stringData ?? {})
      .filter((d) => "CLIENT_SECRET" in d);
    expect(loginSecrets).toHaveLength(1);
    expect(loginSecrets[0].CLIENT_SECRET).toBe(realmSecrets.DARE_LOGIN_CLIENT_SECRET);
    expect(loginSecrets[0].ADMIN_PASSWORD).toBe(realmSecrets.DARE_ADMIN_PASSWORD);
    expect(loginSecrets[0].CLIENT_SECRET).toBe(await valueOf(identity!.clientSecret));
  });
});
