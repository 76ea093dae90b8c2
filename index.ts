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
export const bastion = infra.bastion;
export const sshPublicKey = infra.sshPublicKey;
export const sshPrivateKey = pulumi.secret(infra.sshPrivateKey);

// 2. Kubernetes: kubeadm over SSH on those hosts; its provider carries every later layer's objects.
const cluster = new KubernetesCluster(config.clusterName, {
  nodes: clusterNodes(config),
  hosts: infra.hosts,
  apiServer: infra.apiServer,
  bastion: infra.bastion,
  sshPrivateKey: infra.sshPrivateKey,
  kubernetesVersion: config.kubernetesVersion,
  network: config.network,
  clusterName: config.clusterName,
  adminCidrs: config.adminCidrs,
  apiLoadBalancer: config.apiLoadBalancer,
});

export const kubeconfig = pulumi.secret(cluster.kubeconfig);
export const kubernetesVersion = cluster.kubernetesVersion;

// 3. Networking: Calico, Traefik (the one IngressClass) and, on OpenStack, Octavia load balancers.
const networking = new Networking("networking", {
  provider: cluster.provider,
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
  hosts: infra.hosts,
  replicas: config.ceph.replicas,
  monitors: config.ceph.monitors,
}, { dependsOn: [networking] });

// 5. Security: cert-manager and its ClusterIssuers; Harbor when switched on.
const security = new Security("security", {
  provider: cluster.provider,
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
export const harborUrl = security.harborUrl;
export const harborAdminPassword = security.harborAdminPassword;

// 6. A/A: Keycloak at https://<domain>/auth on PostgreSQL (CloudNativePG); realm dare applied as code.
const identity = new Identity("identity", {
  provider: cluster.provider,
  domain: config.domain,
  adminCidrs: config.adminCidrs,
  clusterIssuer: security.clusterIssuer,
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
  clusterName: config.clusterName,
  domain: config.domain,
  clusterIssuer: security.clusterIssuer,
  alerting: config.alerting,
}, { dependsOn: [networking, storage, security] });
export const grafanaUrl = monitoring.grafanaUrl;
export const grafanaAdmin = monitoring.grafanaAdmin;
