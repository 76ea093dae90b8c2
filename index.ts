/**
 * DARE platform: one Pulumi program from the machines to the DARE services.
 * Each layer is one ComponentResource; layers talk only through the outputs wired here.
 */
import * as pulumi from "@pulumi/pulumi";
import { loadConfig, pulumiConfigSource } from "./components/config";
import { Infrastructure } from "./components/infrastructure";
import { clusterNodes, KubernetesCluster } from "./components/cluster";
import { ingressNodeNames, Networking } from "./components/networking";
import { Security } from "./components/security";
import { Storage } from "./components/storage";
import { Identity } from "./components/identity";
import { Monitoring } from "./components/monitoring";
import { MpiOperator } from "./components/mpi-operator";
import { DareServices, WORKLOADS } from "./components/dare-services";
import { Backups } from "./components/backups";

// Validate the whole configuration before any resource is declared.
const config = loadConfig(pulumiConfigSource());

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
  apiLoadBalancer: config.apiLoadBalancer,
});

export const hosts = infra.hosts;
export const apiServer = infra.apiServer;
/** What kubectl talks to (from dare:adminCidrs); the kubeconfig output points here. */
export const apiServerUrl = pulumi.interpolate`https://${infra.apiServer.publicAddress}:${infra.apiServer.port}`;
export const bastion = infra.bastion;
export const sshPublicKey = infra.sshPublicKey;
export const sshPrivateKey = pulumi.secret(infra.sshPrivateKey);

// 2. Kubernetes: kubeadm over SSH on those hosts; its provider carries every later layer's objects.
const cluster = new KubernetesCluster(config.clusterName, {
  nodes: clusterNodes(config),
  hosts: infra.hostByName,
  apiServer: infra.apiServer,
  bastion: infra.bastion,
  sshPrivateKey: infra.sshPrivateKey,
  kubernetesVersion: config.kubernetesVersion,
  network: config.network,
  clusterName: config.clusterName,
  adminCidrs: config.adminCidrs,
  apiLoadBalancer: config.provider === "openstack" && config.apiLoadBalancer,
  // OCCM (networking layer) initialises the nodes, giving them the providerIDs its load balancers need.
  externalCloudProvider: config.provider === "openstack",
});

export const kubeconfig = pulumi.secret(cluster.kubeconfig);
export const kubernetesVersion = cluster.kubernetesVersion;

// 3. Networking: Calico, Traefik (the one IngressClass) and, on OpenStack, Octavia load balancers.
const networking = new Networking("networking", {
  provider: cluster.provider,
  chartMirror: config.chartMirror,
  cloud: config.provider,
  clusterName: config.clusterName,
  hosts: infra.hosts,
  podCidr: config.network.podCidr,
  nodeCidr: config.network.cidr,
  loadBalancer: config.ingressLoadBalancer,
  ingressNodes: ingressNodeNames(config),
  externalNetwork: config.provider === "openstack" ? config.network.externalNetwork : undefined,
}, { dependsOn: [cluster] });
/** Point the DNS names (domain, harbor.<domain>) here. */
export const ingressAddresses = networking.ingressAddresses;

// 4. Storage: Rook Ceph on the hosts' disks; rook-ceph-block (the default class) and rook-cephfs (RWX).
const storage = new Storage("storage", {
  provider: cluster.provider,
  chartMirror: config.chartMirror,
  hosts: infra.hosts,
  replicas: config.ceph.replicas,
  monitors: config.ceph.monitors,
}, { dependsOn: [networking] });

// 5. Security: cert-manager and its ClusterIssuers; Harbor when switched on.
const security = new Security("security", {
  provider: cluster.provider,
  chartMirror: config.chartMirror,
  clusterName: config.clusterName,
  domain: config.domain,
  ingressClassName: networking.ingressClassName,
  tlsIssuer: config.tlsIssuer,
  acmeEmail: config.acmeEmail,
  harbor: config.harbor,
  storageClass: storage.blockStorageClass,
}, { dependsOn: [networking, storage] });
export const clusterIssuer = security.clusterIssuer;
export const dareCaCertificate = security.caCertificate;
// null without Harbor: shown as such, rather than a warning about an undefined output.
export const harborUrl = security.harborUrl ?? null;
export const harborAdminPassword = security.harborAdminPassword ?? null;

// 6. A/A: Keycloak at https://<domain>/auth on PostgreSQL (CloudNativePG); realm dare applied as code.
const identity = new Identity("identity", {
  provider: cluster.provider,
  chartMirror: config.chartMirror,
  domain: config.domain,
  adminCidrs: config.adminCidrs,
  identityProviders: config.identityProviders,
  replicas: config.keycloak.replicas,
  databaseInstances: config.keycloak.databaseInstances,
  databaseSizeGb: config.keycloak.databaseSizeGb,
}, { dependsOn: [networking, storage, security] });
export const keycloakUrl = identity.url;
export const keycloakAdminConsole = identity.adminConsoleUrl;
/** master realm administrator (the admin console) */
export const keycloakAdmin = identity.keycloakAdmin;
/** realm dare's administrator, the account dare-login manages users with */
export const dareRealmAdmin = identity.realmAdmin;
export const dareLoginClientSecret = identity.clientSecret;

// 7. Monitoring: Prometheus, Alertmanager (in-cluster only), Grafana at https://<domain>/grafana.
const monitoring = new Monitoring("monitoring", {
  provider: cluster.provider,
  chartMirror: config.chartMirror,
  clusterName: config.clusterName,
  domain: config.domain,
  alerting: config.alerting,
}, { dependsOn: [networking, storage, security] });
export const grafanaUrl = monitoring.grafanaUrl;
export const grafanaAdmin = monitoring.grafanaAdmin;

// 8. The MPI operator (MPIJob kubeflow.org/v2beta1), which runs exec-api's workflows.
const mpiOperator = new MpiOperator("mpi-operator", {
  provider: cluster.provider,
  image: config.dare.images["mpi-operator"],
}, { dependsOn: [networking] });
export const mpiJobApiVersion = mpiOperator.apiVersion;

// 9. The DARE services behind https://<domain>/<service>, with their databases and shared file system.
const dare = new DareServices("dare", {
  provider: cluster.provider,
  chartMirror: config.chartMirror,
  domain: config.domain,
  images: config.dare.images,
  services: config.dare.services,
  sharedFilesystemSize: config.dare.sharedFilesystemSize,
  jupyterhub: config.dare.jupyterhub,
  monitoring,
  keycloak: identity.dareLogin,
  ingressClassName: networking.ingressClassName,
  blockStorageClass: storage.blockStorageClass,
  sharedStorageClass: storage.sharedStorageClass,
  // exec-api reaches the API at the control planes (and the API load balancer) after Service translation.
  apiServerCidrs: pulumi.all([infra.hosts, infra.apiServer]).apply(([list, api]) => [...new Set([
    ...list.filter((h) => h.role === "control-plane").map((h) => `${h.privateAddress}/32`),
    `${api.privateAddress}/32`,
  ])]),
}, { dependsOn: [identity, mpiOperator, storage] });
export const dareUrl = dare.url;
/** Each DARE service's address behind the ingress, by workload name (JupyterHub's base URL is /jupyter). */
export const dareServiceUrls: Record<string, string> = {
  ...Object.fromEntries(Object.entries(WORKLOADS).flatMap(([service, w]) => (w.ingressPath ? [[service, `${dare.url}${w.ingressPath}`]] : []))),
  ...(config.dare.jupyterhub ? { jupyterhub: `${dare.url}/jupyter` } : {}),
};

// 10. Backups: etcd snapshots and database dumps on the control planes; borg for every host when dare:backup is set.
const backups = new Backups("backups", {
  provider: cluster.provider,
  policy: config.dare.backup,
  images: {
    etcd: config.dare.images.etcd,
    mysql: config.dare.images["d4p-registry-db"],
    mongo: config.dare.images["sprov-db"],
    postgres: config.dare.images["postgres-client"],
    busybox: config.dare.images.busybox,
  },
  mysql: { host: dare.mysqlHost, port: config.dare.services["d4p-registry-db"].port, username: "root", password: dare.mysqlRootPassword },
  mongo: { host: dare.mongoHost, port: config.dare.services["sprov-db"].port, username: "root", password: dare.mongoRootPassword },
  postgres: identity.database,
  borg: config.dare.backup.repository ? {
    hosts: clusterNodes(config).map((node) => ({
      name: node.name,
      host: infra.hostByName[node.name],
    })),
    ssh: { privateKey: infra.sshPrivateKey, bastion: infra.bastion },
    dependsOn: [...cluster.steps.prepare.values()],
  } : undefined,
}, { dependsOn: [dare] });
/** Add to the borg repository server's authorized_keys (see docs/recovery.md). */
export const borgPublicKey = backups.borgPublicKey;
