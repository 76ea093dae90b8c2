/**
 * The prepare step's containerd part on test hosts (tests/hosts/harness.ts), sent exactly as the program
 * sends it (its `create` command and stdin): containerd.io 2.x from Docker's signed apt repository,
 * pinned and held, configured for the kubelet (config version 3, systemd cgroup driver, the pause image);
 * a rerun changes nothing; a cluster member on Ubuntu's containerd 1.7 is moved over in place.
 * Stand-ins (tests/hosts/stubs.ts) for apt's downloads, dpkg's record of the containerd packages,
 * systemctl and containerd. Needs root (CI runs as root): without it the tests fail with the harness's message.
 */
import { readStubCalls, startHosts, stopHosts, STUB_CALL_LOG, TestHost } from "./harness";
import { bootstrapStubs, DOCKER_KEY_FINGERPRINT, KUBERNETES_KEY_FINGERPRINT, STUB_PACKAGES, STUB_STATE } from "./stubs";
import { program, runStep, sshKeyOf, Step } from "./program";

jest.setTimeout(240_000);

const CLUSTER = "ct";
const NAMES = ["ct-0", "ct-1", "ct-2"];
const CONTAINERD_VERSION = "2.3.6";

let hosts: TestHost[] = [];
let steps: Step[] = [];
const byName = (name: string) => hosts.find((h) => h.name === name)!;
const prepareOf = (name: string) => steps.find((s) => s.name === `k8s-${name}-prepare`)!;
const calls = async (name: string) => readStubCalls(byName(name)).catch(() => [] as string[]);
const clearCalls = (name: string) => byName(name).exec(`rm -f ${STUB_CALL_LOG}`);
const pauseImage = () => /^PAUSE_IMAGE='([^']*)'/m.exec(prepareOf("ct-0").parameters)![1];

async function prepare(name: string): Promise<void> {
  const result = await runStep(CLUSTER, hosts, prepareOf(name));
  if (result.code !== 0) throw new Error(`prepare on ${name} failed with ${result.code}:\n${result.stdout}\n${result.stderr}`);
}

/** The package dpkg reports for `pkg` on a host: "<version>", or undefined when it is not installed. */
async function installed(name: string, pkg: string): Promise<string | undefined> {
  const r = await byName(name).exec(`dpkg-query -W -f='\${Status} \${Version}' ${pkg}`);
  return r.code === 0 ? r.stdout.replace(/^(install|hold) ok installed /, "") : undefined;
}

beforeAll(async () => {
  hosts = await startHosts(NAMES, { authorizedKey: sshKeyOf(CLUSTER).publicKeyOpenssh, stubs: bootstrapStubs(NAMES) });
  steps = await program(CLUSTER, hosts, [{ name: "ct-0", controlPlane: true }, { name: "ct-1" }, { name: "ct-2" }]);
});
afterAll(async () => {
  await stopHosts(hosts);
});

describe("a new host", () => {
  const codename = async () => (await byName("ct-0").exec(". /etc/os-release && echo $VERSION_CODENAME")).stdout.trim();

  it("adds Docker's apt repository with its key, checked against Docker's fingerprint", async () => {
    await prepare("ct-0");
    const c = await calls("ct-0");
    expect(c).toContainEqual("curl -fsSL --retry 5 https://download.docker.com/linux/ubuntu/gpg");
    expect(c).toContainEqual(expect.stringMatching(/^gpg --batch --show-keys --with-colons \/tmp\/\S+$/));
    expect(c).toContainEqual("gpg --dearmor --batch --yes -o /etc/apt/keyrings/docker.gpg");
    const host = byName("ct-0");
    expect(await host.readFile("/etc/apt/keyrings/docker.gpg")).toContain("stand-in release key");
    const arch = (await host.exec("dpkg --print-architecture")).stdout.trim();
    expect(await host.readFile("/etc/apt/sources.list.d/docker.list")).toBe(
      `deb [arch=${arch} signed-by=/etc/apt/keyrings/docker.gpg] https://download.docker.com/linux/ubuntu ${await codename()} stable\n`,
    );
    expect(await host.stat("/etc/apt/sources.list.d/docker.list")).toMatchObject({ mode: 0o644, user: "root", group: "root" });
  });

  it("installs containerd.io at the pinned version, keeping our configuration, and holds it", async () => {
    const c = await calls("ct-0");
    const install = `apt-get install -y -q --allow-change-held-packages -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold containerd.io=${CONTAINERD_VERSION}-\\*`;
    expect(c.filter((l) => l.includes("containerd.io="))).toEqual([`${install} --download-only`, install]);
    expect(c).toContainEqual("apt-mark hold containerd.io");
    expect(c.indexOf("apt-mark hold containerd.io")).toBeGreaterThan(c.indexOf(install));
    // Ubuntu's containerd is not asked for any more.
    expect(c.filter((l) => /^apt-get install.* containerd( |$)/.test(l))).toEqual([]);
    expect(await installed("ct-0", "containerd.io")).toMatch(new RegExp(`^${CONTAINERD_VERSION.replace(/\./g, "\\.")}-`));
    // Not a cluster member: the kubelet is left alone.
    expect(c.filter((l) => /^systemctl (stop|start) kubelet/.test(l))).toEqual([]);
  });

  it("writes containerd 2.x configuration version 3: CRI v1 plugins, systemd cgroups, the pause image", async () => {
    const host = byName("ct-0");
    const toml = await host.readFile("/etc/containerd/config.toml");
    expect(toml).toMatch(/^version = 3\n/);
    expect(toml).toContain(`[plugins.'io.containerd.cri.v1.images'.pinned_images]\n  sandbox = '${pauseImage()}'\n`);
    expect(toml).toContain("[plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes.runc]\n  runtime_type = 'io.containerd.runc.v2'\n");
    expect(toml).toContain("[plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes.runc.options]\n  SystemdCgroup = true\n");
    // Version 2's plugin names (containerd 1.x) and containerd.io's own default (CRI disabled) are gone.
    expect(toml).not.toMatch(/io\.containerd\.grpc\.v1\.cri|sandbox_image|disabled_plugins/);
    expect(pauseImage()).toMatch(/^registry\.k8s\.io\/pause:/);
    expect(await host.stat("/etc/containerd/config.toml")).toMatchObject({ mode: 0o644, user: "root", group: "root" });
    const c = await calls("ct-0");
    expect(c.indexOf("containerd config dump")).toBeGreaterThan(-1);
    expect(c.indexOf("systemctl restart containerd")).toBeGreaterThan(c.indexOf("containerd config dump"));
  });

  it("a rerun changes nothing: no download, no install, no restart, no file rewritten", async () => {
    const host = byName("ct-0");
    const stamp = "stat -c '%n %Y %s' /etc/containerd/config.toml /etc/apt/keyrings/docker.gpg /etc/apt/sources.list.d/docker.list";
    const before = (await host.exec(stamp)).stdout;
    await clearCalls("ct-0");
    await new Promise((r) => setTimeout(r, 1100));
    await prepare("ct-0");
    const c = await calls("ct-0");
    // (`systemctl enable --now` is idempotent; prerequisites this machine lacks, e.g. nftables, are asked for
    // again because the stand-ins install nothing.)
    expect(
      c.filter((l) => !l.startsWith("systemctl enable") && /containerd|^(curl|gpg|apt-mark) |^systemctl (restart|stop|start) /.test(l)),
    ).toEqual([]);
    expect((await host.exec(stamp)).stdout).toBe(before);
  });
});

describe("a cluster member on Ubuntu's containerd 1.7", () => {
  const OLD_CONFIG = `version = 2
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "registry.k8s.io/pause:3.10"
[plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
  runtime_type = "io.containerd.runc.v2"
[plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
  SystemdCgroup = true
`;

  beforeAll(async () => {
    const host = byName("ct-1");
    // What the earlier prepare step and kubeadm join left: Ubuntu's containerd, its v2 configuration, a kubelet.
    await host.exec(`mkdir -p ${STUB_PACKAGES} && echo 1.7.12-0ubuntu4 > ${STUB_PACKAGES}/containerd`);
    await host.writeFile("/etc/containerd/config.toml", OLD_CONFIG, { mode: 0o644 });
    await host.writeFile("/etc/kubernetes/kubelet.conf", "kubelet", { mode: 0o600 });
  });

  it("is moved to containerd.io in place: downloaded first, the kubelet stopped only for the swap", async () => {
    expect(await installed("ct-1", "containerd")).toBe("1.7.12-0ubuntu4");
    await prepare("ct-1");
    const c = await calls("ct-1");
    const at = (pattern: RegExp) => c.findIndex((l) => pattern.test(l));
    const order = [
      /^apt-get install .*containerd\.io=.* --download-only$/,
      /^systemctl stop kubelet$/,
      /^apt-get install .*containerd\.io=\S+$/,
      /^apt-mark hold containerd\.io$/,
      /^containerd config dump$/,
      /^systemctl restart containerd$/,
      /^systemctl start kubelet$/,
    ].map(at);
    expect(order).not.toContain(-1);
    expect([...order].sort((a, b) => a - b)).toEqual(order);
    expect(c.filter((l) => l === "systemctl start kubelet")).toHaveLength(1);
    // containerd.io replaced Ubuntu's package (its Conflicts/Replaces), at the pinned version.
    expect(await installed("ct-1", "containerd")).toBeUndefined();
    expect(await installed("ct-1", "containerd.io")).toMatch(new RegExp(`^${CONTAINERD_VERSION.replace(/\./g, "\\.")}-`));
    const toml = await byName("ct-1").readFile("/etc/containerd/config.toml");
    expect(toml).toMatch(/^version = 3\n/);
    expect(toml).toContain("SystemdCgroup = true");
    expect(toml).not.toContain("io.containerd.grpc.v1.cri");
  });

  it("a rerun leaves it alone", async () => {
    await clearCalls("ct-1");
    await prepare("ct-1");
    expect(
      (await calls("ct-1")).filter(
        (l) => !l.startsWith("systemctl enable") && /containerd|^(curl|gpg|apt-mark) |^systemctl (restart|stop|start) /.test(l),
      ),
    ).toEqual([]);
  });
});

describe("Docker's key", () => {
  it("is refused when its fingerprint is not Docker's: no repository, no containerd.io", async () => {
    const host = byName("ct-2");
    await host.exec(`mkdir -p ${STUB_STATE} && echo 0123456789ABCDEF0123456789ABCDEF01234567 > ${STUB_STATE}/docker-key-fingerprint`);
    const result = await runStep(CLUSTER, hosts, prepareOf("ct-2"));
    expect(result.code).not.toBe(0);
    expect(result.stderr).toContain(
      `refusing Docker's apt key: fingerprint '0123456789ABCDEF0123456789ABCDEF01234567', expected ${DOCKER_KEY_FINGERPRINT}`,
    );
    for (const file of ["/etc/apt/keyrings/docker.gpg", "/etc/apt/sources.list.d/docker.list"]) {
      expect((await host.exec(`test -e ${file}`)).code).toBe(1);
    }
    expect((await calls("ct-2")).filter((l) => l.includes("containerd.io"))).toEqual([]);
    expect(await installed("ct-2", "containerd.io")).toBeUndefined();
  });
});

describe("the Kubernetes apt key (pkgs.k8s.io)", () => {
  it("is refused when its fingerprint is not the published one: no repository, no kubeadm", async () => {
    const host = byName("ct-2");
    // Docker's key is right this time; Kubernetes' is not.
    await host.exec(
      `rm -f ${STUB_STATE}/docker-key-fingerprint && echo 0123456789ABCDEF0123456789ABCDEF01234567 > ${STUB_STATE}/k8s-key-fingerprint`,
    );
    await clearCalls("ct-2");
    const result = await runStep(CLUSTER, hosts, prepareOf("ct-2"));
    expect(result.code).not.toBe(0);
    expect(result.stderr).toContain(
      `refusing the Kubernetes apt key (pkgs.k8s.io): fingerprint '0123456789ABCDEF0123456789ABCDEF01234567', expected ${KUBERNETES_KEY_FINGERPRINT}`,
    );
    for (const file of ["/etc/apt/keyrings/kubernetes-apt-keyring.gpg", "/etc/apt/sources.list.d/kubernetes.list"]) {
      expect((await host.exec(`test -e ${file}`)).code).toBe(1);
    }
    expect((await calls("ct-2")).filter((l) => /kubeadm=|kubelet=|kubectl=/.test(l))).toEqual([]);
    // With the right key the same host goes on: the key checked, then stored.
    await host.exec(`rm -f ${STUB_STATE}/k8s-key-fingerprint`);
    await clearCalls("ct-2");
    await prepare("ct-2");
    const c = await calls("ct-2");
    const fetch = c.indexOf("curl -fsSL --retry 5 https://pkgs.k8s.io/core:/stable:/v1.36/deb/Release.key");
    expect(fetch).toBeGreaterThanOrEqual(0);
    expect(c[fetch + 1]).toMatch(/^gpg --batch --show-keys --with-colons \/tmp\/\S+$/);
    expect(c[fetch + 2]).toBe("gpg --dearmor --batch --yes -o /etc/apt/keyrings/kubernetes-apt-keyring.gpg");
    expect(await host.readFile("/etc/apt/sources.list.d/kubernetes.list")).toBe(
      "deb [signed-by=/etc/apt/keyrings/kubernetes-apt-keyring.gpg] https://pkgs.k8s.io/core:/stable:/v1.36/deb/ /\n",
    );
  });
});
