/** Stack files of the engine tier: existing hosts (the network-namespace test hosts, or any addresses for a preview). */
import * as YAML from "yaml";
import { EXAMPLE_HOST_KEY } from "../../lib/config";
import { TEST_SUBNET_PREFIX } from "../hosts/harness";
import { SITE_IMAGES } from "../support/site";

/** The test hosts' subnet (tests/hosts/harness.ts). */
export const TEST_SUBNET = `${TEST_SUBNET_PREFIX}.0/24`;

export interface ExistingHostsStack {
  /** addresses of the hosts: the first is the control plane, the others workers of pool `workers` */
  hosts: string[];
  /** their SSH host keys, in the same order (the test hosts' `hostPublicKey`); unset: a placeholder, for a preview, which dials no host */
  hostKeys?: string[];
  /** the hosts' subnet (dare:network.cidr and dare:adminCidrs); default the test hosts' */
  subnet?: string;
  /** the Helm chart mirror every release is installed from */
  chartMirror: string;
  /** login user of the hosts */
  user?: string;
  /** dare:stopAfter */
  stopAfter?: "bootstrap";
  /** dare:skipAwait (the platform test: its API server has no kubelet behind it) */
  skipAwait?: boolean;
}

export const hostName = (i: number) => (i === 0 ? "cp-0" : `w-${i - 1}`);

export function existingHostsStack(args: ExistingHostsStack): string {
  return YAML.stringify({
    config: {
      "dare:provider": "existing",
      "dare:domain": "engine.dare.example.org",
      "dare:adminCidrs": [args.subnet ?? TEST_SUBNET],
      "dare:network": { cidr: args.subnet ?? TEST_SUBNET },
      "dare:hosts": args.hosts.map((address, i) => ({
        name: hostName(i),
        role: i === 0 ? "control-plane" : "workers",
        address,
        privateAddress: address,
        user: args.user ?? "ubuntu",
        port: 22,
        // Ceph needs a disk; the stand-ins never touch it.
        disks: i === 0 ? [] : ["/dev/vdb"],
        hostKey: args.hostKeys?.[i] ?? EXAMPLE_HOST_KEY,
      })),
      "dare:ceph": { replicas: 1, monitors: 1 },
      "dare:ingressLoadBalancer": false,
      "dare:chartMirror": args.chartMirror,
      // The DARE images without a published default, as a site that built them sets them.
      "dare:images": SITE_IMAGES,
      "dare:backupOptOut": "engine tier: disposable test hosts",
      ...(args.stopAfter ? { "dare:stopAfter": args.stopAfter } : {}),
      ...(args.skipAwait ? { "dare:skipAwait": true } : {}),
    },
  });
}
