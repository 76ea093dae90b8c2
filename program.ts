/**
 * The DARE program: each layer is one ComponentResource; layers talk only through the outputs wired here.
 * index.ts runs it and exports what it returns as the stack outputs; the offline render runs it with a
 * step recorder (tools/program.ts).
 */
import * as pulumi from "@pulumi/pulumi";
import { loadConfig, pulumiConfigSource } from "./lib/config";
import { CA_ISSUER } from "./lib/config-keys";
import { Infrastructure } from "./components/infrastructure";
import { KubernetesCluster } from "./components/cluster";
import { API_PORT, clusterNodes, ingressNodeNames } from "./lib/host-plan";
import { INGRESS_SERVICE_URL, Networking, platformHostNames } from "./components/networking";
import { dareCertificateAuthority, Security, SECURITY_COMPONENT } from "./components/security";
import { Storage } from "./components/storage";
import { Identity, SsoClients } from "./components/identity";
import { Monitoring } from "./components/monitoring";
import { MpiOperator } from "./components/dare-services/mpi-operator";
import { DareServices, WORKLOADS } from "./components/dare-services";
import { AvailabilityProbes } from "./components/monitoring/availability-probes";
import { Backups } from "./components/backups";
import { DataProtection } from "./lib/data-protection";
import { apiServiceAddress, Walls } from "./lib/network-policies";
import { installSkipAwait } from "./lib/await";
import { StepRecorder } from "./lib/host-step";

export interface DareProgramOptions {
  /** Receives every host step as it is declared (the offline render's); undefined: recorded nowhere, as on `pulumi up`. */
  stepRecorder?: StepRecorder;
}

/** Declares every layer of the platform; returns the stack outputs (index.ts exports each). */
export function dareProgram(options: DareProgramOptions = {}) {
  // Validate the whole configuration before any resource is declared.
  const config = loadConfig(pulumiConfigSource());
  // Before the first resource: every data-holding resource is protected (docs/operations.md, "Letting data go").
  const dataProtection = new DataProtection(config.allowDataLoss);
  dataProtection.install();
  // dare:skipAwait: objects accepted, not awaited (staged bring-ups, the engine tier's API server without kubelets).
  if (config.skipAwait) installSkipAwait();
  // The host plan: every host by name, role and pool, control planes first; every layer reads this one list.
  const plannedNodes = clusterNodes(config);

  // 1. IaaS: OpenStack machines, or the hosts that already exist.
  const infra = new Infrastructure(config.clusterName, {
    provider: config.provider,
    clusterName: config.clusterName,
    nodes: config.nodes,
    hosts: config.hosts,
    network: config.network,
    adminCidrs: config.adminCidrs,
    image: config.image,
    sshUser: config.sshUser,
    sshPrivateKey: config.sshPrivateKey,
    apiLoadBalancer: config.apiLoadBalancer,
    apiVirtualIp: config.apiVirtualIp,
    stepRecorder: options.stepRecorder,
    ...(config.bastion
      ? {
          bastion: {
            address: config.bastion.address,
            port: config.bastion.port,
            user: config.bastion.user,
            hostKey: config.bastion.hostKey,
          },
          bastionPrivateKey: config.bastion.privateKey,
        }
      : {}),
  });

  const hosts = infra.hosts;
  const apiServer = infra.apiServer;
  /** What kubectl talks to (from dare:adminCidrs); the kubeconfig output points here. */
  const apiServerUrl = pulumi.interpolate`https://${infra.apiServer.publicAddress}:${infra.apiServer.port}`;
  // null without a bastion (existing hosts without dare:bastion): shown as such, rather than a warning about an undefined output.
  const bastion = infra.bastion.apply((b) => b ?? null);
  const sshPublicKey = infra.sshPublicKey;
  const sshPrivateKey = pulumi.secret(infra.sshPrivateKey);

  // The dare-ca issuer's CA (layer 5's), made first: the hosts may trust it for their mirrors.
  const dareCa = dareCertificateAuthority(config.clusterName);

  // 2. Kubernetes: kubeadm over SSH on those hosts; its provider carries every later layer's objects.
  const cluster = new KubernetesCluster(config.clusterName, {
    nodes: plannedNodes,
    hosts: infra.hostByName,
    apiServer: infra.apiServer,
    bastion: infra.bastion,
    sshPrivateKey: infra.sshPrivateKey,
    bastionPrivateKey: infra.bastionPrivateKey,
    ...(config.bastion ? { jumpHostAddress: config.bastion.privateAddress } : {}),
    kubernetesVersion: config.kubernetesVersion,
    network: config.network,
    clusterName: config.clusterName,
    adminCidrs: config.adminCidrs,
    apiLoadBalancer: config.provider === "openstack" && config.apiLoadBalancer,
    apiVirtualIp: config.apiVirtualIp,
    // OCCM (networking layer) initialises the nodes, giving them the providerIDs its load balancers need.
    externalCloudProvider: config.provider === "openstack",
    secretsEncryptionKeys: config.secretsEncryptionKeys,
    certificateRenewalDays: config.certificateRenewalDays,
    controlPlaneExtraArgs: config.controlPlaneExtraArgs,
    stepRecorder: options.stepRecorder,
    mirrors: {
      ...config.mirrors,
      // Secret as the dare-ca Secret holds it (DareCertificateAuthority.certPem): the prepare steps then keep their logs to themselves.
      caCertificate: config.mirrors.caCertificate === CA_ISSUER ? pulumi.secret(dareCa.certPem) : config.mirrors.caCertificate,
    },
  });

  const kubeconfig = pulumi.secret(cluster.kubeconfig);
  const kubernetesVersion = cluster.kubernetesVersion;

  /** Layers 3 to 10: the platform on the running cluster. */
  function platformLayers() {
    // 3. Networking: Calico, Traefik (the one IngressClass) and, on OpenStack, Octavia load balancers.
    const networking = new Networking(
      "networking",
      {
        provider: cluster.provider,
        chartMirror: config.chartMirror,
        cloud: config.provider,
        clusterName: config.clusterName,
        hosts: infra.hosts,
        podCidr: config.network.podCidr,
        serviceCidr: config.network.serviceCidr,
        nodeCidr: config.network.cidr,
        loadBalancer: config.ingressLoadBalancer,
        ingressNodes: ingressNodeNames(config),
        externalNetwork: config.provider === "openstack" ? config.network.externalNetwork : undefined,
      },
      { dependsOn: [cluster] },
    );
    /** Point the DNS names (domain, harbor.<domain>) here. */
    const ingressAddresses = networking.ingressAddresses;

    // 4. Storage: Rook Ceph on the hosts' disks; rook-ceph-block (the default class) and rook-cephfs (RWX).
    const storage = new Storage(
      "storage",
      {
        provider: cluster.provider,
        chartMirror: config.chartMirror,
        hosts: infra.hosts,
        replicas: config.ceph.replicas,
        monitors: config.ceph.monitors,
      },
      { dependsOn: [networking] },
    );

    // Single sign-on: the secrets of the realm's clients for Grafana, Harbor and JupyterHub, made before the
    // layers that install them (Harbor comes before Keycloak).
    const sso = new SsoClients("sso", { domain: config.domain, harbor: config.harbor.enabled, jupyterhub: config.dare.jupyterhub });

    // 5. Security: cert-manager and its ClusterIssuers; Harbor when switched on.
    const security = new Security(
      SECURITY_COMPONENT.name,
      {
        provider: cluster.provider,
        chartMirror: config.chartMirror,
        ca: dareCa,
        domain: config.domain,
        ingressClassName: networking.ingressClassName,
        tlsIssuer: config.tlsIssuer,
        acmeEmail: config.acmeEmail,
        harbor: config.harbor,
        storageClass: storage.retainedBlockStorageClass,
        harborSso: sso.harbor,
      },
      { dependsOn: [networking, storage] },
    );
    const clusterIssuer = security.clusterIssuer;
    const dareCaCertificate = security.caCertificate;
    // null without Harbor: shown as such, rather than a warning about an undefined output.
    const harborUrl = security.harborUrl ?? null;
    const harborAdminPassword = security.harborAdminPassword ?? null;

    // 6. A/A: Keycloak at https://<domain>/auth on PostgreSQL (CloudNativePG); realm dare applied as code.
    const identity = new Identity(
      "identity",
      {
        provider: cluster.provider,
        chartMirror: config.chartMirror,
        domain: config.domain,
        adminCidrs: config.adminCidrs,
        identityProviders: config.identityProviders,
        replicas: config.keycloak.replicas,
        databaseInstances: config.keycloak.databaseInstances,
        databaseSizeGb: config.keycloak.databaseSizeGb,
        // Volumes that hold data outlive their claims (reclaimPolicy Retain).
        databaseStorageClass: storage.retainedBlockStorageClass,
        ssoClients: sso,
      },
      { dependsOn: [networking, storage, security] },
    );
    const keycloakUrl = identity.url;
    const keycloakAdminConsole = identity.adminConsoleUrl;
    /** master realm administrator (the admin console) */
    const keycloakAdmin = identity.keycloakAdmin;
    /** realm dare's administrator, the account dare-login manages users with */
    const dareRealmAdmin = identity.realmAdmin;
    const dareLoginClientSecret = identity.clientSecret;

    // 7. Monitoring: Prometheus, Alertmanager (in-cluster only), Grafana at https://<domain>/grafana.
    const monitoring = new Monitoring(
      "monitoring",
      {
        provider: cluster.provider,
        chartMirror: config.chartMirror,
        clusterName: config.clusterName,
        domain: config.domain,
        alerting: config.alerting,
        sso: sso.grafana,
      },
      { dependsOn: [networking, storage, security] },
    );
    const grafanaUrl = monitoring.grafanaUrl;
    const grafanaAdmin = monitoring.grafanaAdmin;

    // 8. The MPI operator (MPIJob kubeflow.org/v2beta1), which runs exec-api's workflows.
    const mpiOperator = new MpiOperator(
      "mpi-operator",
      {
        provider: cluster.provider,
        image: config.dare.images["mpi-operator"],
        conversionImage: config.dare.images["mpijob-conversion"],
        // The conversion webhook's Issuer and Certificate are cert-manager's (Security).
      },
      { dependsOn: [networking, security] },
    );
    const mpiJobApiVersion = mpiOperator.apiVersion;

    // Pods reach the API at the control planes (and the API load balancer) after Service translation.
    const apiServerCidrs = pulumi
      .all([infra.hosts, infra.apiServer])
      .apply(([list, api]) => [
        ...new Set([...list.filter((h) => h.role === "control-plane").map((h) => `${h.privateAddress}/32`), `${api.privateAddress}/32`]),
      ]);

    // 9. The DARE services behind https://<domain>/<service>, with their databases and shared file system.
    const dare = new DareServices(
      "dare",
      {
        provider: cluster.provider,
        chartMirror: config.chartMirror,
        domain: config.domain,
        images: config.dare.images,
        services: config.dare.services,
        sharedFilesystemSize: config.dare.sharedFilesystemSize,
        jupyterhub: config.dare.jupyterhub,
        jupyterhubSso: sso.jupyterhub,
        workflowInternetAccess: config.dare.workflowInternetAccess,
        // The platform's public names resolve to Traefik's in-cluster Service inside DARE pods.
        publicNames: { address: networking.clusterIp, hostnames: platformHostNames(config) },
        keycloak: identity.dareLogin,
        ingressClassName: networking.ingressClassName,
        blockStorageClass: storage.retainedBlockStorageClass,
        sharedStorageClass: storage.retainedSharedStorageClass,
        // exec-api reaches the API at the control planes (and the API load balancer) after Service translation.
        apiServerCidrs,
        apiServiceAddress: apiServiceAddress(config.network.serviceCidr),
      },
      { dependsOn: [identity, mpiOperator, storage] },
    );
    const dareUrl = dare.url;
    // Availability of each DARE service, in the cluster and through the ingress (no DARE service exports metrics).
    new AvailabilityProbes("availability", {
      provider: cluster.provider,
      image: config.dare.images["blackbox-exporter"],
      domain: config.domain,
      ingressServiceUrl: INGRESS_SERVICE_URL,
      targets: dare.probeTargets,
      monitoring,
    });
    /** Each DARE service's address behind the ingress, by workload name (JupyterHub's base URL is /jupyter). */
    const dareServiceUrls: Record<string, string> = {
      ...Object.fromEntries(
        Object.entries(WORKLOADS).flatMap(([service, w]) => (w.routes ? [[service, `${dare.url}${w.routes.paths[0]}`]] : [])),
      ),
      ...(config.dare.jupyterhub ? { jupyterhub: `${dare.url}/jupyter` } : {}),
    };

    // 10. Backups: etcd snapshots and database dumps on the control planes; borg for every host when dare:backup is set.
    const backups = new Backups(
      "backups",
      {
        provider: cluster.provider,
        policy: config.dare.backup,
        images: {
          etcd: config.dare.images.etcd,
          postgres: config.dare.images["postgres-client"],
          busybox: config.dare.images.busybox,
        },
        databases: dare.databaseDumps,
        postgres: identity.database,
        borg: config.dare.backup.repository
          ? {
              hosts: plannedNodes.map((node) => ({
                name: node.name,
                host: infra.hostByName[node.name],
              })),
              // Through the bastion as every host step (the hosts' own borg client reaches the repository directly).
              ssh: {
                privateKey: infra.sshPrivateKey,
                bastion: infra.bastion,
                bastionPrivateKey: infra.bastionPrivateKey,
                stepRecorder: options.stepRecorder,
              },
              dependsOn: [...cluster.steps.prepare.values()],
            }
          : undefined,
      },
      { dependsOn: [dare] },
    );

    // 11. Walls: default-deny NetworkPolicies, with each namespace's flows, once the namespaces exist.
    new Walls(
      "walls",
      {
        provider: cluster.provider,
        api: { cidrs: apiServerCidrs, port: API_PORT, serviceAddress: apiServiceAddress(config.network.serviceCidr) },
        harbor: config.harbor.enabled,
        identityProviders: config.identityProviders.length > 0,
      },
      { dependsOn: [networking, storage, security, identity, monitoring, mpiOperator, dare, backups] },
    );
    /** The borg repository server's authorized_keys: one line per host, its own key confined to its own repository (docs/recovery.md). */
    const borgAuthorizedKeys = backups.borgAuthorizedKeys;
    /** The borg passphrase (secret): keep a copy outside the state, or the archives cannot be read. */
    const borgPassphrase = backups.borgPassphrase;
    return {
      ingressAddresses,
      clusterIssuer,
      dareCaCertificate,
      harborUrl,
      harborAdminPassword,
      keycloakUrl,
      keycloakAdminConsole,
      keycloakAdmin,
      dareRealmAdmin,
      dareLoginClientSecret,
      grafanaUrl,
      grafanaAdmin,
      mpiJobApiVersion,
      dareUrl,
      dareServiceUrls,
      borgAuthorizedKeys,
      borgPassphrase,
    };
  }

  // dare:stopAfter = bootstrap stops after layer 2: hosts prepared and joined, nothing applied to the cluster
  // (a staged bring-up; the engine tier's bootstrap test). The later outputs are then null.
  const platform = config.stopAfter === "bootstrap" ? undefined : platformLayers();
  type PlatformOutputs = ReturnType<typeof platformLayers>;
  const noPlatform: Record<keyof PlatformOutputs, null> = {
    ingressAddresses: null,
    clusterIssuer: null,
    dareCaCertificate: null,
    harborUrl: null,
    harborAdminPassword: null,
    keycloakUrl: null,
    keycloakAdminConsole: null,
    keycloakAdmin: null,
    dareRealmAdmin: null,
    dareLoginClientSecret: null,
    grafanaUrl: null,
    grafanaAdmin: null,
    mpiJobApiVersion: null,
    dareUrl: null,
    dareServiceUrls: null,
    borgAuthorizedKeys: null,
    borgPassphrase: null,
  };
  /** The data-holding resources of this update; the next one refuses to lose any of them unless allowed (dare:allowDataLoss). */
  const dataResources = dataProtection.checkedInventory();
  return {
    hosts,
    apiServer,
    apiServerUrl,
    bastion,
    sshPublicKey,
    sshPrivateKey,
    kubeconfig,
    kubernetesVersion,
    ...(platform ?? noPlatform),
    dataResources,
  };
}
