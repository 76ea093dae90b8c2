/**
 * dare:mirrors on test hosts (tests/hosts/harness.ts): the prepare step, sent exactly as the program sends it
 * (its `create` command and stdin), writes containerd's registry hosts (/etc/containerd/certs.d/<registry>/
 * hosts.toml, containerd docs/hosts.md) with the mirror CA, apt sources on the mirrors with their signing keys
 * kept, and apt's CA setting; setting or removing a mirror never restarts containerd (it reads the hosts files at
 * each pull); a rerun changes nothing; a mirror removed is taken off, the image's Ubuntu sources put back.
 * Stand-ins (tests/hosts/stubs.ts) for apt's downloads, dpkg's record of the containerd packages, systemctl,
 * containerd, kubeadm. Needs root (CI runs as root): without it the tests fail with the harness's message.
 */
import { HostMirrors } from "../../components/cluster";
import { readStubCalls, startHosts, stopHosts, STUB_CALL_LOG, TestHost } from "./harness";
import { bootstrapStubs } from "./stubs";
import { program, runStep, sshKeyOf, Step } from "./program";
import { selfSignedCertificate } from "../support/test-certificates";

jest.setTimeout(240_000);

const CLUSTER = "mr";
const NAMES = ["mr-0", "mr-1"];
const HOSTS_MARK = "# Written by the DARE deployer (dare:mirrors). Do not edit: the next pulumi up rewrites it.";
const HARBOR = "https://harbor.example.org";
const MIRROR = "https://mirror.example.org";
/** The Ubuntu 24.04 image's own sources, as a host has them before any mirror. */
const UBUNTU_SOURCES = `Types: deb
URIs: http://archive.ubuntu.com/ubuntu/
Suites: noble noble-updates noble-backports
Components: main restricted universe multiverse
Signed-By: /usr/share/keyrings/ubuntu-archive-keyring.gpg

Types: deb
URIs: http://security.ubuntu.com/ubuntu/
Suites: noble-security
Components: main restricted universe multiverse
Signed-By: /usr/share/keyrings/ubuntu-archive-keyring.gpg
`;
/** A host upgraded from an older release that still lists Ubuntu in sources.list. */
const LEGACY_SOURCES_LIST = "deb http://archive.ubuntu.com/ubuntu noble main restricted\n";

// A site's mirror CA.
const CA = selfSignedCertificate("mirror CA", { ca: true });
const MIRRORS: HostMirrors = {
  registries: {
    "docker.io": `${HARBOR}/v2/dockerhub-proxy`,
    "registry.k8s.io": HARBOR,
    "registry.example.org:5000": "http://10.213.0.250:5000",
  },
  apt: {
    ubuntu: "http://mirror.example.org/ubuntu",
    kubernetes: `${MIRROR}/pkgs.k8s.io`,
    docker: `${MIRROR}/download.docker.com/linux/ubuntu`,
  },
  caCertificate: CA,
};
/** docker.io's registry mirror and the Ubuntu mirror removed. */
const FEWER: HostMirrors = {
  registries: { "registry.k8s.io": HARBOR, "registry.example.org:5000": "http://10.213.0.250:5000" },
  apt: { kubernetes: MIRRORS.apt.kubernetes, docker: MIRRORS.apt.docker },
  caCertificate: CA,
};

let hosts: TestHost[] = [];
const programs: Record<"plain" | "mirrored" | "fewer", Step[]> = { plain: [], mirrored: [], fewer: [] };
const byName = (name: string) => hosts.find((h) => h.name === name)!;
const calls = async (name: string) => readStubCalls(byName(name)).catch(() => [] as string[]);
const clearCalls = (name: string) => byName(name).exec(`rm -f ${STUB_CALL_LOG}`);
const exists = async (name: string, file: string) => (await byName(name).exec(`test -e '${file}'`)).code === 0;
const codename = async (name: string) => (await byName(name).exec(". /etc/os-release && echo $VERSION_CODENAME")).stdout.trim();
const arch = async (name: string) => (await byName(name).exec("dpkg --print-architecture")).stdout.trim();

async function prepare(name: string, which: keyof typeof programs): Promise<void> {
  const step = programs[which].find((s) => s.name === `k8s-${name}-prepare`)!;
  const result = await runStep(CLUSTER, hosts, step);
  if (result.code !== 0) throw new Error(`prepare (${which}) on ${name} failed with ${result.code}:\n${result.stdout}\n${result.stderr}`);
}

/** What a rerun must leave alone: every file the mirrors touch, by modification time and size. */
const WATCHED = [
  "/etc/containerd/config.toml",
  "/etc/containerd/certs.d/docker.io/hosts.toml",
  "/etc/containerd/certs.d/registry.k8s.io/hosts.toml",
  "/etc/containerd/certs.d/registry.example.org:5000/hosts.toml",
  "/etc/dare/mirror-ca.pem",
  "/etc/apt/apt.conf.d/60dare-mirror-ca",
  "/etc/apt/sources.list.d/ubuntu.sources",
  "/etc/apt/sources.list",
  "/etc/apt/sources.list.d/docker.list",
  "/etc/apt/sources.list.d/kubernetes.list",
];
const stamp = async (name: string) => (await byName(name).exec(`stat -c '%n %Y %s' ${WATCHED.map((f) => `'${f}'`).join(" ")} 2>&1`)).stdout;
/** The calls that would show work: downloads, index updates, installs, containerd restarts. */
const work = (c: string[]) => c.filter((l) => /^(curl|apt-get|gpg) |^systemctl (restart|stop|start) |^containerd /.test(l));

beforeAll(async () => {
  hosts = await startHosts(NAMES, { authorizedKey: sshKeyOf(CLUSTER).publicKeyOpenssh, stubs: bootstrapStubs(NAMES) });
  const spec = [{ name: "mr-0", controlPlane: true }, { name: "mr-1" }];
  programs.plain = await program(CLUSTER, hosts, spec);
  programs.mirrored = await program(CLUSTER, hosts, spec, "1.36.4", { mirrors: MIRRORS });
  programs.fewer = await program(CLUSTER, hosts, spec, "1.36.4", { mirrors: FEWER });
  for (const h of hosts) {
    await h.writeFile("/etc/apt/sources.list.d/ubuntu.sources", UBUNTU_SOURCES, { mode: 0o644 });
    await h.writeFile(
      "/etc/apt/sources.list",
      h.name === "mr-0" ? LEGACY_SOURCES_LIST : "# Ubuntu sources have moved to /etc/apt/sources.list.d/ubuntu.sources\n",
      { mode: 0o644 },
    );
  }
});
afterAll(async () => {
  await stopHosts(hosts);
});

describe("a prepared host given mirrors", () => {
  it("reads registry hosts from /etc/containerd/certs.d even without mirrors (containerd 2.x config_path)", async () => {
    await prepare("mr-0", "plain");
    const toml = await byName("mr-0").readFile("/etc/containerd/config.toml");
    expect(toml).toContain("[plugins.'io.containerd.cri.v1.images'.registry]\n  config_path = '/etc/containerd/certs.d'\n");
    expect(await calls("mr-0")).toContainEqual("systemctl restart containerd");
    expect(await exists("mr-0", "/etc/containerd/certs.d")).toBe(false);
  });

  it("writes a hosts.toml per mirrored registry: the mirror first, its CA, the API root in the path with override_path", async () => {
    await clearCalls("mr-0");
    const before = await byName("mr-0").readFile("/etc/containerd/config.toml");
    await prepare("mr-0", "mirrored");
    const host = byName("mr-0");
    expect(await host.readFile("/etc/containerd/certs.d/docker.io/hosts.toml")).toBe(`${HOSTS_MARK}
[host."${HARBOR}/v2/dockerhub-proxy"]
  capabilities = ["pull", "resolve"]
  override_path = true
  ca = "/etc/dare/mirror-ca.pem"
`);
    expect(await host.readFile("/etc/containerd/certs.d/registry.k8s.io/hosts.toml")).toBe(`${HOSTS_MARK}
[host."${HARBOR}"]
  capabilities = ["pull", "resolve"]
  ca = "/etc/dare/mirror-ca.pem"
`);
    // A plain-http mirror has no certificate to check; a registry with a port names its directory host:port.
    expect(await host.readFile("/etc/containerd/certs.d/registry.example.org:5000/hosts.toml")).toBe(`${HOSTS_MARK}
[host."http://10.213.0.250:5000"]
  capabilities = ["pull", "resolve"]
`);
    expect(await host.readFile("/etc/dare/mirror-ca.pem")).toBe(CA);
    for (const f of ["/etc/containerd/certs.d/docker.io/hosts.toml", "/etc/dare/mirror-ca.pem"]) {
      expect(await host.stat(f)).toMatchObject({ mode: 0o644, user: "root", group: "root" });
    }
    // containerd reads them at each pull: its configuration is unchanged and it is not restarted.
    expect(await host.readFile("/etc/containerd/config.toml")).toBe(before);
    const c = await calls("mr-0");
    expect(c.filter((l) => /^systemctl (restart|stop|start) |^containerd /.test(l))).toEqual([]);
  });

  it("moves apt to the mirrors, keeping each repository's signed-by key, and checks https mirrors against the mirror CA alone", async () => {
    const host = byName("mr-0");
    const cn = await codename("mr-0");
    expect(await host.readFile("/etc/apt/sources.list.d/ubuntu.sources")).toBe(`Types: deb
URIs: http://mirror.example.org/ubuntu/
Suites: ${cn} ${cn}-updates ${cn}-backports ${cn}-security
Components: main restricted universe multiverse
Signed-By: /usr/share/keyrings/ubuntu-archive-keyring.gpg
`);
    // The legacy list no longer names Ubuntu's servers; both originals are kept for the way back.
    expect(await host.readFile("/etc/apt/sources.list")).not.toMatch(/^deb /m);
    expect(await host.readFile("/etc/dare/apt-original/ubuntu.sources")).toBe(UBUNTU_SOURCES);
    expect(await host.readFile("/etc/dare/apt-original/sources.list")).toBe(LEGACY_SOURCES_LIST);
    expect(await host.readFile("/etc/apt/sources.list.d/docker.list")).toBe(
      `deb [arch=${await arch("mr-0")} signed-by=/etc/apt/keyrings/docker.gpg] ${MIRROR}/download.docker.com/linux/ubuntu ${cn} stable\n`,
    );
    expect(await host.readFile("/etc/apt/sources.list.d/kubernetes.list")).toBe(
      `deb [signed-by=/etc/apt/keyrings/kubernetes-apt-keyring.gpg] ${MIRROR}/pkgs.k8s.io/core:/stable:/v1.36/deb/ /\n`,
    );
    // One line per https mirror host (pkgs.k8s.io's and Docker's mirrors share one); the http Ubuntu mirror needs none.
    expect(await host.readFile("/etc/apt/apt.conf.d/60dare-mirror-ca")).toBe(
      'Acquire::https::mirror.example.org::CAInfo "/etc/dare/mirror-ca.pem";\n',
    );
    // The real apt (this machine's, /usr/bin; the stand-ins only replace downloads) reads them so: the index files it
    // would fetch are the mirrors', none Ubuntu's own, and the CA setting is keyed on the mirror's host.
    const targets = (await host.exec("/usr/bin/apt-get indextargets --no-release-info --format '$(URI)' 'Created-By: Packages'")).stdout
      .trim()
      .split("\n");
    const a = await arch("mr-0");
    expect(targets).toEqual(
      expect.arrayContaining([
        ...["", "-updates", "-backports", "-security"].map(
          (pocket) => `http://mirror.example.org/ubuntu/dists/${cn}${pocket}/main/binary-${a}/Packages`,
        ),
        `${MIRROR}/pkgs.k8s.io/core:/stable:/v1.36/deb/Packages`,
        `${MIRROR}/download.docker.com/linux/ubuntu/dists/${cn}/stable/binary-${a}/Packages`,
      ]),
    );
    expect(targets.filter((t) => /ubuntu\.com|\/\/pkgs\.k8s\.io|\/\/download\.docker\.com/.test(t))).toEqual([]);
    expect((await host.exec("/usr/bin/apt-config dump Acquire::https::mirror.example.org::CAInfo")).stdout).toBe(
      'Acquire::https::mirror.example.org::CAInfo "/etc/dare/mirror-ca.pem";\n',
    );
    // The keys in place are kept (the same keys sign the mirrors); apt reads its new sources once.
    const c = await calls("mr-0");
    expect(c.filter((l) => l.startsWith("curl "))).toEqual([]);
    expect(c.filter((l) => l.startsWith("apt-get update"))).toEqual(["apt-get update -q"]);
  });

  it("a rerun changes nothing: no file rewritten, no download, no index update, no restart", async () => {
    const before = await stamp("mr-0");
    await clearCalls("mr-0");
    await new Promise((r) => setTimeout(r, 1100));
    await prepare("mr-0", "mirrored");
    expect(work(await calls("mr-0"))).toEqual([]);
    expect(await stamp("mr-0")).toBe(before);
  });
});

describe("a new host with mirrors from the start", () => {
  it("fetches Docker's and pkgs.k8s.io's keys from the mirrors, checked against the mirror CA and the published fingerprints", async () => {
    await prepare("mr-1", "mirrored");
    const c = await calls("mr-1");
    expect(c).toContainEqual(`curl -fsSL --retry 5 --cacert /etc/dare/mirror-ca.pem ${MIRROR}/download.docker.com/linux/ubuntu/gpg`);
    expect(c).toContainEqual(
      `curl -fsSL --retry 5 --cacert /etc/dare/mirror-ca.pem ${MIRROR}/pkgs.k8s.io/core:/stable:/v1.36/deb/Release.key`,
    );
    expect(c).toContainEqual("gpg --dearmor --batch --yes -o /etc/apt/keyrings/docker.gpg");
    expect(c).toContainEqual("gpg --dearmor --batch --yes -o /etc/apt/keyrings/kubernetes-apt-keyring.gpg");
    // The CA and sources are in place before the first index update and install.
    const firstUpdate = c.indexOf("apt-get update -q");
    expect(firstUpdate).toBeGreaterThan(c.findIndex((l) => l.includes("--cacert")));
    expect(await byName("mr-1").readFile("/etc/containerd/certs.d/docker.io/hosts.toml")).toContain(
      `[host."${HARBOR}/v2/dockerhub-proxy"]`,
    );
    expect(c.filter((l) => l === "systemctl restart containerd")).toHaveLength(1);
  });
});

describe("mirrors removed", () => {
  it("takes off a registry mirror and the Ubuntu mirror, puts the image's sources back, leaves others' hosts files alone, restarts nothing", async () => {
    const host = byName("mr-0");
    // A registry configured by hand (no mark): not this program's to remove.
    const ghcr = '[host."https://ghcr-mirror.example.org"]\n  capabilities = ["pull"]\n';
    await host.writeFile("/etc/containerd/certs.d/ghcr.io/hosts.toml", ghcr, { mode: 0o644 });
    await clearCalls("mr-0");
    await prepare("mr-0", "fewer");
    expect(await exists("mr-0", "/etc/containerd/certs.d/docker.io")).toBe(false);
    expect(await host.readFile("/etc/containerd/certs.d/registry.k8s.io/hosts.toml")).toContain(`[host."${HARBOR}"]`);
    expect(await host.readFile("/etc/containerd/certs.d/ghcr.io/hosts.toml")).toBe(ghcr);
    expect(await host.readFile("/etc/apt/sources.list.d/ubuntu.sources")).toBe(UBUNTU_SOURCES);
    expect(await host.readFile("/etc/apt/sources.list")).toBe(LEGACY_SOURCES_LIST);
    expect(await exists("mr-0", "/etc/dare/apt-original/ubuntu.sources")).toBe(false);
    expect(await exists("mr-0", "/etc/dare/apt-original/sources.list")).toBe(false);
    const c = await calls("mr-0");
    expect(c).toContainEqual("apt-get update -q");
    expect(c.filter((l) => /^systemctl (restart|stop|start) |^containerd /.test(l))).toEqual([]);
  });

  it("all of them: upstream sources, no mirror CA, no hosts file of this program; a rerun then changes nothing", async () => {
    const host = byName("mr-0");
    await clearCalls("mr-0");
    await prepare("mr-0", "plain");
    const cn = await codename("mr-0");
    for (const f of [
      "/etc/containerd/certs.d/registry.k8s.io",
      "/etc/containerd/certs.d/registry.example.org:5000",
      "/etc/dare/mirror-ca.pem",
      "/etc/apt/apt.conf.d/60dare-mirror-ca",
    ]) {
      expect({ f, exists: await exists("mr-0", f) }).toEqual({ f, exists: false });
    }
    expect(await exists("mr-0", "/etc/containerd/certs.d/ghcr.io/hosts.toml")).toBe(true);
    expect(await host.readFile("/etc/apt/sources.list.d/docker.list")).toBe(
      `deb [arch=${await arch("mr-0")} signed-by=/etc/apt/keyrings/docker.gpg] https://download.docker.com/linux/ubuntu ${cn} stable\n`,
    );
    expect(await host.readFile("/etc/apt/sources.list.d/kubernetes.list")).toBe(
      "deb [signed-by=/etc/apt/keyrings/kubernetes-apt-keyring.gpg] https://pkgs.k8s.io/core:/stable:/v1.36/deb/ /\n",
    );
    expect(await host.readFile("/etc/apt/sources.list.d/ubuntu.sources")).toBe(UBUNTU_SOURCES);
    expect((await calls("mr-0")).filter((l) => /^systemctl (restart|stop|start) |^containerd /.test(l))).toEqual([]);
    const targets = (await host.exec("/usr/bin/apt-get indextargets --no-release-info --format '$(URI)' 'Created-By: Packages'")).stdout;
    expect(targets).not.toContain("mirror.example.org");
    expect(targets).toContain("http://archive.ubuntu.com/ubuntu/dists/noble/main/");
    expect(targets).toContain("https://pkgs.k8s.io/core:/stable:/v1.36/deb/Packages");

    const before = await stamp("mr-0");
    await clearCalls("mr-0");
    await new Promise((r) => setTimeout(r, 1100));
    await prepare("mr-0", "plain");
    expect(work(await calls("mr-0"))).toEqual([]);
    expect(await stamp("mr-0")).toBe(before);
  });
});
