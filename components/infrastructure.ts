/**
 * Layer 1, IaaS: the machines. On OpenStack it creates the network, security groups, instances,
 * Ceph volumes and the API load balancer; with `existing` hosts it creates nothing and passes the
 * configured hosts on. Either way later layers read only `hosts`, `apiServer`, `bastion` and the SSH key.
 */
import * as openstack from "@pulumi/openstack";
import * as pulumi from "@pulumi/pulumi";
import * as tls from "@pulumi/tls";
import { normalizeHostKey, opensshPublicKey } from "../lib/ssh-key";
import { ApiVirtualIpSpec, CONTROL_PLANE_ROLE, ExistingHostSpec, NetworkSpec, NodesSpec, Provider } from "../lib/config";
import { hostStep, SshAccess, StepRecorder } from "../lib/host-step";
import { ApiEndpoint, Host, LONG_CONNECTION_SECONDS, SshEndpoint } from "../lib/hosts";
import { API_PORT, existingHostsInOrder, firewallRules, planNodes, RuleSpec, SSH_PORT } from "../lib/host-plan";

/** Where udev names an OpenStack volume's disk on its host, whatever the bus (disk-link.sh): Ceph's device path. */
export function diskPath(volumeId: string): string {
  return `/dev/disk/dare/${volumeId}`;
}

export interface InfrastructureArgs {
  /** `openstack` creates the machines; `existing` uses `hosts` as they are. */
  provider: Provider;
  /** Prefix of every cloud resource and host name, e.g. `dare-testbed`. */
  clusterName: string;
  /** Control-plane count and the worker pools (OpenStack: what to create; existing: pool names). */
  nodes: NodesSpec;
  /** The machines, for `existing` only. */
  hosts: ExistingHostSpec[];
  /** Private network and the ranges Kubernetes uses inside it. */
  network: NetworkSpec;
  /** Source ranges allowed to reach SSH and the Kubernetes API. */
  adminCidrs: string[];
  /** OpenStack image name of every node (new nodes only: running nodes are upgraded in place). */
  image: pulumi.Input<string>;
  /** Login user of the image. */
  sshUser: string;
  /** The operator's own SSH key (OpenSSH format, secret); undefined: an ED25519 key made here. */
  sshPrivateKey?: pulumi.Input<string>;
  /**
   * Put an Octavia load balancer in front of the API, whatever the control-plane count: the API endpoint
   * is fixed for the life of the cluster, so going from 1 to 3 control planes changes no address.
   */
  apiLoadBalancer: boolean;
  /**
   * The API's virtual IP (kube-vip, held by one control plane at a time), without `apiLoadBalancer`: it becomes
   * the API endpoint. On OpenStack a port reserves the address (Neutron never hands it to a VM), the control
   * planes' ports may carry it (allowed-address-pairs: port security drops traffic for addresses a port does not
   * own, ARP replies included) and the API's floating IP points at it.
   */
  apiVirtualIp?: Pick<ApiVirtualIpSpec, "address">;
  /** `existing` only: the jump host SSH goes through to reach the hosts marked `viaBastion` (dare:bastion). */
  bastion?: SshEndpoint;
  /** The key to log in to `bastion` with (OpenSSH format, secret); undefined: the hosts' key. */
  bastionPrivateKey?: pulumi.Input<string>;
  /** Receives the disk steps as they are declared (the offline render's); undefined: recorded nowhere. */
  stepRecorder?: StepRecorder;
}

/**
 * cloud-init user data that installs `key` as the VM's only SSH host key: with `ssh_keys`, cloud-init's ssh
 * module deletes the image's host keys (`ssh_deletekeys`, default true), writes `ed25519_private` and
 * `ed25519_public` to /etc/ssh/ssh_host_ed25519_key{,.pub} and generates no other type (cloud-init,
 * cloudinit/config/cc_ssh.py). A secret, since it holds the private key.
 */
export function hostKeyUserData(key: tls.PrivateKey): pulumi.Output<string> {
  return pulumi.secret(
    pulumi.all([key.privateKeyOpenssh, key.publicKeyOpenssh]).apply(
      ([privateKey, publicKey]) =>
        // JSON is YAML: the key's newlines survive without block-scalar indentation rules.
        `#cloud-config\n${JSON.stringify({ ssh_deletekeys: true, ssh_keys: { ed25519_private: privateKey, ed25519_public: publicKey.trim() } })}\n`,
    ),
  );
}

/** Stable, readable rule names: a rule keeps its resource when others are added or removed. */
function ruleName(rule: RuleSpec): string {
  const source = "cidr" in rule.from ? rule.from.cidr.replace(/[^0-9a-fA-F]+/g, "-") : rule.from.group;
  return `${rule.group}-${rule.description}-${rule.protocol}-from-${source}`.toLowerCase();
}

export class Infrastructure extends pulumi.ComponentResource {
  /**
   * Every host, control planes first, in a stable order; on OpenStack known once every disk step ran, so
   * that Ceph (which reads this list) is handed only disks udev has named.
   */
  public readonly hosts: pulumi.Output<Host[]>;
  /**
   * Each host by name, depending only on that host's own resources: a layer that works per host
   * (SSH steps) reads these, so a host's work never waits for another host's machine.
   */
  public readonly hostByName: Record<string, pulumi.Output<Host>>;
  /** Where nodes and operators reach the Kubernetes API. */
  public readonly apiServer: pulumi.Output<ApiEndpoint>;
  /** The SSH entry host for hosts without a public address; undefined when every host is reachable directly. */
  public readonly bastion: pulumi.Output<SshEndpoint | undefined>;
  /** Private key that SSH uses on the bastion (secret, OpenSSH format): dare:bastionPrivateKey, or sshPrivateKey. */
  public readonly bastionPrivateKey: pulumi.Output<string>;
  /** Private key that SSH uses on every host (secret, OpenSSH format). */
  public readonly sshPrivateKey: pulumi.Output<string>;
  /** Its public half, for `existing` hosts' authorized_keys. */
  public readonly sshPublicKey: pulumi.Output<string>;

  constructor(name: string, args: InfrastructureArgs, opts?: pulumi.ComponentResourceOptions) {
    // Checked before anything registers, so a bad combination creates nothing.
    if (args.provider === "existing" && args.hosts.length === 0) {
      throw new Error(`${name}: provider "existing" needs at least one host`);
    }
    if (args.provider === "openstack" && args.hosts.length > 0) {
      throw new Error(`${name}: hosts are only used with provider "existing"`);
    }
    if (args.provider === "openstack" && args.apiLoadBalancer && args.apiVirtualIp) {
      throw new Error(`${name}: apiVirtualIp and apiLoadBalancer both give the API an endpoint: choose one`);
    }
    if (args.provider === "openstack" && args.bastion) {
      throw new Error(`${name}: a configured bastion is only used with provider "existing" (OpenStack's is the first control plane)`);
    }
    const stranded = args.hosts.filter((h) => h.viaBastion && !args.bastion).map((h) => h.name);
    if (stranded.length > 0) throw new Error(`${name}: hosts ${stranded.join(", ")} are reached through a bastion, but none is given`);
    super("dare:iaas:Infrastructure", name, {}, opts);

    if (args.sshPrivateKey) {
      this.sshPrivateKey = pulumi.secret(args.sshPrivateKey);
      this.sshPublicKey = pulumi.unsecret(pulumi.output(args.sshPrivateKey).apply(opensshPublicKey));
    } else {
      const sshKey = new tls.PrivateKey(`${name}-ssh`, { algorithm: "ED25519" }, { parent: this });
      this.sshPrivateKey = pulumi.secret(sshKey.privateKeyOpenssh);
      this.sshPublicKey = sshKey.publicKeyOpenssh.apply((k) => k.trim());
    }

    this.bastionPrivateKey = args.bastionPrivateKey ? pulumi.secret(args.bastionPrivateKey) : this.sshPrivateKey;

    const built = args.provider === "openstack" ? this.openstack(name, args) : this.existing(args);
    this.hostByName = built.hostByName;
    this.hosts = built.hosts;
    this.apiServer = built.apiServer;
    this.bastion = built.bastion;

    this.registerOutputs({
      hosts: this.hosts,
      apiServer: this.apiServer,
      bastion: this.bastion,
      sshPrivateKey: this.sshPrivateKey,
      sshPublicKey: this.sshPublicKey,
    });
  }

  private existing(args: InfrastructureArgs) {
    const hosts: Host[] = existingHostsInOrder(args.hosts).map((h) => ({
      name: h.name,
      role: h.role === CONTROL_PLANE_ROLE ? "control-plane" : "worker",
      pool: h.role,
      address: h.address,
      privateAddress: h.privateAddress,
      ...(h.address !== h.privateAddress ? { publicAddress: h.address } : {}),
      sshUser: h.user,
      port: h.port,
      disks: h.disks,
      // The loader checked it; normalised again for callers that build the component directly.
      hostKey: normalizeHostKey(h.hostKey),
      viaBastion: h.viaBastion ?? false,
      // An existing machine's identity is its installation: a new one after a re-install sets it up again.
      ...(h.installation ? { machineId: h.installation } : {}),
    }));
    const first = hosts[0];
    const vip = args.apiVirtualIp?.address;
    return {
      hosts: pulumi.output(hosts),
      hostByName: Object.fromEntries(hosts.map((h) => [h.name, pulumi.output(h)])),
      apiServer: pulumi.output<ApiEndpoint>({
        privateAddress: vip ?? first.privateAddress,
        // Operators use the first control plane's public address where it has one apart from its private one
        // (the VIP lives on the private network only); else the VIP, which then no host's loss takes away.
        publicAddress: first.publicAddress ?? vip ?? first.address,
        port: API_PORT,
      }),
      bastion: pulumi.output<SshEndpoint | undefined>(
        args.bastion ? { ...args.bastion, hostKey: normalizeHostKey(args.bastion.hostKey) } : undefined,
      ),
    };
  }

  private openstack(name: string, args: InfrastructureArgs) {
    const parent = { parent: this };
    const plan = planNodes(args.clusterName, args.nodes);
    const useLoadBalancer = args.apiLoadBalancer;
    const vip = args.apiVirtualIp?.address;

    const external = openstack.networking.getNetworkOutput({ name: args.network.externalNetwork }, parent);
    const network = new openstack.networking.Network(`${name}-net`, { name: `${args.clusterName}-net`, adminStateUp: true }, parent);
    const subnet = new openstack.networking.Subnet(
      `${name}-subnet`,
      {
        name: `${args.clusterName}-subnet`,
        networkId: network.id,
        cidr: args.network.cidr,
        ipVersion: 4,
        dnsNameservers: args.network.dnsNameservers,
      },
      parent,
    );
    const router = new openstack.networking.Router(
      `${name}-router`,
      {
        name: `${args.clusterName}-router`,
        externalNetworkId: external.id,
      },
      parent,
    );
    const routerInterface = new openstack.networking.RouterInterface(
      `${name}-router-interface`,
      {
        routerId: router.id,
        subnetId: subnet.id,
      },
      parent,
    );

    const groups = {
      nodes: new openstack.networking.SecGroup(
        `${name}-nodes`,
        { name: `${args.clusterName}-nodes`, description: "every DARE node" },
        parent,
      ),
      controlPlane: new openstack.networking.SecGroup(
        `${name}-control-plane`,
        { name: `${args.clusterName}-control-plane`, description: "DARE control planes" },
        parent,
      ),
      web: new openstack.networking.SecGroup(
        `${name}-web`,
        { name: `${args.clusterName}-web`, description: "HTTP(S) to DARE ingress nodes" },
        parent,
      ),
    };
    const ruleSpecs = firewallRules(args, useLoadBalancer);
    const rules = ruleSpecs.map(
      (rule) =>
        new openstack.networking.SecGroupRule(
          `${name}-${ruleName(rule)}`,
          {
            description: rule.description,
            direction: "ingress",
            ethertype: "cidr" in rule.from && rule.from.cidr.includes(":") ? "IPv6" : "IPv4",
            protocol: rule.protocol,
            portRangeMin: rule.ports[0],
            portRangeMax: rule.ports[1],
            securityGroupId: groups[rule.group].id,
            ...("cidr" in rule.from ? { remoteIpPrefix: rule.from.cidr } : { remoteGroupId: groups[rule.from.group].id }),
          },
          parent,
        ),
    );
    // The rules SSH and the API need while host steps run (drain and reset included). Every address handed
    // to a later layer is derived from them, so the engine deletes (on destroy, on scale-in) the steps that
    // still use them before these rules, the floating-IP associations and the load balancer.
    const opens = (i: number, port: number) => ruleSpecs[i].ports[0] <= port && port <= ruleSpecs[i].ports[1];
    const rulesReady = pulumi.all(rules.filter((_, i) => opens(i, SSH_PORT) || opens(i, API_PORT)).map((r) => r.id));

    const keypair = new openstack.compute.Keypair(
      `${name}-keypair`,
      {
        name: `${args.clusterName}-deployer`,
        publicKey: this.sshPublicKey,
      },
      parent,
    );
    const controlPlaneGroup = new openstack.compute.ServerGroup(
      `${name}-control-plane-group`,
      {
        name: `${args.clusterName}-control-plane`,
        policies: ["anti-affinity"],
      },
      parent,
    );

    // The VIP's own port, bound to no VM: it keeps the address out of Neutron's allocations (made before the
    // machines' ports, so none of them is given it first) and carries the API's floating IP, which Neutron
    // forwards to whichever control plane answers ARP for the VIP.
    const vipPort = vip
      ? new openstack.networking.Port(
          `${name}-api-vip`,
          {
            name: `${args.clusterName}-api-vip`,
            description: `${args.clusterName} Kubernetes API virtual IP (kube-vip)`,
            networkId: network.id,
            fixedIps: [{ subnetId: subnet.id, ipAddress: vip }],
          },
          parent,
        )
      : undefined;

    const nodeOutputs = plan.map((node) => {
      const isControlPlane = node.role === "control-plane";
      const port = new openstack.networking.Port(
        `${name}-${node.key}-port`,
        {
          name: node.name,
          networkId: network.id,
          fixedIps: [{ subnetId: subnet.id }],
          securityGroupIds: [groups.nodes.id, isControlPlane ? groups.controlPlane.id : groups.web.id],
          // The API's virtual IP moves between the control planes: each one's port must be allowed to carry it.
          ...(isControlPlane && vip ? { allowedAddressPairs: [{ ipAddress: vip }] } : {}),
        },
        {
          ...parent,
          // Set when the port is made, never taken away by an update: dropping dare:apiVirtualIp from a running
          // cluster is refused by the bootstrap (the endpoint stays the VIP), and by then the ports would already
          // have stopped carrying it.
          ignoreChanges: ["allowedAddressPairs"],
          dependsOn: vipPort ? [vipPort] : [],
        },
      );
      // The VM's SSH host key, made here and given to it at boot, so the first connection already knows it.
      const hostKey = new tls.PrivateKey(`${name}-${node.key}-host-key`, { algorithm: "ED25519" }, parent);
      const instance = new openstack.compute.Instance(
        `${name}-${node.key}`,
        {
          name: node.name,
          flavorName: node.flavor,
          imageName: args.image,
          keyPair: keypair.name,
          networks: [{ port: port.id }],
          schedulerHints: isControlPlane ? [{ group: controlPlaneGroup.id }] : undefined,
          metadata: { "dare-cluster": args.clusterName, "dare-pool": node.pool },
          userData: hostKeyUserData(hostKey),
        },
        {
          ...parent,
          dependsOn: [routerInterface],
          // A new image applies to new nodes; running nodes are upgraded in place, never re-created by surprise.
          // User data is read at first boot only and a change of it re-creates the VM: a VM keeps the host key
          // it booted with (docs/operations.md, "SSH host keys", for VMs older than their generated key).
          ignoreChanges: ["imageName", "userData"],
        },
      );
      const volumes = Array.from({ length: node.disks.count }, (_, j) => {
        const volume = new openstack.blockstorage.Volume(
          `${name}-${node.key}-disk-${j}`,
          {
            name: `${node.name}-disk-${j}`,
            size: node.disks.sizeGb,
            description: `Ceph OSD ${j} of ${node.name}`,
          },
          parent,
        );
        const attachment = new openstack.compute.VolumeAttach(
          `${name}-${node.key}-disk-${j}`,
          {
            instanceId: instance.id,
            volumeId: volume.id,
          },
          parent,
        );
        return { volume, attachment };
      });
      let publicAddress: pulumi.Output<string> | undefined;
      if (node.publicIp) {
        const fip = new openstack.networking.FloatingIp(
          `${name}-${node.key}-fip`,
          {
            pool: args.network.externalNetwork,
            description: `${node.name}`,
          },
          parent,
        );
        const association = new openstack.networking.FloatingIpAssociate(
          `${name}-${node.key}-fip`,
          {
            floatingIp: fip.address,
            portId: port.id,
          },
          { ...parent, dependsOn: [routerInterface] },
        );
        publicAddress = pulumi.all([association.floatingIp, rulesReady]).apply(([address]) => address);
      }
      const privateAddress = pulumi.all([port.allFixedIps, rulesReady]).apply(([ips]) => ips[0]);
      const hostPublicKey = hostKey.publicKeyOpenssh.apply(normalizeHostKey);
      return { node, privateAddress, publicAddress, volumes, instance, hostPublicKey };
    });

    const firstControlPlane = nodeOutputs[0];
    const bastionAddress = firstControlPlane.publicAddress as pulumi.Output<string>;
    const bastion = pulumi
      .all([bastionAddress, firstControlPlane.hostPublicKey])
      .apply(([address, hostKey]): SshEndpoint | undefined => ({ address, port: 22, user: args.sshUser, hostKey }));

    const access: SshAccess = { privateKey: this.sshPrivateKey, bastion, stepRecorder: args.stepRecorder };
    // Per host: `reach` (how SSH gets there, its disks' paths) depends on that host's own resources only;
    // `named` also waits for its disk steps. The per-host layers (SSH steps) read `reach`, so no host's
    // preparation waits for a disk step; Ceph reads the list, built from `named`: it is handed only disks
    // that have their names.
    const perHost = nodeOutputs.map((n) => {
      // A volume's disk is named by the bus it sits on (virtio-blk: virtio-<20 characters of its id>,
      // virtio-scsi: scsi-0QEMU_QEMU_HARDDISK_<id>, …), and /dev/vdX or /dev/sdX move between boots. A step on
      // the host finds the disk by the volume id and has udev name it /dev/disk/dare/<volume id>, at every boot
      // (disk-link.sh); Rook and the OSD-removal step are given that name. The path comes through the
      // attachment: the step that takes the disk's OSD out of Ceph depends on it, so Pulumi runs that removal
      // before the volume is detached.
      const paths = pulumi.all(
        n.volumes.map(({ volume, attachment }) => pulumi.all([volume.id, attachment.id]).apply(([id]) => diskPath(id))),
      );
      const reach = pulumi
        .all([n.privateAddress, n.publicAddress ?? pulumi.output(undefined), n.instance.id, paths, n.hostPublicKey])
        .apply(([privateAddress, publicAddress, machineId, disks, hostKey]): Host => ({
          name: n.node.name,
          role: n.node.role,
          pool: n.node.pool,
          address: publicAddress ?? privateAddress,
          privateAddress,
          ...(publicAddress ? { publicAddress } : {}),
          sshUser: args.sshUser,
          port: 22,
          disks,
          hostKey,
          viaBastion: publicAddress === undefined,
          machineId,
        }));
      const links = n.volumes.map(({ volume, attachment }, j) =>
        hostStep(
          "iaas",
          {
            host: { name: n.node.name, host: reach },
            step: `disk-${j}`,
            script: "disk-link.sh",
            deleteScript: "disk-unlink.sh",
            env: { VOLUME_ID: volume.id, DISK_HOST: n.node.name },
            // Runs again on a re-created machine (MACHINE_ID), as an update: never a replacement, whose
            // delete would remove the rule the new step relies on.
          },
          access,
          { ...parent, dependsOn: [attachment] },
        ),
      );
      const named = pulumi.all([reach, pulumi.all(links.map((l) => l.id))]).apply(([host]) => host);
      return { reach, named };
    });

    let apiServer: pulumi.Output<ApiEndpoint>;
    // The API's public address, on the load balancer's or the virtual IP's port (one name: the API has one of them).
    const apiFloatingIp = (portId: pulumi.Input<string>) => {
      const fip = new openstack.networking.FloatingIp(
        `${name}-api-fip`,
        { pool: args.network.externalNetwork, description: `${args.clusterName} Kubernetes API` },
        parent,
      );
      return new openstack.networking.FloatingIpAssociate(
        `${name}-api-fip`,
        { floatingIp: fip.address, portId },
        { ...parent, dependsOn: [routerInterface] },
      );
    };
    if (useLoadBalancer) {
      const lb = new openstack.loadbalancer.LoadBalancer(
        `${name}-api`,
        {
          name: `${args.clusterName}-api`,
          vipSubnetId: subnet.id,
        },
        parent,
      );
      const listener = new openstack.loadbalancer.Listener(
        `${name}-api`,
        {
          name: `${args.clusterName}-api`,
          loadbalancerId: lb.id,
          protocol: "TCP",
          protocolPort: API_PORT,
          // Operators from adminCidrs; nodes and pods from the private network.
          allowedCidrs: [...args.adminCidrs, args.network.cidr],
          // Octavia cuts idle connections after 50 s: watches, logs -f and exec would drop.
          timeoutClientData: LONG_CONNECTION_SECONDS * 1000,
          timeoutMemberData: LONG_CONNECTION_SECONDS * 1000,
        },
        parent,
      );
      const pool = new openstack.loadbalancer.Pool(
        `${name}-api`,
        {
          name: `${args.clusterName}-api`,
          listenerId: listener.id,
          protocol: "TCP",
          lbMethod: "ROUND_ROBIN",
        },
        parent,
      );
      const monitor = new openstack.loadbalancer.Monitor(
        `${name}-api`,
        {
          poolId: pool.id,
          type: "TCP",
          delay: 5,
          timeout: 3,
          maxRetries: 3,
        },
        parent,
      );
      const members = nodeOutputs
        .filter((n) => n.node.role === "control-plane")
        .map(
          (cp) =>
            new openstack.loadbalancer.Member(
              `${name}-api-${cp.node.key}`,
              {
                poolId: pool.id,
                subnetId: subnet.id,
                address: cp.privateAddress,
                protocolPort: API_PORT,
              },
              parent,
            ),
        );
      const association = apiFloatingIp(lb.vipPortId);
      // Derived from every part of the load balancer, for the same reason as the hosts' addresses.
      const lbReady = pulumi.all([rulesReady, listener.id, pool.id, monitor.id, ...members.map((m) => m.id)] as pulumi.Input<unknown>[]);
      apiServer = pulumi.all([lb.vipAddress, association.floatingIp, lbReady] as const).apply(([privateAddress, publicAddress]) => ({
        privateAddress,
        publicAddress,
        port: API_PORT,
      }));
    } else if (vipPort) {
      const association = apiFloatingIp(vipPort.id);
      // Not derived from the control planes' ports: each host's steps already wait for its own port (which
      // carries the VIP's address pair), and a control plane added later changes no other host's steps.
      apiServer = pulumi.all([vipPort.allFixedIps, association.floatingIp, rulesReady] as const).apply(([ips, publicAddress]) => ({
        privateAddress: ips[0],
        publicAddress,
        port: API_PORT,
      }));
    } else {
      apiServer = pulumi.all([firstControlPlane.privateAddress, bastionAddress]).apply(([privateAddress, publicAddress]) => ({
        privateAddress,
        publicAddress,
        port: API_PORT,
      }));
    }
    const hostByName = Object.fromEntries(plan.map((node, i) => [node.name, perHost[i].reach]));
    return { hosts: pulumi.all(perHost.map((h) => h.named)), hostByName, apiServer, bastion };
  }
}
