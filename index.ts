/**
 * DARE platform: one Pulumi program from the machines to the DARE services (program.ts wires
 * the layers). The Pulumi CLI runs this file (Pulumi.yaml's main): its exports are the stack outputs.
 */
import { dareProgram } from "./program";

const outputs = dareProgram();

export const hosts = outputs.hosts;
export const apiServer = outputs.apiServer;
/** What kubectl talks to (from dare:adminCidrs); the kubeconfig output points here. */
export const apiServerUrl = outputs.apiServerUrl;
/** null without a bastion (existing hosts without dare:bastion). */
export const bastion = outputs.bastion;
export const sshPublicKey = outputs.sshPublicKey;
export const sshPrivateKey = outputs.sshPrivateKey;
export const kubeconfig = outputs.kubeconfig;
export const kubernetesVersion = outputs.kubernetesVersion;
/** Point the DNS names (domain, harbor.<domain>) here. The platform's outputs are null with dare:stopAfter = bootstrap. */
export const ingressAddresses = outputs.ingressAddresses;
export const clusterIssuer = outputs.clusterIssuer;
export const dareCaCertificate = outputs.dareCaCertificate;
export const harborUrl = outputs.harborUrl;
export const harborAdminPassword = outputs.harborAdminPassword;
export const keycloakUrl = outputs.keycloakUrl;
export const keycloakAdminConsole = outputs.keycloakAdminConsole;
/** master realm administrator (the admin console) */
export const keycloakAdmin = outputs.keycloakAdmin;
/** realm dare's administrator, the account dare-login manages users with */
export const dareRealmAdmin = outputs.dareRealmAdmin;
export const dareLoginClientSecret = outputs.dareLoginClientSecret;
export const grafanaUrl = outputs.grafanaUrl;
export const grafanaAdmin = outputs.grafanaAdmin;
export const mpiJobApiVersion = outputs.mpiJobApiVersion;
export const dareUrl = outputs.dareUrl;
/** Each DARE service's address behind the ingress, by workload name. */
export const dareServiceUrls = outputs.dareServiceUrls;
/** The borg repository server's authorized_keys: one line per host, its own key confined to its own repository (docs/recovery.md). */
export const borgAuthorizedKeys = outputs.borgAuthorizedKeys;
/** The borg passphrase (secret): keep a copy outside the state, or the archives cannot be read. */
export const borgPassphrase = outputs.borgPassphrase;
/** The data-holding resources of this update; the next one refuses to lose any of them unless allowed (dare:allowDataLoss). */
export const dataResources = outputs.dataResources;
