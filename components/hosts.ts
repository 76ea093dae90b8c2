/** What the IaaS layer hands to every later layer: the machines and how to reach them. */

export type HostRole = "control-plane" | "worker";

export interface Host {
  /** host name and Kubernetes node name */
  name: string;
  role: HostRole;
  /** the pool this host belongs to ("control-plane" for control planes) */
  pool: string;
  /** the address SSH dials (through the bastion when `viaBastion`) */
  address: string;
  /** the address cluster members use to reach this host */
  privateAddress: string;
  /** a public address, when the host has one (certificate SANs, DNS for host-port ingress) */
  publicAddress?: string;
  sshUser: string;
  port: number;
  /** block devices for Ceph OSDs, as the host sees them */
  disks: string[];
  /** true when SSH must jump through the bastion to reach `address` */
  viaBastion: boolean;
  /**
   * The machine's identity (OpenStack: the instance id). A lost VM re-created under the same name keeps
   * its addresses and volumes but not this, so the steps that set a host up run again on the new one.
   * Existing hosts: their `installation` (dare:hosts), undefined until the first re-install.
   */
  machineId?: string;
}

/**
 * How long a load balancer or proxy keeps an idle connection open: long enough for `kubectl logs -f`,
 * `exec`, `port-forward`, watches and websockets, and for a large image upload to Harbor. Octavia's own
 * default is 50 s; Traefik v3 reads a request for at most 60 s by default.
 */
export const LONG_CONNECTION_SECONDS = 3600;

export interface SshEndpoint {
  address: string;
  port: number;
  user: string;
}

/** The Kubernetes API as nodes (private) and operators (public) reach it. */
export interface ApiEndpoint {
  /** address nodes use; kubeadm's controlPlaneEndpoint */
  privateAddress: string;
  /** address operators use; in the admin kubeconfig and the certificate SANs */
  publicAddress: string;
  port: number;
}
