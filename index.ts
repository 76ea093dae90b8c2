/**
 * DARE platform: one Pulumi program from the machines to the DARE services.
 * Each layer is one ComponentResource; layers talk only through the outputs wired here.
 */
import * as pulumi from "@pulumi/pulumi";
import { loadConfig, pulumiConfigSource } from "./components/config";
import { Infrastructure } from "./components/infrastructure";
import { clusterNodes, KubernetesCluster } from "./components/cluster";

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
