/**
 * DARE platform: one Pulumi program from the machines to the DARE services.
 * Each layer is one ComponentResource; layers talk only through the outputs wired here.
 */
import * as pulumi from "@pulumi/pulumi";
import { loadConfig, pulumiConfigSource } from "./components/config";
import { Infrastructure } from "./components/infrastructure";

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
