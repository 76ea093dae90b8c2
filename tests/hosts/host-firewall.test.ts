/**
 * The host firewall for real: the rendered nftables ruleset is checked with `nft -c`, then loaded into a
 * network namespace standing for a host, and connections are opened to it from another namespace holding a
 * pod address, a node address and an outside address. What the ruleset admits is what the kernel lets
 * through. Needs root, nftables, iproute2 and python3 (CI runs as root): without them the tests fail.
 */
import { spawn, spawnSync, ChildProcess } from "child_process";
import { firewallRules } from "../../lib/host-plan";
import { NODE_PORT_RANGE, nftablesRuleset, podPorts } from "../../components/cluster/host-firewall";
import { HostRole } from "../../lib/hosts";

jest.setTimeout(60_000);

const NODE_CIDR = "10.10.0.0/24";
const POD_CIDR = "10.244.0.0/16";
const HOST = "10.10.0.2";
const NODE = "10.10.0.7";
const POD = "10.244.1.5";
const OUTSIDE = "198.51.100.9";
const ADMIN_CIDR = "203.0.113.0/24";
const ADMIN = "203.0.113.4";
/** An existing hosts' jump host (dare:bastion.privateAddress), outside every other range. */
const JUMP = "192.0.2.77";

const tag = `${process.pid % 100000}`;
const hostNs = `dare-fw-h-${tag}`;
const clientNs = `dare-fw-c-${tag}`;

function run(cmd: string[], input?: string): { code: number; out: string } {
  const r = spawnSync(cmd[0], cmd.slice(1), { encoding: "utf8", input });
  if (r.error) throw new Error(`${cmd[0]}: ${r.error.message} (the host firewall tests need root, nftables, iproute2 and python3)`);
  return { code: r.status ?? -1, out: `${r.stdout}${r.stderr}` };
}
function must(cmd: string[], input?: string): string {
  const r = run(cmd, input);
  if (r.code !== 0) throw new Error(`${cmd.join(" ")} failed: ${r.out}`);
  return r.out;
}

function ruleset(role: HostRole, apiLoadBalancer = true, jumpHost?: string): string {
  const rules = firewallRules({ adminCidrs: [ADMIN_CIDR], network: { cidr: NODE_CIDR } as any }, apiLoadBalancer, jumpHost);
  return nftablesRuleset(rules, role, { nodes: [NODE_CIDR], controlPlane: [HOST] }, POD_CIDR);
}

/** Ports the fake host listens on: what pods may call, and what they must not. */
const PORTS = [22, 179, 2379, 2381, 6443, 9100, 10249, 10250, 10257, 10259, NODE_PORT_RANGE[0] + 1234];
let listener: ChildProcess | undefined;

beforeAll(() => {
  must(["ip", "netns", "add", hostNs]);
  must(["ip", "netns", "add", clientNs]);
  must(["ip", "link", "add", `fwh${tag}`, "netns", hostNs, "type", "veth", "peer", "name", `fwc${tag}`, "netns", clientNs]);
  const inHost = (...c: string[]) => must(["ip", "netns", "exec", hostNs, ...c]);
  const inClient = (...c: string[]) => must(["ip", "netns", "exec", clientNs, ...c]);
  inHost("ip", "link", "set", "lo", "up");
  inHost("ip", "addr", "add", `${HOST}/24`, "dev", `fwh${tag}`);
  inHost("ip", "link", "set", `fwh${tag}`, "up");
  inClient("ip", "link", "set", "lo", "up");
  inClient("ip", "addr", "add", `${NODE}/24`, "dev", `fwc${tag}`);
  for (const a of [POD, OUTSIDE, ADMIN, JUMP]) inClient("ip", "addr", "add", `${a}/32`, "dev", `fwc${tag}`);
  inClient("ip", "link", "set", `fwc${tag}`, "up");
  // The host answers the other sources through the client's link.
  for (const a of [POD, OUTSIDE, ADMIN, JUMP]) inHost("ip", "route", "add", `${a}/32`, "dev", `fwh${tag}`);
  const server = [
    "import socket, select",
    `ss = []`,
    `for p in ${JSON.stringify(PORTS)}:`,
    "    s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1); s.bind(('0.0.0.0', p)); s.listen(16); ss.append(s)",
    "print('ready', flush=True)",
    "while True:",
    "    for s in select.select(ss, [], [])[0]:",
    "        c, _ = s.accept(); c.close()",
  ].join("\n");
  listener = spawn("ip", ["netns", "exec", hostNs, "python3", "-c", server], { stdio: ["ignore", "pipe", "inherit"] });
});

afterAll(() => {
  listener?.kill();
  run(["ip", "netns", "del", hostNs]);
  run(["ip", "netns", "del", clientNs]);
});

async function ready(): Promise<void> {
  await new Promise<void>((resolve, reject) => {
    listener!.stdout!.once("data", () => resolve());
    listener!.once("exit", (code) => reject(new Error(`listener exited ${code}`)));
  });
}
let listening: Promise<void> | undefined;

/** Loads the role's ruleset on the fake host, then reports, per source and port, whether a TCP connection opens. */
async function reachable(
  role: HostRole,
  probes: Array<[string, number]>,
  { target = HOST, apiLoadBalancer = true, jumpHost = undefined as string | undefined } = {},
): Promise<Record<string, boolean>> {
  listening ??= ready();
  await listening;
  must(["ip", "netns", "exec", hostNs, "nft", "-f", "-"], ruleset(role, apiLoadBalancer, jumpHost));
  const client = [
    "import socket, json, sys",
    "out = {}",
    `for src, port in ${JSON.stringify(probes)}:`,
    "    s = socket.socket(); s.settimeout(0.5); s.bind((src, 0))",
    "    try:",
    `        s.connect(('${target}', port)); out[f'{src}:{port}'] = True`,
    "    except OSError:",
    "        out[f'{src}:{port}'] = False",
    "    s.close()",
    "print(json.dumps(out))",
  ].join("\n");
  return JSON.parse(must(["ip", "netns", "exec", clientNs, "python3", "-c", client]));
}

describe("host firewall (nftables, for real)", () => {
  it("is valid nftables input for both roles (nft -c)", () => {
    for (const role of ["control-plane", "worker"] as HostRole[]) {
      const r = run(["ip", "netns", "exec", hostNs, "nft", "-c", "-f", "-"], ruleset(role));
      expect({ role, ...r }).toEqual({ role, code: 0, out: "" });
    }
  });

  it("lets pods reach only the API server and the metrics on a control plane, not etcd, SSH or BGP", async () => {
    const got = await reachable(
      "control-plane",
      PORTS.map((p): [string, number] => [POD, p]),
    );
    const open = PORTS.filter((p) => got[`${POD}:${p}`]);
    expect(open).toEqual([2381, 6443, 9100, 10249, 10250, 10257, 10259]);
    expect(open).toEqual(podPorts("control-plane"));
  });

  it("lets pods reach only kubelet, node-exporter and kube-proxy's metrics on a worker", async () => {
    const got = await reachable(
      "worker",
      PORTS.map((p): [string, number] => [POD, p]),
    );
    expect(PORTS.filter((p) => got[`${POD}:${p}`])).toEqual([9100, 10249, 10250]);
  });

  it("keeps the nodes' own rules: members reach etcd's peers only on control planes, kubelet and health checks on workers", async () => {
    const healthCheck = NODE_PORT_RANGE[0] + 1234;
    const worker = await reachable("worker", [
      [NODE, 10250],
      [NODE, healthCheck],
      [NODE, 2379],
      [OUTSIDE, 10250],
      [OUTSIDE, healthCheck],
      [ADMIN, 22],
      [OUTSIDE, 22],
    ]);
    expect(worker).toEqual({
      [`${NODE}:10250`]: true,
      [`${NODE}:${healthCheck}`]: true,
      [`${NODE}:2379`]: false,
      [`${OUTSIDE}:10250`]: false,
      [`${OUTSIDE}:${healthCheck}`]: false,
      [`${ADMIN}:22`]: true,
      [`${OUTSIDE}:22`]: false,
    });
    // Control planes run no Traefik: no health-check port there.
    const cp = await reachable("control-plane", [
      [NODE, 6443],
      [NODE, healthCheck],
      [ADMIN, 6443],
      [OUTSIDE, 6443],
    ]);
    expect(cp).toEqual({ [`${NODE}:6443`]: true, [`${NODE}:${healthCheck}`]: false, [`${ADMIN}:6443`]: true, [`${OUTSIDE}:6443`]: false });
  });

  it("needs nothing more for the API's virtual IP: ARP passes (not IP), and the VIP on 6443 meets the API's own rule", async () => {
    // What kube-vip's leader does (components/cluster/kube-vip.ts): the VIP added to the interface of the host's address,
    // found by the client through ARP on the shared link.
    const vip = "10.10.0.250";
    must(["ip", "netns", "exec", hostNs, "ip", "addr", "add", `${vip}/32`, "dev", `fwh${tag}`]);
    try {
      const got = await reachable(
        "control-plane",
        [
          [NODE, 6443],
          [ADMIN, 6443],
          [POD, 6443],
          [OUTSIDE, 6443],
          [NODE, 2379],
        ],
        { target: vip, apiLoadBalancer: false },
      );
      expect(got).toEqual({
        [`${NODE}:6443`]: true,
        [`${ADMIN}:6443`]: true,
        [`${POD}:6443`]: true,
        [`${OUTSIDE}:6443`]: false,
        [`${NODE}:2379`]: false,
      });
      expect(must(["ip", "netns", "exec", clientNs, "ip", "neigh", "show", vip])).toMatch(/lladdr/);
    } finally {
      run(["ip", "netns", "exec", hostNs, "ip", "addr", "del", `${vip}/32`, "dev", `fwh${tag}`]);
    }
  });

  it("admits SSH, and only SSH, from existing hosts' jump host (dare:bastion.privateAddress), and from it only when one is set", async () => {
    for (const role of ["control-plane", "worker"] as HostRole[]) {
      const r = run(["ip", "netns", "exec", hostNs, "nft", "-c", "-f", "-"], ruleset(role, true, JUMP));
      expect({ role, ...r }).toEqual({ role, code: 0, out: "" });
    }
    const probes: Array<[string, number]> = [
      [JUMP, 22],
      [JUMP, 6443],
      [JUMP, 10250],
      [OUTSIDE, 22],
    ];
    expect(await reachable("worker", probes, { jumpHost: JUMP })).toEqual({
      [`${JUMP}:22`]: true,
      [`${JUMP}:6443`]: false,
      [`${JUMP}:10250`]: false,
      [`${OUTSIDE}:22`]: false,
    });
    expect(
      await reachable(
        "control-plane",
        [
          [JUMP, 22],
          [JUMP, 6443],
        ],
        { jumpHost: JUMP },
      ),
    ).toEqual({ [`${JUMP}:22`]: true, [`${JUMP}:6443`]: false });
    expect((await reachable("worker", [[JUMP, 22]]))[`${JUMP}:22`]).toBe(false);
  });
});
