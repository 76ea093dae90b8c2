/**
 * Single sign-on (issue 15, item 6): Grafana, Harbor and JupyterHub log in through realm dare.
 * Under the mock runtime: the realm's clients and their exact redirect URIs, one generated secret per
 * client reaching Keycloak and the application as the same Pulumi secret, each application pointed at
 * the realm's endpoints, the local admin logins kept. Through the real render command: what an operator
 * sees, with no secret value in it.
 */
import * as fs from "fs";
import * as path from "path";
import * as k8s from "@pulumi/kubernetes";
import Ajv from "ajv";
import * as YAML from "yaml";
import { TlsIssuer } from "../../../lib/config";
import { DareServices, JUPYTERHUB_OAUTH_SECRET } from "../../../components/dare-services";
import {
  Identity,
  PLATFORM_ADMIN_ROLE,
  PLATFORM_ADMINS_GROUP,
  ROLES_CLAIM,
  SsoClients,
  realmEndpoints,
  ssoSecretVariable,
} from "../../../components/identity";
import { GRAFANA_OAUTH_SECRET, Monitoring } from "../../../components/monitoring";
import { NAMESPACES } from "../../../lib/namespaces";
import { INGRESS_CLASS } from "../../../components/networking";
import { dareCertificateAuthority, HARBOR_CA_BUNDLE_SECRET, HARBOR_OIDC_SECRET, Security } from "../../../components/security";
import { BLOCK_STORAGE_CLASS } from "../../../components/storage";
import { RecordedResource, SECRET_SIG, SPECIAL_SIG_KEY } from "../../../tools/mocks";
import { validateHelmValues } from "../../../tools/validate/helm-values";
import { configFrom } from "../../support/dare-fixture";
import { ofType, redacted, runMocked, unsecret } from "../../support/mocked";
import { render } from "../../support/render";
import { untgz } from "../../support/untgz";
import { allowed, Endpoint } from "../../support/netpol";
import { sharedDir } from "../../../tools/validate/shared";

const DOMAIN = "dare.example.org";

/** Helm's coalescing of maps: the release's values over the chart's defaults. */
function coalesce(defaults: any, over: any): any {
  if (!over || typeof over !== "object" || Array.isArray(over) || !defaults || typeof defaults !== "object" || Array.isArray(defaults))
    return over;
  const out: any = { ...defaults };
  for (const [k, v] of Object.entries(over)) out[k] = k in defaults ? coalesce(defaults[k], v) : v;
  return out;
}

/** Errors of z2jh 4.4.0's values.schema.json (draft-07, additionalProperties false almost everywhere) for these values. */
function z2jhSchemaErrors(values: unknown): string[] {
  const files = untgz(path.join(sharedDir(), "chart-mirror", "jupyterhub-4.4.0.tgz"));
  const schema = JSON.parse(files.get("jupyterhub/values.schema.json")!.toString("utf8"));
  const defaults = YAML.parse(files.get("jupyterhub/values.yaml")!.toString("utf8"));
  const validate = new Ajv({ allErrors: true, strict: false }).compile(schema);
  return validate(coalesce(defaults, values))
    ? []
    : (validate.errors ?? []).map((e) => `${e.instancePath} ${e.message} ${JSON.stringify(e.params)}`);
}
const isSecret = (v: unknown) => v !== null && typeof v === "object" && (v as any)[SPECIAL_SIG_KEY] === SECRET_SIG;

/** The platform's SSO-related layers, as program.ts wires them. */
async function platform(opts: { harbor: boolean; jupyterhub: boolean; tlsIssuer?: TlsIssuer }): Promise<RecordedResource[]> {
  return runMocked(() => {
    const provider = new k8s.Provider("test", { kubeconfig: "{}" });
    const sso = new SsoClients("sso", { domain: DOMAIN, harbor: opts.harbor, jupyterhub: opts.jupyterhub });
    new Security("security", {
      provider,
      ca: dareCertificateAuthority("dare-test"),
      domain: DOMAIN,
      ingressClassName: INGRESS_CLASS,
      tlsIssuer: opts.tlsIssuer ?? "letsencrypt-prod",
      acmeEmail: "ops@example.org",
      harbor: { enabled: opts.harbor, registrySizeGb: 50 },
      storageClass: BLOCK_STORAGE_CLASS,
      harborSso: sso.harbor,
    });
    new Identity("identity", {
      provider,
      domain: DOMAIN,
      adminCidrs: ["192.0.2.0/24"],
      identityProviders: [],
      replicas: 1,
      databaseInstances: 1,
      databaseSizeGb: 10,
      ssoClients: sso,
    });
    new Monitoring("monitoring", { provider, clusterName: "dare-test", domain: DOMAIN, sso: sso.grafana });
    if (opts.jupyterhub) {
      const config = configFrom({ jupyterhub: true });
      new DareServices("dare", {
        provider,
        domain: DOMAIN,
        images: config.dare.images,
        services: config.dare.services,
        sharedFilesystemSize: config.dare.sharedFilesystemSize,
        jupyterhub: true,
        jupyterhubSso: sso.jupyterhub,
        workflowInternetAccess: false,
        apiServerCidrs: ["10.10.0.10/32"],
        keycloak: {
          url: "u",
          realm: "dare",
          clientId: "dare-login",
          clientSecret: sso.grafana.clientSecret,
          adminUsername: "a",
          adminPassword: sso.grafana.clientSecret,
        },
      });
    }
  });
}

const secretInputs = (resources: RecordedResource[], name: string) =>
  ofType(resources, "kubernetes:core/v1:Secret")
    .map((r) => r.inputs as any)
    .find((s) => s.metadata.name === name);
const release = (resources: RecordedResource[], chart: string) =>
  ofType(resources, "kubernetes:helm.sh/v3:Release")
    .map((r) => r.inputs as any)
    .find((r) => r.chart === chart);
const realmOf = (resources: RecordedResource[]) => {
  const map = ofType(resources, "kubernetes:core/v1:ConfigMap")
    .map((r) => redacted(r))
    .find((m) => m.metadata.name === "keycloak-realm-dare");
  return JSON.parse(map.data["dare.json"]);
};
/** The one secret string a Secret's stringData key holds, checking it is a Pulumi secret. */
function secretValue(secret: any, key: string): string {
  expect(isSecret(secret.stringData) || isSecret(secret.stringData[key])).toBe(true);
  return unsecret(secret.stringData)[key];
}

describe("single sign-on with every application on", () => {
  let resources: RecordedResource[];
  let realm: any;
  beforeAll(async () => {
    resources = await platform({ harbor: true, jupyterhub: true });
    realm = realmOf(resources);
  });

  it("registers Grafana, Harbor and JupyterHub as confidential clients with exactly their callbacks", () => {
    const clients = new Map(realm.clients.map((c: any) => [c.clientId, c]));
    expect([...clients.keys()].sort()).toEqual(["dare-login", "grafana", "harbor", "jupyterhub"]);
    const callbacks = {
      grafana: `https://${DOMAIN}/grafana/login/generic_oauth`,
      harbor: `https://harbor.${DOMAIN}/c/oidc/callback`,
      jupyterhub: `https://${DOMAIN}/jupyter/hub/oauth_callback`,
    };
    for (const [id, callback] of Object.entries(callbacks)) {
      const c: any = clients.get(id);
      expect(c.redirectUris).toEqual([callback]);
      expect(c).toMatchObject({
        publicClient: false,
        clientAuthenticatorType: "client-secret",
        standardFlowEnabled: true,
        implicitFlowEnabled: false,
        directAccessGrantsEnabled: false,
        serviceAccountsEnabled: false,
      });
      // The secret is a config-cli variable: the realm document holds none.
      expect(c.secret).toBe(`$(env:${ssoSecretVariable(id)})`);
      expect(c.protocolMappers).toEqual([
        expect.objectContaining({
          protocolMapper: "oidc-usermodel-realm-role-mapper",
          config: expect.objectContaining({
            "claim.name": ROLES_CLAIM,
            multivalued: "true",
            "id.token.claim": "true",
            "userinfo.token.claim": "true",
          }),
        }),
      ]);
    }
    // PKCE is required only of the clients that send a challenge (Harbor does not).
    expect((clients.get("grafana") as any).attributes["pkce.code.challenge.method"]).toBe("S256");
    expect((clients.get("jupyterhub") as any).attributes["pkce.code.challenge.method"]).toBe("S256");
    expect((clients.get("harbor") as any).attributes["pkce.code.challenge.method"]).toBeUndefined();
  });

  it("defines the admin role and the group that grants it", () => {
    expect(realm.roles.realm.map((r: any) => r.name)).toEqual([PLATFORM_ADMIN_ROLE]);
    expect(realm.groups).toEqual([expect.objectContaining({ name: PLATFORM_ADMINS_GROUP, realmRoles: [PLATFORM_ADMIN_ROLE] })]);
  });

  it("gives each client one generated secret, the same Pulumi secret in Keycloak's Secret and the application's", () => {
    const realmSecret = secretInputs(resources, "keycloak-realm-dare-secrets");
    const inRealm = (id: string) => secretValue(realmSecret, ssoSecretVariable(id));
    const grafana = secretValue(secretInputs(resources, GRAFANA_OAUTH_SECRET), "GF_AUTH_GENERIC_OAUTH_CLIENT_SECRET");
    const harborJson = JSON.parse(secretValue(secretInputs(resources, HARBOR_OIDC_SECRET), "CONFIG_OVERWRITE_JSON"));
    const jupyterhub = secretValue(secretInputs(resources, JUPYTERHUB_OAUTH_SECRET), "client-secret");
    expect(inRealm("grafana")).toBe(grafana);
    expect(inRealm("harbor")).toBe(harborJson.oidc_client_secret);
    expect(inRealm("jupyterhub")).toBe(jupyterhub);
    const values = [grafana, harborJson.oidc_client_secret, jupyterhub];
    expect(new Set(values).size).toBe(3);
    for (const v of values) expect(v).toMatch(/^[A-Za-z0-9]{32}$/);
    // The passwords are RandomPasswords (secret in the state)...
    const passwords = ofType(resources, "random:index/randomPassword:RandomPassword").map((r) => r.name);
    expect(passwords).toEqual(
      expect.arrayContaining(["sso-grafana-client-secret", "sso-harbor-client-secret", "sso-jupyterhub-client-secret"]),
    );
    // ...and no Helm release carries one in its values.
    for (const r of ofType(resources, "kubernetes:helm.sh/v3:Release")) {
      const text = JSON.stringify(unsecret(r.inputs));
      for (const v of values) expect({ release: r.name, leaks: text.includes(v) }).toEqual({ release: r.name, leaks: false });
    }
  });

  it("points Grafana at the realm: the browser at the public URL, Grafana's own calls inside the cluster", () => {
    const kps = release(resources, "kube-prometheus-stack");
    const grafana = unsecret(kps.values).grafana;
    const oauth = grafana["grafana.ini"]["auth.generic_oauth"];
    const endpoints = realmEndpoints(DOMAIN);
    expect(oauth).toMatchObject({
      enabled: true,
      client_id: "grafana",
      use_pkce: true,
      auth_url: `https://${DOMAIN}/auth/realms/dare/protocol/openid-connect/auth`,
      token_url: "http://keycloak-http.keycloak.svc/auth/realms/dare/protocol/openid-connect/token",
      api_url: "http://keycloak-http.keycloak.svc/auth/realms/dare/protocol/openid-connect/userinfo",
      role_attribute_path: "contains(roles[*], 'platform-admin') && 'GrafanaAdmin' || 'Viewer'",
      allow_assign_grafana_admin: true,
    });
    expect(oauth.auth_url).toBe(endpoints.authorizationUrl);
    expect(oauth.signout_redirect_url).toBe(
      `${endpoints.logoutUrl}?client_id=grafana&post_logout_redirect_uri=${encodeURIComponent(`https://${DOMAIN}/grafana/login`)}`,
    );
    expect(oauth).not.toHaveProperty("client_secret");
    expect(grafana.envValueFrom).toEqual({
      GF_AUTH_GENERIC_OAUTH_CLIENT_SECRET: { secretKeyRef: { name: GRAFANA_OAUTH_SECRET, key: "GF_AUTH_GENERIC_OAUTH_CLIENT_SECRET" } },
    });
    // Break-glass: the local admin and its login form stay.
    expect(grafana["grafana.ini"].auth.disable_login_form).toBe(false);
    expect(grafana.admin.existingSecret).toBe("grafana-admin");
    expect(
      validateHelmValues(
        redacted(ofType(resources, "kubernetes:helm.sh/v3:Release").find((r) => (r.inputs as any).chart === "kube-prometheus-stack")!),
      ),
    ).toEqual([]);
  });

  it("lets only Grafana and JupyterHub's hub reach Keycloak's pods for the back channel", () => {
    const policy = ofType(resources, "kubernetes:networking.k8s.io/v1:NetworkPolicy")
      .map((r) => redacted(r))
      .find((p) => p.metadata.name === "identity-sso-back-channel");
    expect(policy.metadata.namespace).toBe(NAMESPACES.keycloak.name);
    expect(policy.spec.ingress).toEqual([
      {
        from: [
          {
            podSelector: { matchLabels: { "app.kubernetes.io/name": "grafana" } },
            namespaceSelector: { matchLabels: { "kubernetes.io/metadata.name": "monitoring" } },
          },
          {
            podSelector: { matchLabels: { app: "jupyterhub", component: "hub" } },
            namespaceSelector: { matchLabels: { "kubernetes.io/metadata.name": "jupyterhub" } },
          },
        ],
        ports: [{ protocol: "TCP", port: 8080 }],
      },
    ]);
  });

  it("by NetworkPolicy semantics: Grafana and the hub reach Keycloak's pod port, a notebook pod does not", () => {
    const policies = ofType(resources, "kubernetes:networking.k8s.io/v1:NetworkPolicy").map((r) => redacted(r));
    const keycloak: Endpoint = {
      ns: "keycloak",
      labels: { "app.kubernetes.io/name": "keycloakx", "app.kubernetes.io/instance": "keycloak" },
      port: 8080,
    };
    const grafana: Endpoint = {
      ns: "monitoring",
      labels: { "app.kubernetes.io/name": "grafana", "app.kubernetes.io/instance": "kube-prometheus-stack" },
      port: 0,
    };
    const hub: Endpoint = { ns: "jupyterhub", labels: { app: "jupyterhub", component: "hub", release: "jupyterhub" }, port: 0 };
    const notebook: Endpoint = {
      ns: "jupyterhub",
      labels: { app: "jupyterhub", component: "singleuser-server", release: "jupyterhub" },
      port: 0,
    };
    expect(allowed(policies, grafana, keycloak)).toBe(true);
    expect(allowed(policies, hub, keycloak)).toBe(true);
    expect(allowed(policies, notebook, keycloak)).toBe(false);
  });

  it("switches Harbor to OIDC through harbor-core's CONFIG_OVERWRITE_JSON, from a Secret of its own", () => {
    const harbor = release(resources, "harbor");
    const core = unsecret(harbor.values).core;
    expect(core.extraEnvVars).toEqual([
      { name: "CONFIG_OVERWRITE_JSON", valueFrom: { secretKeyRef: { name: HARBOR_OIDC_SECRET, key: "CONFIG_OVERWRITE_JSON" } } },
    ]);
    expect(core.configureUserSettings).toBeUndefined();
    expect(core.podAnnotations["dare.io/oidc-settings-hash"]).toMatch(/^[0-9a-f]{16}$/);
    const settings = JSON.parse(secretValue(secretInputs(resources, HARBOR_OIDC_SECRET), "CONFIG_OVERWRITE_JSON"));
    expect({ ...settings, oidc_client_secret: "-" }).toEqual({
      auth_mode: "oidc_auth",
      oidc_name: "DARE (Keycloak)",
      oidc_endpoint: `https://${DOMAIN}/auth/realms/dare`,
      oidc_client_id: "harbor",
      oidc_client_secret: "-",
      oidc_scope: "openid,profile,email,offline_access",
      oidc_verify_cert: true,
      oidc_auto_onboard: true,
      oidc_user_claim: "preferred_username",
      oidc_groups_claim: "roles",
      oidc_admin_group: "platform-admin",
      oidc_group_filter: "^platform-",
    });
    // Let's Encrypt production: publicly trusted, no CA bundle.
    expect(harbor.values.caBundleSecretName).toBeUndefined();
    // The break-glass admin keeps its generated password.
    expect(harbor.values.existingSecretAdminPassword).toBe("harbor-admin");
    expect(
      validateHelmValues(redacted(ofType(resources, "kubernetes:helm.sh/v3:Release").find((r) => (r.inputs as any).chart === "harbor")!)),
    ).toEqual([]);
  });

  it("replaces JupyterHub's default dummy authenticator with Keycloak", () => {
    const hub = unsecret(release(resources, "jupyterhub").values).hub;
    expect(hub.config.JupyterHub.authenticator_class).toBe("generic-oauth");
    expect(hub.config.GenericOAuthenticator).toMatchObject({
      client_id: "jupyterhub",
      oauth_callback_url: `https://${DOMAIN}/jupyter/hub/oauth_callback`,
      authorize_url: `https://${DOMAIN}/auth/realms/dare/protocol/openid-connect/auth`,
      token_url: "http://keycloak-http.keycloak.svc/auth/realms/dare/protocol/openid-connect/token",
      userdata_url: "http://keycloak-http.keycloak.svc/auth/realms/dare/protocol/openid-connect/userinfo",
      username_claim: "preferred_username",
      manage_groups: true,
      auth_state_groups_key: "oauth_user.roles",
      admin_groups: ["platform-admin"],
    });
    expect(hub.config.GenericOAuthenticator).not.toHaveProperty("client_secret");
    expect(hub.extraEnv.OAUTH_CLIENT_SECRET).toEqual({
      valueFrom: { secretKeyRef: { name: JUPYTERHUB_OAUTH_SECRET, key: "client-secret" } },
    });
    // z2jh is not among ../shared/charts: its own strict values.schema.json, from the chart mirror's archive.
    expect(z2jhSchemaErrors(unsecret(release(resources, "jupyterhub").values))).toEqual([]);
    // The chart lets the hub and the proxy reach the cloud's metadata service (VMs' user data: their SSH host keys).
    const values = unsecret(release(resources, "jupyterhub").values);
    expect(values.hub.networkPolicy.egressAllowRules.cloudMetadataServer).toBe(false);
    expect(values.proxy.chp.networkPolicy.egressAllowRules.cloudMetadataServer).toBe(false);
    // The schema does refuse what the chart does not know.
    expect(z2jhSchemaErrors({ hub: { extraEnvironment: {} } })).not.toEqual([]);
    expect(z2jhSchemaErrors({ hub: { config: { genericOAuthenticator: {} } } })).not.toEqual([]);
  });
});

describe("single sign-on with Harbor and JupyterHub off", () => {
  it("registers Grafana's client only, and the back channel for Grafana only", async () => {
    const resources = await platform({ harbor: false, jupyterhub: false });
    expect(realmOf(resources).clients.map((c: any) => c.clientId)).toEqual(["dare-login", "grafana"]);
    const realmSecret = secretInputs(resources, "keycloak-realm-dare-secrets");
    expect(Object.keys(unsecret(realmSecret.stringData)).sort()).toEqual([
      "DARE_ADMIN_PASSWORD",
      "DARE_LOGIN_CLIENT_SECRET",
      ssoSecretVariable("grafana"),
    ]);
    const policy = ofType(resources, "kubernetes:networking.k8s.io/v1:NetworkPolicy")
      .map((r) => redacted(r))
      .find((p) => p.metadata.name === "identity-sso-back-channel");
    expect(policy.spec.ingress[0].from).toHaveLength(1);
  });
});

describe("Harbor's trust in Keycloak's certificate follows the issuer", () => {
  const settingsAndValues = async (tlsIssuer: TlsIssuer) => {
    const resources = await platform({ harbor: true, jupyterhub: false, tlsIssuer });
    const settings = JSON.parse(secretValue(secretInputs(resources, HARBOR_OIDC_SECRET), "CONFIG_OVERWRITE_JSON"));
    return { resources, settings, values: unsecret(release(resources, "harbor").values) };
  };

  it("dare-ca: verifies, with the CA in Harbor's trust store", async () => {
    const { resources, settings, values } = await settingsAndValues("dare-ca");
    expect(settings.oidc_verify_cert).toBe(true);
    expect(values.caBundleSecretName).toBe(HARBOR_CA_BUNDLE_SECRET);
    const bundle = secretInputs(resources, HARBOR_CA_BUNDLE_SECRET);
    expect(bundle.metadata.namespace).toBe(NAMESPACES.harbor.name);
    expect(unsecret(bundle.stringData)["ca.crt"]).toBeDefined();
  });

  it("letsencrypt-staging: does not verify (its roots are in no trust store)", async () => {
    const { settings, values } = await settingsAndValues("letsencrypt-staging");
    expect(settings.oidc_verify_cert).toBe(false);
    expect(values.caBundleSecretName).toBeUndefined();
  });

  it("restarts harbor-core when its settings change: the pod annotation follows them", async () => {
    const a = await settingsAndValues("letsencrypt-staging");
    const b = await settingsAndValues("letsencrypt-staging");
    const c = await settingsAndValues("dare-ca");
    const hash = (x: { values: any }) => x.values.core.podAnnotations["dare.io/oidc-settings-hash"];
    expect(hash(b)).toBe(hash(a));
    expect(a.settings.oidc_client_secret).toBe(c.settings.oidc_client_secret);
    expect(hash(c)).not.toBe(hash(a));
  });
});

describe("the render an operator reviews", () => {
  let dir: string;
  beforeAll(() => {
    const result = render("production", ["--set", "jupyterhub=true"]);
    expect(result.stderr).toBe("");
    expect(result.status).toBe(0);
    dir = result.dir;
  }, 120_000);
  const read = (file: string) => YAML.parse(fs.readFileSync(path.join(dir, file), "utf8"));

  it("shows the clients and where each application logs in, and the secrets only as [secret]", () => {
    const realm = JSON.parse(read("kubernetes/keycloak/configmap-keycloak-realm-dare.yaml").data["dare.json"]);
    expect(realm.clients.map((c: any) => [c.clientId, c.redirectUris])).toEqual([
      ["dare-login", ["https://dare.example.org/*"]],
      ["grafana", ["https://dare.example.org/grafana/login/generic_oauth"]],
      ["harbor", ["https://harbor.dare.example.org/c/oidc/callback"]],
      ["jupyterhub", ["https://dare.example.org/jupyter/hub/oauth_callback"]],
    ]);
    for (const file of [
      "kubernetes/monitoring/secret-grafana-oauth.yaml",
      "kubernetes/harbor/secret-harbor-oidc.yaml",
      "kubernetes/jupyterhub/secret-jupyterhub-oauth.yaml",
      "kubernetes/keycloak/secret-keycloak-realm-dare-secrets.yaml",
    ]) {
      expect({ file, stringData: read(file).stringData }).toEqual({ file, stringData: "[secret]" });
    }
    const grafana = read("helm/kube-prometheus-stack.yaml").values.grafana;
    expect(grafana["grafana.ini"]["auth.generic_oauth"].auth_url).toBe(
      "https://dare.example.org/auth/realms/dare/protocol/openid-connect/auth",
    );
    expect(read("helm/harbor.yaml").values.core.extraEnvVars[0].valueFrom.secretKeyRef.name).toBe(HARBOR_OIDC_SECRET);
    expect(read("helm/jupyterhub.yaml").values.hub.config.JupyterHub.authenticator_class).toBe("generic-oauth");
  });
});
