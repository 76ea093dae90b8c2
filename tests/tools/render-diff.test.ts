/** render-diff: the summary of two renders, on fixture dirs and on a real scale-out of the testbed. */
import { execFile, spawnSync } from "child_process";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { promisify } from "util";
import * as YAML from "yaml";
import { plainParametersOf, wrapScript } from "../../lib/host-step";
import { changedPaths, diffRenders, formatMarkdown, readRender } from "../../tools/render-diff";

const ROOT = path.join(__dirname, "..", "..");
const TS_NODE = path.join(ROOT, "node_modules", ".bin", "ts-node");
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "render-diff-"));
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

interface Fixture {
  resources: Array<{ type: string; name: string; inputs: unknown; options?: unknown }>;
  helm?: Record<string, { chart: string; version: string; values: unknown }>;
  files?: Record<string, string>;
}

function writeRender(name: string, fixture: Fixture): string {
  const dir = path.join(tmp, name);
  const resources = fixture.resources
    .map((r) => ({ urn: `urn:pulumi:testbed::dare::${r.type}::${r.name}`, parent: "", custom: true, provider: "", dependencies: [], ...r }))
    .sort((a, b) => a.urn.localeCompare(b.urn));
  const files: Record<string, string> = {
    "resources.json": JSON.stringify(resources, null, 2),
    "outputs.json": "{}\n",
    ...Object.fromEntries(Object.entries(fixture.helm ?? {}).map(([release, h]) => [`helm/${release}.yaml`, YAML.stringify(h)])),
    ...fixture.files,
  };
  for (const [file, content] of Object.entries(files)) {
    fs.mkdirSync(path.dirname(path.join(dir, file)), { recursive: true });
    fs.writeFileSync(path.join(dir, file), content);
  }
  return dir;
}

const instance = (name: string, flavor = "m1.large") => ({
  type: "openstack:compute/instance:Instance",
  name,
  inputs: { name, flavorName: flavor },
});
const port = (name: string) => ({ type: "openstack:networking/port:Port", name: `${name}-port`, inputs: { name } });

const base = writeRender("base", {
  resources: [
    instance("w-0"),
    instance("w-1"),
    port("w-0"),
    port("w-1"),
    { type: "openstack:networking/secGroupRule:SecGroupRule", name: "ssh", inputs: { portRangeMin: 22 } },
  ],
  helm: {
    grafana: { chart: "grafana", version: "10.1.0", values: { adminUser: "admin", persistence: { size: "10Gi" }, plugins: ["a"] } },
    harbor: { chart: "harbor", version: "1.17.0", values: { expose: { type: "ingress" } } },
    old: { chart: "old", version: "1.0.0", values: {} },
  },
  files: { "hosts/w-0/01-base.sh": "echo base\n", "kubernetes/dare/configmap-a.yaml": "a: 1\n" },
});
const head = writeRender("head", {
  resources: [instance("w-0"), instance("w-1", "m1.xlarge"), instance("w-2"), port("w-0"), port("w-1"), port("w-2")],
  helm: {
    grafana: { chart: "grafana", version: "10.2.0", values: { adminUser: "admin", persistence: { size: "20Gi" }, plugins: ["a", "b"] } },
    harbor: { chart: "harbor", version: "1.17.0", values: { expose: { type: "ingress" } } },
    keycloak: { chart: "keycloakx", version: "7.1.0", values: {} },
  },
  files: { "hosts/w-0/01-base.sh": "echo head\n", "hosts/w-2/01-base.sh": "echo head\n" },
});

describe("changedPaths", () => {
  it("names the leaves that differ, including keys on one side only and array items", () => {
    expect(changedPaths({ a: 1, b: { c: 2, d: [1, 2] } }, { a: 1, b: { c: 3, d: [1, 2, 3] }, e: true })).toEqual(["b.c", "b.d[2]", "e"]);
    expect(changedPaths({ a: { b: 1 } }, { a: { b: 1 } })).toEqual([]);
  });
});

describe("render diff of two fixture renders", () => {
  const diff = diffRenders(readRender(base), readRender(head));

  it("finds added, changed and removed resources with the changed input paths", () => {
    expect(diff.added.map((r) => r.name)).toEqual(["w-2", "w-2-port"]);
    expect(diff.removed.map((r) => r.name)).toEqual(["ssh"]);
    expect(diff.changed).toEqual([expect.objectContaining({ name: "w-1", paths: ["flavorName"] })]);
  });

  it("finds chart version changes, value paths, new and removed releases, and leaves unchanged releases out", () => {
    const byName = Object.fromEntries(diff.releases.map((r) => [r.release, r]));
    expect(Object.keys(byName).sort()).toEqual(["grafana", "keycloak", "old"]);
    expect(byName.grafana).toMatchObject({
      status: "changed",
      baseVersion: "10.1.0",
      headVersion: "10.2.0",
      valuePaths: ["persistence.size", "plugins[1]"],
    });
    expect(byName.keycloak.status).toBe("added");
    expect(byName.old.status).toBe("removed");
  });

  it("counts the other rendered files", () => {
    expect(diff.otherFiles).toEqual({
      added: ["hosts/w-2/01-base.sh"],
      changed: ["hosts/w-0/01-base.sh"],
      removed: ["kubernetes/dare/configmap-a.yaml"],
    });
  });

  it("prints a per-type table and the Helm changes in Markdown", () => {
    const md = formatMarkdown(diff, "testbed");
    expect(md).toContain("**Resources:** 2 added, 1 changed, 1 removed");
    expect(md).toContain("| `openstack:compute/instance:Instance` | 1 | 1 | 0 |");
    expect(md).toContain("| `openstack:networking/secGroupRule:SecGroupRule` | 0 | 0 | 1 |");
    expect(md).toContain("| grafana | grafana | **10.1.0 → 10.2.0** | `persistence.size`, `plugins[1]` |");
    expect(md).not.toMatch(/\| harbor \|/);
  });

  it("says so when nothing differs", () => {
    expect(formatMarkdown(diffRenders(readRender(base), readRender(base)))).toContain("No differences");
  });
});

describe("render-diff command", () => {
  const cli = (...args: string[]) =>
    spawnSync(TS_NODE, ["--transpile-only", path.join(ROOT, "tools", "render-diff.ts"), ...args], { cwd: ROOT, encoding: "utf8" });

  it("prints the summary and writes the full unified diff with --full", () => {
    const full = path.join(tmp, "out", "full.diff");
    const result = cli("--title", "testbed", "--full", full, base, head);
    expect(result.status).toBe(0);
    expect(result.stdout).toContain("### testbed");
    const text = fs.readFileSync(full, "utf8");
    expect(text).toContain("-echo base");
    expect(text).toContain("+echo head");
    expect(text).toContain('"flavorName": "m1.xlarge"');
  });

  it("rejects a directory that is not a render, and a missing argument, with exit code 2", () => {
    const notRender = cli(base, tmp);
    expect(notRender.status).toBe(2);
    expect(notRender.stderr).toContain("not a render directory");
    expect(cli(base).status).toBe(2);
  });
});

it("lists a changed lifecycle option as a change of the resource", () => {
  const volume = (options?: unknown) => ({
    type: "openstack:blockstorage/volume:Volume",
    name: "disk-0",
    inputs: { size: 100 },
    ...(options ? { options } : {}),
  });
  const before = writeRender("options-before", { resources: [volume({ protect: true })] });
  const after = writeRender("options-after", { resources: [volume()] });
  const diff = diffRenders(readRender(before), readRender(after));
  expect(diff.changed.map((c) => [c.name, c.paths])).toEqual([["disk-0", ["options.protect"]]]);
  expect(formatMarkdown(diff)).toContain("`options.protect`");
});

it("names a host step's change by the plain parameter or the script that changed in its command", () => {
  const step = (name: string, create: string, stdin = "[secret]") => ({ type: "command:remote:Command", name, inputs: { create, stdin } });
  const a = writeRender("steps-a", {
    resources: [
      step("s-param", wrapScript("echo a\n", "A='1'\nB='x'\n")),
      step("s-script", wrapScript("echo a\n", "A='1'\n")),
      step("s-secret", wrapScript("echo a\n", "A='1'\n")),
      step("s-raw", "echo a"),
    ],
  });
  const b = writeRender("steps-b", {
    resources: [
      step("s-param", wrapScript("echo a\n", "A='2'\nC='y'\n")),
      step("s-script", wrapScript("echo b\n", "A='1'\n")),
      step("s-secret", wrapScript("echo a\n", "A='1'\n"), "[secret]"),
      step("s-raw", "echo b"),
    ],
  });
  expect(diffRenders(readRender(a), readRender(b)).changed.map((r) => [r.name, r.paths])).toEqual([
    ["s-param", ["create.A", "create.B", "create.C"]],
    ["s-raw", ["create"]],
    ["s-script", ["create.script"]],
  ]);
});

describe("real renders: scaling the testbed's workers from 2 to 3", () => {
  const run = promisify(execFile);
  const render = (out: string, ...extra: string[]) =>
    run(TS_NODE, ["--transpile-only", path.join(ROOT, "tools", "render.ts"), "--stack", "testbed", "--out", out, ...extra], {
      cwd: ROOT,
      maxBuffer: 64 * 1024 * 1024,
    });

  it("adds exactly the new node's instance, port, volume and attachment, and changes no existing machine", async () => {
    const before = path.join(tmp, "testbed-2");
    const after = path.join(tmp, "testbed-3");
    await Promise.all([render(before), render(after, "--set", "nodes.pools[0].count=3")]);
    const diff = diffRenders(readRender(before), readRender(after));

    for (const type of [
      "openstack:compute/instance:Instance",
      "openstack:networking/port:Port",
      "openstack:blockstorage/volume:Volume",
      "openstack:compute/volumeAttach:VolumeAttach",
    ]) {
      const added = diff.added.filter((r) => r.type === type);
      expect(added).toHaveLength(1);
      expect(added[0].name).toContain("workers-2");
    }
    expect(diff.removed).toEqual([]);
    const oldNode = /-(cp-0|workers-0|workers-1)(\b|-)/;
    // What is added is about the new node (a step may run on an old node for it: `…-cp-0-node-…-workers-2`).
    expect(diff.added.filter((r) => oldNode.test(r.name) && !r.name.includes("workers-2"))).toEqual([]);
    // No cloud resource of an existing node changes (that would be an update or a replacement of a
    // running machine), no existing host's steps re-run: only the join token is minted for the new
    // node (and revoked after its join), and Ceph learns the new node's disk.
    expect(diff.changed.filter((r) => r.type.startsWith("openstack:"))).toEqual([]);
    expect(diff.changed.map((r) => [r.name, r.paths])).toEqual([
      ["k8s-dare-testbed-cp-0-token", ["triggers[0]"]],
      ["k8s-dare-testbed-cp-0-token-revoke", ["triggers[0]"]],
      ["storage-ceph-cluster", ["values.cephClusterSpec.storage.nodes[2]"]],
    ]);
  }, 120000);
});

describe("real renders: raising the testbed's kubernetesVersion", () => {
  const run = promisify(execFile);
  const render = (out: string, ...extra: string[]) =>
    run(TS_NODE, ["--transpile-only", path.join(ROOT, "tools", "render.ts"), "--stack", "testbed", "--out", out, ...extra], {
      cwd: ROOT,
      maxBuffer: 64 * 1024 * 1024,
    });

  it("lists exactly the host steps that take the version as changed, in their commands (plain parameters), not in a secret stdin", async () => {
    const before = path.join(tmp, "testbed-1.36");
    const after = path.join(tmp, "testbed-1.37");
    await Promise.all([render(before, "--set", "kubernetesVersion=1.36.4"), render(after, "--set", "kubernetesVersion=1.37.0")]);
    const diff = diffRenders(readRender(before), readRender(after));
    expect(diff.added).toEqual([]);
    expect(diff.removed).toEqual([]);
    const cp = "k8s-dare-testbed-cp-0";
    const workers = ["dare-testbed-workers-0", "dare-testbed-workers-1"];
    // init holds the bootstrap token (secret, on stdin): its kubeadm configuration is plain, so the change shows.
    // The reset script run when init leaves the program gets the same plain parameters.
    // Each by the parameter that changed in its command.
    expect(diff.changed.map((r) => `${r.name}: ${r.paths.join(", ")}`).sort()).toEqual(
      [
        `${cp}-init: create.KUBEADM_CONFIG, delete.KUBEADM_CONFIG`,
        // The control plane's reconfiguration step holds the ClusterConfiguration, which names the version.
        `${cp}-control-plane: create.CONTROL_PLANE_CONFIG`,
        `${cp}-prepare: create.KUBERNETES_VERSION`,
        `${cp}-upgrade: create.KUBERNETES_VERSION`,
        ...workers.flatMap((w) => [
          `${cp}-upgrade-drain-${w}: create.KUBERNETES_VERSION`,
          `${cp}-upgrade-uncordon-${w}: create.KUBERNETES_VERSION`,
        ]),
        ...workers.flatMap((w) => [`k8s-${w}-prepare: create.KUBERNETES_VERSION`, `k8s-${w}-upgrade: create.KUBERNETES_VERSION`]),
      ].sort(),
    );
    const initUrn = diff.changed.find((r) => r.name === `${cp}-init`)!.urn;
    const init = readRender(after).resources.get(initUrn)!.inputs as { create: string; stdin: string };
    expect(plainParametersOf(init.create)).toMatch(/kubernetesVersion: v?1\.37\.0/);
    expect(init.stdin).toBe("[secret]");
    expect(formatMarkdown(diff, "t")).toContain(`**${cp}-init**: \`create.KUBEADM_CONFIG\`, \`delete.KUBEADM_CONFIG\``);
  }, 180000);
});
