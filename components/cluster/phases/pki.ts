/**
 * The cluster's key material on the control planes: the shared CAs, the service-account key,
 * the Secrets encryption configuration and the audit policy, before kubeadm runs there.
 */
import * as pulumi from "@pulumi/pulumi";
import * as random from "@pulumi/random";
import { auditPolicy, encryptionConfiguration } from "../kubeadm-config";
import { ClusterPki } from "../pki";
import { ClusterContext, HostSteps } from "./context";

/**
 * Writes `pki` (made by KubernetesCluster, which also signs the admin kubeconfig with it) and one
 * 32-byte Secrets encryption key per configured name to every control plane. Depends on nothing but the
 * hosts: the files only wait for kubeadm. Returns the pki step per control plane.
 */
export function distributePki(ctx: ClusterContext, { pki }: { pki: ClusterPki }): HostSteps {
  // Secrets in etcd: one 32-byte key per configured name, secret in the state and on the wire.
  const encryption = pulumi.secret(
    pulumi
      .all(
        (ctx.args.secretsEncryptionKeys ?? ["key1"]).map((keyName) =>
          new random.RandomBytes(`${ctx.name}-secrets-encryption-${keyName}`, { length: 32 }, { parent: ctx.parent }).base64.apply(
            (secret) => ({
              name: keyName,
              secret,
            }),
          ),
        ),
      )
      .apply(encryptionConfiguration),
  );
  const pkiEnv = {
    CA_CERT: pki.ca.certPem,
    CA_KEY: pki.ca.keyPem,
    FRONT_PROXY_CA_CERT: pki.frontProxyCa.certPem,
    FRONT_PROXY_CA_KEY: pki.frontProxyCa.keyPem,
    ETCD_CA_CERT: pki.etcdCa.certPem,
    ETCD_CA_KEY: pki.etcdCa.keyPem,
    SA_KEY: pki.serviceAccountKeyPem,
    // Public, but an EC key's PEM repeats its private key's last line: kept out of the render with it.
    SA_PUB: pulumi.secret(pki.serviceAccountPublicKeyPem),
    ENCRYPTION_CONFIG: encryption,
    AUDIT_POLICY: auditPolicy(),
  };
  return new Map(ctx.controlPlanes.map((node) => [node.name, ctx.step(node, "pki", "k8s-pki.sh", pkiEnv, [])]));
}
