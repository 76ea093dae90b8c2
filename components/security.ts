/**
 * Layer 5, security on the cluster: cert-manager with three ClusterIssuers (Let's Encrypt staging and
 * production over HTTP-01 through the ingress, and a self-signed CA for installs without public DNS),
 * dare:domain's one certificate as Traefik's default,
 * and Harbor with Trivy scanning (optional). Namespace isolation lives in network-policies.ts;
 * the host firewall is the cluster layer's (it mirrors the security groups).
 */
import * as crypto from "crypto";
import * as k8s from "@pulumi/kubernetes";
import * as pulumi from "@pulumi/pulumi";
import * as random from "@pulumi/random";
import * as tls from "@pulumi/tls";
import { HarborSpec, TlsIssuer } from "../lib/config";
import { CA_ISSUER } from "../lib/config-keys";
import { pinnedRelease } from "../lib/helm";
import { CHARTS } from "../lib/pins";
import type { OidcClient } from "./identity";
import { createNamespace, NAMESPACES } from "../lib/namespaces";
import { NamespaceIsolation } from "../lib/network-policies";
import { PLAIN_HTTP_ANNOTATIONS } from "./networking";

export const ACME_SERVERS = {
  "letsencrypt-staging": "https://acme-staging-v02.api.letsencrypt.org/directory",
  "letsencrypt-prod": "https://acme-v02.api.letsencrypt.org/directory",
} as const;
/** The self-signed CA's ClusterIssuer, and the Secret (in cert-manager's namespace) holding its key. */
export { CA_ISSUER };
/**
 * The one certificate of dare:domain, in Traefik's namespace, which Traefik's default TLSStore serves.
 * Keycloak, Grafana, the DARE services and JupyterHub all answer on https://<domain>/<path>: one
 * certificate each would be four orders for the same name at every install and renewal, against Let's
 * Encrypt's limit of 5 certificates a week for one exact set of names (a reinstall in the same week fails).
 */
export const DOMAIN_CERTIFICATE = { name: "dare-domain", secretName: "dare-domain-tls", namespace: NAMESPACES.ingress.name } as const;

/**
 * The `tls` of an Ingress on dare:domain: the host without a secretName (and no cert-manager
 * annotation), so that Traefik answers with the domain certificate of its default TLSStore.
 */
export function domainTls(domain: string): Array<{ hosts: string[] }> {
  return [{ hosts: [domain] }];
}

export interface SecurityArgs {
  /** Helm repository every chart of this layer is pulled from instead of its upstream one (dare:chartMirror). */
  chartMirror?: string;
  /** Provider of the cluster (KubernetesCluster.provider). */
  provider: k8s.Provider;
  /** DNS name the platform is served under; Harbor is at harbor.<domain>. */
  domain: string;
  /** IngressClass that serves ACME HTTP-01 challenges and Harbor (Networking.ingressClassName). */
  ingressClassName: string;
  /** The ClusterIssuer public endpoints use. */
  tlsIssuer: TlsIssuer;
  /** Let's Encrypt account e-mail; required when `tlsIssuer` is a Let's Encrypt issuer. */
  acmeEmail: string;
  /** Harbor switch and its registry volume size. */
  harbor: HarborSpec;
  /** StorageClass of Harbor's volumes (Storage.blockStorageClass). */
  storageClass: string;
  /** Harbor's client in realm dare (SsoClients.harbor): users log in through Keycloak. Undefined: local logins only. */
  harborSso?: OidcClient;
  /** The `dare-ca` issuer's CA (dareCertificateAuthority), made before the cluster so that its hosts can trust it. */
  ca: DareCertificateAuthority;
}

/** The self-signed CA behind the `dare-ca` ClusterIssuer. */
export interface DareCertificateAuthority {
  /**
   * PEM certificate. Public, but it also sits in the `dare-ca` Secret, whose whole stringData @pulumi/kubernetes
   * marks secret: wrap it in pulumi.secret wherever else it goes (the render refuses a secret's text in plain).
   */
  certPem: pulumi.Output<string>;
  /** PEM private key (secret) */
  keyPem: pulumi.Output<string>;
  key: tls.PrivateKey;
  cert: tls.SelfSignedCert;
}

/** The name of the Security component index.ts declares; the CA's resources were its children until the hosts needed the CA. */
export const SECURITY_COMPONENT = { name: "security", type: "dare:platform:Security" } as const;

/**
 * The `dare-ca` CA, made by Pulumi (not by cert-manager) so that its certificate is a stack output to trust
 * and is known before the hosts are prepared (their registry mirror may present a certificate it signed:
 * dare:mirrors.caCertificate). Declared at the top level, before the cluster; the alias keeps the CA of a
 * stack made when it was a child of the Security component (a new CA would invalidate every certificate).
 */
export function dareCertificateAuthority(clusterName: string): DareCertificateAuthority {
  const name = `${SECURITY_COMPONENT.name}-ca`;
  const aliases = [{ parent: pulumi.createUrn(SECURITY_COMPONENT.name, SECURITY_COMPONENT.type) }];
  const caKey = new tls.PrivateKey(name, { algorithm: "ECDSA", ecdsaCurve: "P256" }, { aliases });
  const caCert = new tls.SelfSignedCert(
    name,
    {
      privateKeyPem: caKey.privateKeyPem,
      isCaCertificate: true,
      validityPeriodHours: 10 * 365 * 24,
      subject: { commonName: `${clusterName} CA`, organization: "DARE" },
      allowedUses: ["cert_signing", "crl_signing", "digital_signature"],
    },
    { aliases },
  );
  return { certPem: caCert.certPem, keyPem: pulumi.secret(caKey.privateKeyPem), key: caKey, cert: caCert };
}

/** The Secret that carries Harbor's OIDC settings (CONFIG_OVERWRITE_JSON) into harbor-core. */
export const HARBOR_OIDC_SECRET = "harbor-oidc";
/** The Secret with the CA that signs the platform's certificate, for Harbor's trust store (caBundleSecretName). */
export const HARBOR_CA_BUNDLE_SECRET = "harbor-ca-bundle";

/**
 * Harbor's OIDC settings, as harbor-core applies them from CONFIG_OVERWRITE_JSON at every start
 * (goharbor/harbor v2.15.1 src/core/main.go → src/controller/config/controller.go OverwriteConfig, which
 * then makes every setting read-only in the UI and API). Keys: src/common/const.go. Harbor reads the
 * issuer's discovery document at oidc_endpoint (go-oidc NewProvider, src/pkg/oidc/helper.go), which must
 * name the same issuer, so it is the public URL. Members of the realm role platform-admin (claim `roles`)
 * become Harbor administrators; users are created at their first login with their Keycloak user name.
 */
export function harborOidcSettings(sso: OidcClient, clientSecret: string, verifyCert: boolean): Record<string, unknown> {
  return {
    auth_mode: "oidc_auth",
    oidc_name: "DARE (Keycloak)",
    oidc_endpoint: sso.issuer,
    oidc_client_id: sso.clientId,
    oidc_client_secret: clientSecret,
    oidc_scope: "openid,profile,email,offline_access",
    oidc_verify_cert: verifyCert,
    oidc_auto_onboard: true,
    oidc_user_claim: "preferred_username",
    oidc_groups_claim: sso.rolesClaim,
    oidc_admin_group: sso.adminRole,
    // The claim also lists Keycloak's default roles (offline_access, default-roles-dare…): only platform roles become Harbor groups.
    oidc_group_filter: "^platform-",
  };
}

/** An ACME ClusterIssuer answering HTTP-01 challenges through the ingress class. */
export function acmeIssuer(name: keyof typeof ACME_SERVERS, email: string, ingressClassName: string) {
  return {
    apiVersion: "cert-manager.io/v1",
    kind: "ClusterIssuer",
    metadata: { name },
    spec: {
      acme: {
        server: ACME_SERVERS[name],
        // Without an e-mail (self-signed CA chosen) the account simply has no contact.
        ...(email ? { email } : {}),
        privateKeySecretRef: { name: `${name}-account-key` },
        // The solver's Ingress listens on port 80, where everything else is redirected to HTTPS.
        solvers: [
          { http01: { ingress: { ingressClassName, ingressTemplate: { metadata: { annotations: { ...PLAIN_HTTP_ANNOTATIONS } } } } } },
        ],
      },
    },
  };
}

export class Security extends pulumi.ComponentResource {
  /** ClusterIssuer for public endpoints: annotate Ingresses with `cert-manager.io/cluster-issuer`. */
  public readonly clusterIssuer: string;
  /**
   * The self-signed CA's certificate (PEM): what browsers must trust when `dare-ca` is the issuer.
   * Marked secret only because it also sits in a Kubernetes Secret (whose data Pulumi always hides);
   * read it with `pulumi stack output dareCaCertificate --show-secrets`.
   */
  public readonly caCertificate: pulumi.Output<string>;
  /** Harbor's URL, when Harbor is on. */
  public readonly harborUrl?: string;
  /** Harbor's generated admin password (secret), when Harbor is on. */
  public readonly harborAdminPassword?: pulumi.Output<string>;

  constructor(name: string, args: SecurityArgs, opts?: pulumi.ComponentResourceOptions) {
    if (args.tlsIssuer !== CA_ISSUER && !/^[^@\s]+@[^@\s]+\.[^@\s]+$/.test(args.acmeEmail)) {
      throw new Error(`${name}: ${args.tlsIssuer} needs an ACME account e-mail, got "${args.acmeEmail}"`);
    }
    super(SECURITY_COMPONENT.type, name, {}, opts);
    const k8sOpts = { provider: args.provider, parent: this };

    const ns = createNamespace("certManager", k8sOpts);
    const certManager = pinnedRelease(
      `${name}-cert-manager`,
      {
        release: "cert-manager",
        chart: CHARTS.certManager,
        mirror: args.chartMirror,
        namespace: ns.metadata.name,
        values: {
          // CRDs with the chart, and kept if the release is ever removed (deleting them deletes every certificate).
          crds: { enabled: true, keep: true },
        },
      },
      k8sOpts,
    );
    const issuerOpts = { ...k8sOpts, dependsOn: [certManager] };

    const issuers: Array<keyof typeof ACME_SERVERS> = ["letsencrypt-staging", "letsencrypt-prod"];
    // Both exist (switching is one config value); without an e-mail they are declared with none.
    const issuerResources: pulumi.Resource[] = issuers.map(
      (issuer) =>
        new k8s.apiextensions.CustomResource(
          `${name}-${issuer}`,
          acmeIssuer(issuer, args.acmeEmail, args.ingressClassName) as k8s.apiextensions.CustomResourceArgs,
          issuerOpts,
        ),
    );

    // The CA itself is made before the cluster (dareCertificateAuthority).
    this.caCertificate = pulumi.secret(args.ca.certPem);
    const caSecret = new k8s.core.v1.Secret(
      `${name}-ca`,
      {
        metadata: { name: CA_ISSUER, namespace: ns.metadata.name },
        type: "kubernetes.io/tls",
        stringData: { "tls.crt": args.ca.certPem, "tls.key": args.ca.keyPem },
      },
      k8sOpts,
    );
    const caIssuer = new k8s.apiextensions.CustomResource(
      `${name}-${CA_ISSUER}`,
      {
        apiVersion: "cert-manager.io/v1",
        kind: "ClusterIssuer",
        metadata: { name: CA_ISSUER },
        spec: { ca: { secretName: CA_ISSUER } },
      },
      { ...issuerOpts, dependsOn: [certManager, caSecret] },
    );
    issuerResources.push(caIssuer);
    this.clusterIssuer = args.tlsIssuer;

    // dare:domain's certificate, the default of Traefik's TLS store (the HTTP-01 solver runs in Traefik's namespace).
    new k8s.apiextensions.CustomResource(
      `${name}-domain-certificate`,
      {
        apiVersion: "cert-manager.io/v1",
        kind: "Certificate",
        metadata: { name: DOMAIN_CERTIFICATE.name, namespace: DOMAIN_CERTIFICATE.namespace },
        spec: {
          secretName: DOMAIN_CERTIFICATE.secretName,
          dnsNames: [args.domain],
          issuerRef: { group: "cert-manager.io", kind: "ClusterIssuer", name: args.tlsIssuer },
        },
      },
      { ...k8sOpts, dependsOn: [certManager, ...issuerResources] },
    );
    // Traefik uses only the store named "default"; until the Secret exists it serves its own self-signed certificate.
    new k8s.apiextensions.CustomResource(
      `${name}-default-tls-store`,
      {
        apiVersion: "traefik.io/v1alpha1",
        kind: "TLSStore",
        metadata: { name: "default", namespace: DOMAIN_CERTIFICATE.namespace },
        spec: { defaultCertificate: { secretName: DOMAIN_CERTIFICATE.secretName } },
      },
      k8sOpts,
    );

    if (args.harbor.enabled) {
      const harbor = this.harbor(name, args, k8sOpts, args.ca.certPem);
      this.harborUrl = harbor.url;
      this.harborAdminPassword = harbor.adminPassword;
    }

    this.registerOutputs({
      clusterIssuer: this.clusterIssuer,
      caCertificate: this.caCertificate,
      harborUrl: this.harborUrl,
      harborAdminPassword: this.harborAdminPassword,
    });
  }

  /** Harbor behind the ingress with a certificate from the chosen issuer; every secret generated. */
  private harbor(name: string, args: SecurityArgs, k8sOpts: pulumi.CustomResourceOptions, caCertPem: pulumi.Output<string>) {
    const parent = { parent: this };
    const host = `harbor.${args.domain}`;
    const ns = createNamespace("harbor", k8sOpts);
    new NamespaceIsolation(
      `${name}-harbor`,
      { provider: args.provider, namespace: ns.metadata.name, allowWithinNamespace: true },
      { parent: this },
    );

    // Harbor checks lengths: 16 characters for its internal secrets, 32 for the XSRF key.
    const password = (suffix: string, length: number) =>
      new random.RandomPassword(`${name}-harbor-${suffix}`, { length, special: false }, parent);
    const generated = (suffix: string, length: number) => pulumi.secret(password(suffix, length).result);
    const admin = generated("admin", 24);
    const secretKey = generated("secret-key", 16);
    const registryPassword = password("registry-password", 24);

    const adminSecret = new k8s.core.v1.Secret(
      `${name}-harbor-admin`,
      {
        metadata: { name: "harbor-admin", namespace: ns.metadata.name },
        type: "Opaque",
        stringData: { HARBOR_ADMIN_PASSWORD: admin },
      },
      k8sOpts,
    );
    const keySecret = new k8s.core.v1.Secret(
      `${name}-harbor-secret-key`,
      {
        metadata: { name: "harbor-secret-key", namespace: ns.metadata.name },
        type: "Opaque",
        stringData: { secretKey },
      },
      k8sOpts,
    );

    // Single sign-on: the OIDC settings with the client secret live in a Secret of their own, read by
    // harbor-core as CONFIG_OVERWRITE_JSON (the chart's core.configureUserSettings would put the secret
    // into the Helm values). Its hash on the pod restarts harbor-core when the settings change.
    const sso = args.harborSso;
    const ssoDeps: pulumi.Resource[] = [];
    let ssoValues: Record<string, unknown> = {};
    if (sso) {
      // dare-ca: Harbor trusts that CA (caBundleSecretName) and verifies Keycloak's certificate. Let's
      // Encrypt staging's roots are in no trust store: verification is off there (test certificates only).
      const selfSigned = args.tlsIssuer === CA_ISSUER;
      const verifyCert = args.tlsIssuer !== "letsencrypt-staging";
      const settings = sso.clientSecret.apply((secret) => JSON.stringify(harborOidcSettings(sso, secret, verifyCert)));
      ssoDeps.push(
        new k8s.core.v1.Secret(
          `${name}-harbor-oidc`,
          {
            metadata: { name: HARBOR_OIDC_SECRET, namespace: ns.metadata.name },
            type: "Opaque",
            stringData: { CONFIG_OVERWRITE_JSON: pulumi.secret(settings) },
          },
          k8sOpts,
        ),
      );
      if (selfSigned) {
        ssoDeps.push(
          new k8s.core.v1.Secret(
            `${name}-harbor-ca-bundle`,
            {
              metadata: { name: HARBOR_CA_BUNDLE_SECRET, namespace: ns.metadata.name },
              type: "Opaque",
              stringData: { "ca.crt": caCertPem },
            },
            k8sOpts,
          ),
        );
      }
      const hash = pulumi.unsecret(pulumi.secret(settings).apply((v) => crypto.createHash("sha256").update(v).digest("hex").slice(0, 16)));
      ssoValues = {
        ...(selfSigned ? { caBundleSecretName: HARBOR_CA_BUNDLE_SECRET } : {}),
        core: {
          extraEnvVars: [
            { name: "CONFIG_OVERWRITE_JSON", valueFrom: { secretKeyRef: { name: HARBOR_OIDC_SECRET, key: "CONFIG_OVERWRITE_JSON" } } },
          ],
          podAnnotations: { "dare.io/oidc-settings-hash": hash },
        },
      };
    }

    const volume = (size?: string) => ({ storageClass: args.storageClass, ...(size ? { size } : {}) });
    pinnedRelease(
      `${name}-harbor`,
      {
        release: "harbor",
        chart: CHARTS.harbor,
        mirror: args.chartMirror,
        namespace: ns.metadata.name,
        timeout: 900,
        values: {
          expose: {
            type: "ingress",
            // cert-manager fills harbor-tls from the Ingress annotation below.
            tls: { enabled: true, certSource: "secret", secret: { secretName: "harbor-tls" } },
            ingress: {
              hosts: { core: host },
              className: args.ingressClassName,
              annotations: { "cert-manager.io/cluster-issuer": args.tlsIssuer },
            },
          },
          externalURL: `https://${host}`,
          existingSecretAdminPassword: adminSecret.metadata.name,
          existingSecretAdminPasswordKey: "HARBOR_ADMIN_PASSWORD",
          existingSecretSecretKey: keySecret.metadata.name,
          // Its volumes are single-node (Ceph RBD, ReadWriteOnce): a rolling update would start the new pod
          // before the old one lets go of the volume and wait for ever on a Multi-Attach error (values.yaml).
          updateStrategy: { type: "Recreate" },
          persistence: {
            enabled: true,
            resourcePolicy: "keep",
            persistentVolumeClaim: {
              registry: volume(`${args.harbor.registrySizeGb}Gi`),
              jobservice: { jobLog: volume() },
              database: volume(),
              redis: volume(),
              trivy: volume(),
            },
          },
          trivy: { enabled: true },
          // The chart's defaults for these are public strings ("changeit", …): every one is generated.
          database: { internal: { password: generated("database", 24) } },
          ...(ssoValues.caBundleSecretName ? { caBundleSecretName: ssoValues.caBundleSecretName } : {}),
          core: { secret: generated("core", 16), xsrfKey: generated("xsrf", 32), ...((ssoValues.core as object | undefined) ?? {}) },
          jobservice: { secret: generated("jobservice", 16) },
          registry: {
            secret: generated("registry", 16),
            credentials: {
              password: pulumi.secret(registryPassword.result),
              // A fixed htpasswd line: the chart's own htpasswd() salts anew, and changes, on every update.
              htpasswdString: pulumi.secret(pulumi.interpolate`harbor_registry_user:${registryPassword.bcryptHash}`),
            },
          },
        },
      },
      { ...k8sOpts, dependsOn: [adminSecret, keySecret, ...ssoDeps] },
    );

    return { url: `https://${host}`, adminPassword: admin };
  }
}
