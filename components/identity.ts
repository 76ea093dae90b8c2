/**
 * A/A layer: Keycloak (codecentric keycloakx chart, official image) on PostgreSQL run by the
 * CloudNativePG operator, with the DARE realm configured as code.
 *
 * The seed created the realm, the dare-login client and an admin by hand in the web UI and pasted
 * the client secret into a YAML file. Here the realm is a JSON document built from the stack's
 * configuration and applied by keycloak-config-cli, which creates AND updates (a Keycloak
 * `--import-realm` only imports a realm that does not exist yet, so later changes would be lost).
 * The config-cli Job's name carries a hash of the realm document and of the secrets it substitutes:
 * an unchanged configuration gives the same Job (a second `pulumi up` changes nothing), a changed one
 * gives a new Job, which Pulumi creates and waits for, so the change reaches Keycloak.
 */
import * as crypto from "crypto";
import * as k8s from "@pulumi/kubernetes";
import { pinnedRelease } from "../lib/helm";
import { CHARTS, IMAGES } from "../lib/pins";
import * as pulumi from "@pulumi/pulumi";
import * as random from "@pulumi/random";
import * as YAML from "yaml";
import { IdentityProviderSpec } from "../lib/config";
import { DARE_WORKLOADS, WORKLOADS } from "./dare-services/workloads";
import { createNamespace, NAMESPACES } from "../lib/namespaces";
import { allowTraffic, NamespaceIsolation } from "../lib/network-policies";
import { domainTls } from "./security";
import { INGRESS_CLASS } from "./networking";

export const REALM = "dare";
export const LOGIN_CLIENT_ID = "dare-login";
export const REALM_ADMIN_USER = "dare-admin";
export const KEYCLOAK_ADMIN_USER = "admin";
/** keycloakx names everything after the release when fullnameOverride is set */
const RELEASE = "keycloak";
const HTTP_SERVICE = `${RELEASE}-http`;
const DATABASE = "keycloak-db";
/** the database in it and its owner, the user Keycloak connects as */
const DB_NAME = "keycloak";
const DB_USER = "keycloak";
const RELATIVE_PATH = "/auth";
/** The pod port Keycloak serves HTTP on (the chart's `http` port; kc.sh start --http-port). */
const KEYCLOAK_POD_PORT = 8080;
/** The DARE workloads that call Keycloak (their descriptors' `calls`): its NetworkPolicy lets them in. */
const KEYCLOAK_CALLERS = DARE_WORKLOADS.filter((w) => WORKLOADS[w].calls?.includes("keycloak"));

/**
 * Single sign-on. Grafana, Harbor and JupyterHub log in through realm `dare`, each as a confidential
 * client of its own. A user holding the realm role `platform-admin` (members of the group
 * `platform-admins` do) is an administrator in each; the role reaches the applications as the claim
 * `roles` (a realm-role mapper on each client, in the ID token, the access token and userinfo).
 */
export const PLATFORM_ADMIN_ROLE = "platform-admin";
export const PLATFORM_ADMINS_GROUP = "platform-admins";
export const ROLES_CLAIM = "roles";
export type SsoApplication = "grafana" | "harbor" | "jupyterhub";

/** What one application is registered with in the realm: the client and its exact redirect URIs. */
export interface SsoClientSpec {
  application: SsoApplication;
  clientId: string;
  name: string;
  /** the application's own origin (https://<domain> or https://harbor.<domain>) */
  rootUrl: string;
  /** exactly the callback the application sends: no wildcard, so no other path can receive a code */
  redirectUris: string[];
  /** where Keycloak may send the browser after logout */
  postLogoutRedirectUris: string[];
  /** the application sends a PKCE challenge (S256): Keycloak then requires one */
  pkce: boolean;
}

/**
 * The SSO clients of a platform: Grafana always, Harbor and JupyterHub when they are on. The
 * callbacks are the applications' own: Grafana `<root_url>login/generic_oauth` (served at /grafana),
 * Harbor `/c/oidc/callback` (goharbor/harbor src/common/const.go, OIDCCallbackPath), JupyterHub
 * `<base_url>hub/oauth_callback` (base URL /jupyter).
 */
export function ssoClientSpecs(domain: string, on: { harbor: boolean; jupyterhub: boolean }): SsoClientSpec[] {
  const origin = `https://${domain}`;
  const harbor = `https://harbor.${domain}`;
  return [
    {
      application: "grafana",
      clientId: "grafana",
      name: "Grafana",
      rootUrl: origin,
      redirectUris: [`${origin}/grafana/login/generic_oauth`],
      postLogoutRedirectUris: [`${origin}/grafana/login`],
      pkce: true,
    },
    ...(on.harbor
      ? [
          {
            // Harbor's OIDC client sends no PKCE challenge.
            application: "harbor" as const,
            clientId: "harbor",
            name: "Harbor",
            rootUrl: harbor,
            redirectUris: [`${harbor}/c/oidc/callback`],
            postLogoutRedirectUris: [`${harbor}/account/sign-in`],
            pkce: false,
          },
        ]
      : []),
    ...(on.jupyterhub
      ? [
          {
            // OAuthenticator 17 sends a PKCE challenge by default (enable_pkce).
            application: "jupyterhub" as const,
            clientId: "jupyterhub",
            name: "JupyterHub",
            rootUrl: origin,
            redirectUris: [`${origin}/jupyter/hub/oauth_callback`],
            postLogoutRedirectUris: [`${origin}/jupyter/hub/login`],
            pkce: true,
          },
        ]
      : []),
  ];
}

/** Name of the config-cli variable that carries an SSO client's secret into the realm. */
export function ssoSecretVariable(clientId: string): string {
  return `SSO_${clientId.toUpperCase().replace(/[^A-Z0-9]/g, "_")}_CLIENT_SECRET`;
}

/** Keycloak's URLs for realm `dare`: the public ones (browser, issuer) and the in-cluster ones (back channel). */
export function realmEndpoints(domain: string) {
  const issuer = `https://${domain}${RELATIVE_PATH}/realms/${REALM}`;
  const internal = `http://${HTTP_SERVICE}.${NAMESPACES.keycloak.name}.svc${RELATIVE_PATH}/realms/${REALM}`;
  const oidc = "protocol/openid-connect";
  return {
    issuer,
    authorizationUrl: `${issuer}/${oidc}/auth`,
    logoutUrl: `${issuer}/${oidc}/logout`,
    // Server-to-server calls stay inside the cluster: no hairpin through the load balancer and no
    // trust in the public certificate needed. Keycloak names the public issuer in every token whichever
    // URL it is asked at (KC_HOSTNAME).
    tokenUrl: `${internal}/${oidc}/token`,
    userInfoUrl: `${internal}/${oidc}/userinfo`,
  };
}

/** What an application needs to log in through Keycloak (MonitoringArgs.sso, SecurityArgs.harborSso, DareServicesArgs.jupyterhubSso). */
export interface OidcClient {
  clientId: string;
  /** generated by the program; a Pulumi secret */
  clientSecret: pulumi.Output<string>;
  issuer: string;
  authorizationUrl: string;
  tokenUrl: string;
  userInfoUrl: string;
  logoutUrl: string;
  redirectUri: string;
  /** where Keycloak sends the browser after logout (registered exactly) */
  postLogoutRedirectUri: string;
  /** the claim holding the user's realm roles */
  rolesClaim: string;
  /** the realm role that makes a user an administrator */
  adminRole: string;
}

export interface SsoClientsArgs {
  /** dare:domain */
  domain: string;
  /** Harbor is on (dare:harbor.enabled) */
  harbor: boolean;
  /** JupyterHub is on (dare:jupyterhub) */
  jupyterhub: boolean;
}

/**
 * The SSO clients' secrets, generated before any layer that needs one: Harbor (security layer) is
 * installed before Keycloak, so the secrets cannot come from the Identity component itself.
 */
export class SsoClients extends pulumi.ComponentResource {
  readonly specs: SsoClientSpec[];
  readonly grafana: OidcClient;
  readonly harbor?: OidcClient;
  readonly jupyterhub?: OidcClient;

  constructor(name: string, args: SsoClientsArgs, opts?: pulumi.ComponentResourceOptions) {
    super("dare:identity:SsoClients", name, {}, opts);
    this.specs = ssoClientSpecs(args.domain, args);
    const endpoints = realmEndpoints(args.domain);
    const clients: Partial<Record<SsoApplication, OidcClient>> = {};
    for (const spec of this.specs) {
      const secret = new random.RandomPassword(`${name}-${spec.clientId}-client-secret`, { length: 32, special: false }, { parent: this });
      clients[spec.application] = {
        clientId: spec.clientId,
        clientSecret: pulumi.secret(secret.result),
        ...endpoints,
        redirectUri: spec.redirectUris[0],
        postLogoutRedirectUri: spec.postLogoutRedirectUris[0],
        rolesClaim: ROLES_CLAIM,
        adminRole: PLATFORM_ADMIN_ROLE,
      };
    }
    this.grafana = clients.grafana!;
    this.harbor = clients.harbor;
    this.jupyterhub = clients.jupyterhub;
    this.registerOutputs({});
  }

  /** Each client's secret by its config-cli variable (what Identity puts in the realm's Secret). */
  secretVariables(): Record<string, pulumi.Output<string>> {
    return Object.fromEntries(
      [this.grafana, this.harbor, this.jupyterhub]
        .filter((c): c is OidcClient => c !== undefined)
        .map((c) => [ssoSecretVariable(c.clientId), c.clientSecret]),
    );
  }
}

/** Keycloak's representation of an SSO client; its secret is a config-cli variable. */
function ssoClient(spec: SsoClientSpec): Record<string, unknown> {
  return {
    clientId: spec.clientId,
    name: spec.name,
    enabled: true,
    protocol: "openid-connect",
    publicClient: false,
    clientAuthenticatorType: "client-secret",
    secret: env(ssoSecretVariable(spec.clientId)),
    // The authorization code flow only: no password grant, no implicit flow, no service account.
    standardFlowEnabled: true,
    implicitFlowEnabled: false,
    directAccessGrantsEnabled: false,
    serviceAccountsEnabled: false,
    rootUrl: spec.rootUrl,
    redirectUris: spec.redirectUris,
    webOrigins: [spec.rootUrl],
    attributes: {
      "post.logout.redirect.uris": spec.postLogoutRedirectUris.join("##"),
      ...(spec.pkce ? { "pkce.code.challenge.method": "S256" } : {}),
    },
    protocolMappers: [
      {
        name: "realm roles",
        protocol: "openid-connect",
        protocolMapper: "oidc-usermodel-realm-role-mapper",
        consentRequired: false,
        config: {
          "claim.name": ROLES_CLAIM,
          multivalued: "true",
          "jsonType.label": "String",
          "id.token.claim": "true",
          "access.token.claim": "true",
          "userinfo.token.claim": "true",
        },
      },
    ],
  };
}

export interface IdentityArgs {
  /** Helm repository every chart of this layer is pulled from instead of its upstream one (dare:chartMirror). */
  chartMirror?: string;
  /** DNS name Keycloak is served under, at https://<domain>/auth */
  domain: string;
  /** source ranges allowed to reach the admin console (/auth/admin) */
  adminCidrs: string[];
  /** OIDC and SAML providers users may log in with */
  identityProviders: IdentityProviderSpec[];
  /** Keycloak pods */
  replicas: number;
  /** PostgreSQL instances (1 primary, the rest replicas) */
  databaseInstances: number;
  /** size of each PostgreSQL volume, GiB */
  databaseSizeGb: number;
  /** StorageClass of the database's volumes (Storage.retainedBlockStorageClass); default: the cluster's default class. */
  databaseStorageClass?: string;
  /** the cluster's provider (KubernetesCluster.provider) */
  provider: k8s.Provider;
  /** the SSO clients (Grafana, Harbor, JupyterHub) to register in the realm, with their generated secrets; none when undefined */
  ssoClients?: SsoClients;
}

/** Name of the environment variable that carries an identity provider's client secret into config-cli. */
export function idpSecretVariable(alias: string): string {
  return `IDP_${alias.toUpperCase().replace(/[^A-Z0-9]/g, "_")}_CLIENT_SECRET`;
}

const env = (name: string) => `$(env:${name})`;

/** Keycloak's representation of one identity provider; secrets are config-cli variables. */
function identityProvider(p: IdentityProviderSpec): Record<string, unknown> {
  const common = { alias: p.alias, displayName: p.displayName, enabled: true, trustEmail: false, storeToken: false };
  if (p.protocol === "saml") {
    return {
      ...common,
      providerId: "saml",
      config: {
        idpEntityId: p.idpEntityId,
        singleSignOnServiceUrl: p.singleSignOnServiceUrl,
        nameIDPolicyFormat: "urn:oasis:names:tc:SAML:2.0:nameid-format:persistent",
        principalType: "SUBJECT",
        postBindingAuthnRequest: "true",
        postBindingResponse: "true",
        syncMode: "IMPORT",
        validateSignature: p.signingCertificate ? "true" : "false",
        ...(p.signingCertificate ? { signingCertificate: p.signingCertificate } : {}),
      },
    };
  }
  return {
    ...common,
    providerId: "oidc",
    config: {
      issuer: p.issuer,
      authorizationUrl: p.authorizationUrl,
      tokenUrl: p.tokenUrl,
      jwksUrl: p.jwksUrl,
      ...(p.userInfoUrl ? { userInfoUrl: p.userInfoUrl } : {}),
      useJwksUrl: "true",
      validateSignature: "true",
      clientId: p.clientId,
      clientSecret: env(idpSecretVariable(p.alias)),
      clientAuthMethod: "client_secret_post",
      defaultScope: "openid profile email",
      pkceEnabled: "true",
      pkceMethod: "S256",
      syncMode: "IMPORT",
    },
  };
}

/**
 * The realm as keycloak-config-cli imports it. It holds no secret: the client secret, the admin's
 * password and the providers' secrets are `$(env:…)` variables that config-cli fills in from a Secret.
 */
export function realmConfig(domain: string, providers: IdentityProviderSpec[], sso: SsoClientSpec[] = []): Record<string, unknown> {
  const origin = `https://${domain}`;
  return {
    realm: REALM,
    enabled: true,
    displayName: "DARE",
    sslRequired: "external",
    registrationAllowed: false,
    loginWithEmailAllowed: true,
    duplicateEmailsAllowed: false,
    bruteForceProtected: true,
    clients: [
      {
        clientId: LOGIN_CLIENT_ID,
        name: "DARE login service",
        enabled: true,
        protocol: "openid-connect",
        publicClient: false,
        clientAuthenticatorType: "client-secret",
        secret: env("DARE_LOGIN_CLIENT_SECRET"),
        standardFlowEnabled: true,
        // dare-login's POST /auth/ exchanges a user name and password for tokens (password grant).
        directAccessGrantsEnabled: true,
        serviceAccountsEnabled: false,
        rootUrl: origin,
        baseUrl: "/",
        redirectUris: [`${origin}/*`],
        webOrigins: [origin],
        attributes: { "post.logout.redirect.uris": `${origin}/*` },
      },
      ...sso.map(ssoClient),
    ],
    roles: { realm: [{ name: PLATFORM_ADMIN_ROLE, description: "Administrator of Grafana, Harbor and JupyterHub (single sign-on)" }] },
    // Membership is managed in Keycloak (console or kcadm.sh), not here: config-cli leaves undeclared users alone.
    groups: [{ name: PLATFORM_ADMINS_GROUP, path: `/${PLATFORM_ADMINS_GROUP}`, realmRoles: [PLATFORM_ADMIN_ROLE] }],
    users: [
      {
        username: REALM_ADMIN_USER,
        enabled: true,
        firstName: "DARE",
        lastName: "Administrator",
        email: `${REALM_ADMIN_USER}@${domain}`,
        emailVerified: true,
        credentials: [{ type: "password", value: env("DARE_ADMIN_PASSWORD"), temporary: false }],
        // dare-login creates the platform's users in the realm with this account.
        clientRoles: { "realm-management": ["realm-admin"] },
      },
    ],
    identityProviders: providers.map(identityProvider),
  };
}

/**
 * Non-secret entries of a Secret go to `data`, base64-encoded. Pulumi marks a Secret's data and
 * stringData secret as a whole, so a plain name such as "keycloak" would count as a secret and the
 * render would refuse every file that mentions it; its base64 form occurs nowhere else.
 */
function plainData(values: Record<string, string>): Record<string, string> {
  return Object.fromEntries(Object.entries(values).map(([k, v]) => [k, Buffer.from(v).toString("base64")]));
}

function sha256(text: string): string {
  return crypto.createHash("sha256").update(text).digest("hex");
}

export class Identity extends pulumi.ComponentResource {
  /** https://<domain>/auth */
  readonly url: string;
  /** Keycloak inside the cluster: for services, which must not go round through the load balancer
   * (and would meet the admin allow-list on /auth/admin, where dare-login creates users) */
  readonly internalUrl: string;
  readonly adminConsoleUrl: string;
  readonly realm: string = REALM;
  /** Keycloak's bootstrap administrator (master realm) */
  readonly keycloakAdmin: { username: string; password: pulumi.Output<string> };
  /** the dare realm's administrator, used by dare-login to manage users */
  readonly realmAdmin: { username: string; password: pulumi.Output<string> };
  /**
   * What dare-login needs (DareServicesArgs.keycloak): the DARE services layer writes the secrets into
   * dare-login's Secret in its own namespace, so the values Keycloak gets and dare-login gets are one.
   */
  readonly dareLogin: {
    url: string;
    realm: string;
    clientId: string;
    clientSecret: pulumi.Output<string>;
    adminUsername: string;
    adminPassword: pulumi.Output<string>;
  };
  /** Keycloak's database for the dump CronJob (BackupsArgs.postgres): the read-write Service and its owner */
  readonly database: { host: string; port: number; database: string; username: string; password: pulumi.Output<string> };
  /** dare-login's client secret (the value in Keycloak and in the Secret) */
  readonly clientSecret: pulumi.Output<string>;
  readonly namespace: string = NAMESPACES.keycloak.name;

  constructor(name: string, args: IdentityArgs, opts?: pulumi.ComponentResourceOptions) {
    validateArgs(args);
    super("dare:identity:Identity", name, {}, opts);
    const provider = args.provider;
    const child = (extra: pulumi.CustomResourceOptions = {}): pulumi.CustomResourceOptions => ({ parent: this, provider, ...extra });
    const ns = NAMESPACES.keycloak.name;
    const origin = `https://${args.domain}`;
    this.url = `${origin}${RELATIVE_PATH}`;
    this.internalUrl = `http://${HTTP_SERVICE}.${ns}.svc${RELATIVE_PATH}`;
    this.adminConsoleUrl = `${origin}${RELATIVE_PATH}/admin/`;

    const keycloakNs = createNamespace("keycloak", child());
    const cnpgNs = createNamespace("cnpg", child());

    // Only the ingress controller, monitoring, the namespace itself (Keycloak, its database, the
    // config Job), the CloudNativePG operator and dare-login may open connections into it.
    new NamespaceIsolation(
      `${name}-keycloak`,
      { provider, namespace: keycloakNs.metadata.name, allowWithinNamespace: true },
      { parent: this },
    );
    allowTraffic(
      `${name}-cnpg-operator`,
      {
        namespace: keycloakNs.metadata.name,
        to: { "cnpg.io/cluster": DATABASE },
        // the operator asks each instance's manager for its status
        from: [{ podLabels: { "app.kubernetes.io/name": "cloudnative-pg" }, namespace: NAMESPACES.cnpg.name }],
        ports: [8000],
      },
      child(),
    );
    allowTraffic(
      `${name}-database-dumps`,
      {
        namespace: keycloakNs.metadata.name,
        to: { "cnpg.io/cluster": DATABASE },
        from: [{ podLabels: { service: "dare-backups" }, namespace: NAMESPACES.backups.name }],
        ports: [5432],
      },
      child(),
    );
    allowTraffic(
      `${name}-dare-login`,
      {
        namespace: keycloakNs.metadata.name,
        to: { "app.kubernetes.io/name": "keycloakx", "app.kubernetes.io/instance": RELEASE },
        from: KEYCLOAK_CALLERS.map((w) => ({ podLabels: { app: w }, namespace: NAMESPACES.dare.name })),
        ports: [KEYCLOAK_POD_PORT],
      },
      child(),
    );
    // Grafana and JupyterHub's hub exchange codes for tokens and read userinfo at the in-cluster URL (realmEndpoints).
    const sso = args.ssoClients;
    if (sso) {
      allowTraffic(
        `${name}-sso-back-channel`,
        {
          namespace: keycloakNs.metadata.name,
          to: { "app.kubernetes.io/name": "keycloakx", "app.kubernetes.io/instance": RELEASE },
          from: [
            { podLabels: { "app.kubernetes.io/name": "grafana" }, namespace: NAMESPACES.monitoring.name },
            ...(sso.jupyterhub ? [{ podLabels: { app: "jupyterhub", component: "hub" }, namespace: NAMESPACES.jupyterhub.name }] : []),
          ],
          ports: [KEYCLOAK_POD_PORT],
        },
        child(),
      );
    }

    const password = (suffix: string) => new random.RandomPassword(`${name}-${suffix}`, { length: 32, special: false }, { parent: this });
    const dbPassword = password("db-password");
    const adminPassword = password("admin-password");
    const realmAdminPassword = password("realm-admin-password");
    const clientSecret = password("dare-login-client-secret");

    // CloudNativePG: the operator (cluster-wide), then one PostgreSQL cluster for Keycloak.
    const cnpg = pinnedRelease(
      `${name}-cnpg`,
      {
        release: "cnpg",
        chart: CHARTS.cloudnativePg,
        mirror: args.chartMirror,
        namespace: cnpgNs.metadata.name,
        values: { crds: { create: true }, config: { clusterWide: true } },
      },
      child(),
    );

    const dbSecret = new k8s.core.v1.Secret(
      `${name}-db-credentials`,
      {
        metadata: { name: `${DATABASE}-app`, namespace: keycloakNs.metadata.name },
        type: "kubernetes.io/basic-auth",
        data: plainData({ username: DB_USER }),
        stringData: { password: dbPassword.result },
      },
      child(),
    );

    const database = new k8s.apiextensions.CustomResource(
      `${name}-db`,
      {
        apiVersion: "postgresql.cnpg.io/v1",
        kind: "Cluster",
        metadata: { name: DATABASE, namespace: keycloakNs.metadata.name },
        spec: {
          instances: args.databaseInstances,
          // One instance cannot keep a minAvailable of 1 through a drain: CloudNativePG's default PDB would stop
          // every upgrade and node removal; its CRD advises turning it off where the database is not replicated.
          ...(args.databaseInstances === 1 ? { enablePDB: false } : {}),
          imageName: IMAGES.postgres,
          enableSuperuserAccess: false,
          storage: { size: `${args.databaseSizeGb}Gi`, ...(args.databaseStorageClass ? { storageClass: args.databaseStorageClass } : {}) },
          bootstrap: { initdb: { database: DB_NAME, owner: DB_USER, secret: { name: dbSecret.metadata.name } } },
        },
      },
      child({ dependsOn: [cnpg] }),
    );

    const adminSecret = new k8s.core.v1.Secret(
      `${name}-admin`,
      {
        metadata: { name: "keycloak-admin", namespace: keycloakNs.metadata.name },
        data: plainData({ username: KEYCLOAK_ADMIN_USER }),
        stringData: { password: adminPassword.result },
      },
      child(),
    );

    // Keycloak reads the bootstrap admin only on its first start, with an empty master realm.
    const extraEnv = [
      { name: "KC_HOSTNAME", value: this.url },
      { name: "KC_BOOTSTRAP_ADMIN_USERNAME", valueFrom: { secretKeyRef: { name: "keycloak-admin", key: "username" } } },
      { name: "KC_BOOTSTRAP_ADMIN_PASSWORD", valueFrom: { secretKeyRef: { name: "keycloak-admin", key: "password" } } },
    ];
    const restrictedContainer = {
      runAsNonRoot: true,
      runAsUser: 1000,
      allowPrivilegeEscalation: false,
      capabilities: { drop: ["ALL"] },
    };
    const keycloak = pinnedRelease(
      `${name}-keycloak`,
      {
        release: RELEASE,
        chart: CHARTS.keycloakx,
        mirror: args.chartMirror,
        // The first start builds Keycloak's optimized server and creates the schema: minutes.
        timeout: 900,
        namespace: keycloakNs.metadata.name,
        values: {
          fullnameOverride: RELEASE,
          // Keycloak finds its peers through the database (jdbc-ping): it needs no Kubernetes API token.
          serviceAccount: { automountServiceAccountToken: false },
          replicas: args.replicas,
          image: { repository: IMAGES.keycloak.split(":")[0], tag: IMAGES.keycloak.split(":")[1] },
          command: ["/opt/keycloak/bin/kc.sh", "start", "--http-port=8080"],
          extraEnv: YAML.stringify(extraEnv),
          podSecurityContext: { fsGroup: 1000, runAsNonRoot: true, seccompProfile: { type: "RuntimeDefault" } },
          securityContext: restrictedContainer,
          resources: { requests: { cpu: "500m", memory: "1Gi" }, limits: { memory: "2Gi" } },
          podDisruptionBudget: args.replicas > 1 ? { maxUnavailable: 1 } : {},
          // Traefik terminates TLS and sends X-Forwarded-* headers.
          proxy: { enabled: true, mode: "xforwarded", http: { enabled: true } },
          http: { relativePath: RELATIVE_PATH },
          database: {
            vendor: "postgres",
            hostname: `${DATABASE}-rw`,
            port: 5432,
            database: DB_NAME,
            username: DB_USER,
            existingSecret: dbSecret.metadata.name,
            existingSecretKey: "password",
          },
          dbchecker: { enabled: true, securityContext: restrictedContainer },
          metrics: { enabled: true },
          health: { enabled: true },
        },
      },
      child({ dependsOn: [database, adminSecret] }),
    );

    // Ingress: /auth for everyone; /auth/admin (the longer, so the preferred route) only from adminCidrs.
    const allowList = new k8s.apiextensions.CustomResource(
      `${name}-admin-allowlist`,
      {
        apiVersion: "traefik.io/v1alpha1",
        kind: "Middleware",
        metadata: { name: "admin-allowlist", namespace: keycloakNs.metadata.name },
        spec: { ipAllowList: { sourceRange: args.adminCidrs } },
      },
      child(),
    );
    const ingress = (
      suffix: string,
      path: string,
      annotations: pulumi.Input<Record<string, pulumi.Input<string>>>,
      deps: pulumi.Resource[],
    ) =>
      new k8s.networking.v1.Ingress(
        `${name}-${suffix}`,
        {
          metadata: { name: suffix, namespace: keycloakNs.metadata.name, annotations },
          spec: {
            ingressClassName: INGRESS_CLASS,
            tls: domainTls(args.domain),
            rules: [
              {
                host: args.domain,
                http: { paths: [{ path, pathType: "Prefix", backend: { service: { name: HTTP_SERVICE, port: { name: "http" } } } }] },
              },
            ],
          },
        },
        child({ dependsOn: deps }),
      );
    ingress("keycloak", RELATIVE_PATH, {}, [keycloak]);
    ingress(
      "keycloak-admin",
      `${RELATIVE_PATH}/admin`,
      {
        "traefik.ingress.kubernetes.io/router.middlewares": `${ns}-admin-allowlist@kubernetescrd`,
      },
      [keycloak, allowList],
    );

    // The realm: a ConfigMap without secrets, the secrets it refers to, and the config-cli Job.
    const realmJson = JSON.stringify(realmConfig(args.domain, args.identityProviders, sso?.specs ?? []), null, 2);
    const realmMap = new k8s.core.v1.ConfigMap(
      `${name}-realm`,
      {
        metadata: { name: `keycloak-realm-${REALM}`, namespace: keycloakNs.metadata.name },
        data: { [`${REALM}.json`]: realmJson },
      },
      child(),
    );
    const realmSecretValues: Record<string, pulumi.Output<string>> = {
      DARE_LOGIN_CLIENT_SECRET: clientSecret.result,
      DARE_ADMIN_PASSWORD: realmAdminPassword.result,
      ...(sso ? sso.secretVariables() : {}),
    };
    for (const p of args.identityProviders) {
      if (p.protocol === "oidc") realmSecretValues[idpSecretVariable(p.alias)] = p.clientSecret;
    }
    const realmSecrets = new k8s.core.v1.Secret(
      `${name}-realm-secrets`,
      {
        metadata: { name: `keycloak-realm-${REALM}-secrets`, namespace: keycloakNs.metadata.name },
        stringData: realmSecretValues,
      },
      child(),
    );

    // A hash of 256-bit random secrets and the public realm document reveals neither: it may be public.
    const configHash = pulumi.unsecret(
      pulumi
        .all(realmSecretValues)
        .apply((secrets) => sha256(JSON.stringify({ realm: realmJson, secrets: Object.entries(secrets).sort() })).slice(0, 10)),
    );
    new k8s.batch.v1.Job(
      `${name}-realm-config`,
      {
        metadata: {
          name: pulumi.interpolate`keycloak-realm-${REALM}-${configHash}`,
          namespace: keycloakNs.metadata.name,
          labels: { "app.kubernetes.io/name": "keycloak-config-cli", "app.kubernetes.io/part-of": "dare-platform" },
        },
        spec: {
          backoffLimit: 6,
          template: {
            metadata: { labels: { "app.kubernetes.io/name": "keycloak-config-cli" } },
            spec: {
              restartPolicy: "Never",
              securityContext: { runAsNonRoot: true, seccompProfile: { type: "RuntimeDefault" } },
              containers: [
                {
                  name: "keycloak-config-cli",
                  image: IMAGES.keycloakConfigCli,
                  securityContext: { ...restrictedContainer, readOnlyRootFilesystem: true },
                  env: [
                    { name: "KEYCLOAK_URL", value: this.internalUrl },
                    { name: "KEYCLOAK_USER", valueFrom: { secretKeyRef: { name: adminSecret.metadata.name, key: "username" } } },
                    { name: "KEYCLOAK_PASSWORD", valueFrom: { secretKeyRef: { name: adminSecret.metadata.name, key: "password" } } },
                    { name: "KEYCLOAK_AVAILABILITYCHECK_ENABLED", value: "true" },
                    { name: "KEYCLOAK_AVAILABILITYCHECK_TIMEOUT", value: "600s" },
                    { name: "IMPORT_FILES_LOCATIONS", value: "/config/*.json" },
                    { name: "IMPORT_VARSUBSTITUTION_ENABLED", value: "true" },
                    // Apply every time the Job runs: it only runs when something changed.
                    { name: "IMPORT_CACHE_ENABLED", value: "false" },
                  ],
                  envFrom: [{ secretRef: { name: realmSecrets.metadata.name } }],
                  volumeMounts: [
                    { name: "realm", mountPath: "/config", readOnly: true },
                    { name: "tmp", mountPath: "/tmp" },
                  ],
                  resources: { requests: { cpu: "100m", memory: "256Mi" }, limits: { memory: "512Mi" } },
                },
              ],
              volumes: [
                { name: "realm", configMap: { name: realmMap.metadata.name } },
                { name: "tmp", emptyDir: {} },
              ],
            },
          },
        },
      },
      child({ dependsOn: [keycloak] }),
    );

    this.keycloakAdmin = { username: KEYCLOAK_ADMIN_USER, password: pulumi.secret(adminPassword.result) };
    this.realmAdmin = { username: REALM_ADMIN_USER, password: pulumi.secret(realmAdminPassword.result) };
    this.clientSecret = pulumi.secret(clientSecret.result);
    this.dareLogin = {
      // Tokens name the public URL as issuer whichever URL they were asked from (KC_HOSTNAME).
      url: this.internalUrl,
      realm: REALM,
      clientId: LOGIN_CLIENT_ID,
      clientSecret: this.clientSecret,
      adminUsername: REALM_ADMIN_USER,
      adminPassword: this.realmAdmin.password,
    };
    this.database = {
      host: `${DATABASE}-rw.${ns}.svc`,
      port: 5432,
      database: DB_NAME,
      username: DB_USER,
      password: pulumi.secret(dbPassword.result),
    };
    this.registerOutputs({
      url: this.url,
      internalUrl: this.internalUrl,
      adminConsoleUrl: this.adminConsoleUrl,
      realm: this.realm,
      keycloakAdmin: this.keycloakAdmin,
      realmAdmin: this.realmAdmin,
      dareLogin: this.dareLogin,
      clientSecret: this.clientSecret,
    });
  }
}

/**
 * What the loader cannot catch: two aliases that map to one client-secret variable (config aliases cannot, their
 * grammar keeps the mapping one-to-one; arguments made in code can). The rest was checked by the loader (lib/config.ts).
 */
function validateArgs(args: IdentityArgs): void {
  const aliases = args.identityProviders.map((p) => p.alias);
  const variables = aliases.map(idpSecretVariable);
  const clash = variables.find((v, i) => variables.indexOf(v) !== i);
  if (clash) throw new Error(`Identity: two identity provider aliases map to the same variable ${clash}: ${aliases.join(", ")}`);
}
