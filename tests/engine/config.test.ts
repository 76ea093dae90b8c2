/**
 * The stack configuration as the real Pulumi CLI handles it: both stack files pass its validation and
 * `pulumi preview` runs the program, and every `pulumi config set` command the README and docs/ show
 * produces configuration the loader accepts (the CLI writes only the stack file, merges no project
 * default into a structured key, and types only integers and booleans).
 */
import { spawnSync } from "child_process";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import * as YAML from "yaml";
import { loadConfig } from "../../lib/config";
import { requireEngine, ROOT, workspace, Workspace } from "./support";

jest.setTimeout(300_000);
beforeAll(requireEngine);

const stackFile = (stack: string) => fs.readFileSync(path.join(ROOT, `Pulumi.${stack}.yaml`), "utf8");

/** The loader over the configuration the CLI resolved (`pulumi config --json`), as the program sees it. */
async function loaderOver(ws: Workspace) {
  const values = await ws.config();
  const text = (key: string) => {
    const v = values[`dare:${key}`];
    return v === undefined ? undefined : typeof v === "string" ? v : JSON.stringify(v);
  };
  return loadConfig({ stack: ws.stack, get: text });
}

describe.each(["testbed", "production"])("the %s stack under the real CLI", (stack) => {
  let ws: Workspace;
  beforeAll(async () => {
    ws = await workspace(stack, stackFile(stack));
  });
  afterAll(() => ws?.remove());

  it("has a configuration the CLI accepts and the loader reads", async () => {
    const config = await loaderOver(ws);
    expect(config.clusterName).toBe(`dare-${stack}`);
  });

  it("gets through `pulumi preview`'s configuration check into the program", async () => {
    const result = await ws.pulumi(["preview"]);
    const output = result.stdout + result.stderr;
    expect(output).not.toMatch(/missing configuration|validating stack config|Invalid stack configuration/);
    // The program ran and declared its first OpenStack resource: the one plugin the module proxy does not serve.
    expect(output).toMatch(/no resource plugin 'pulumi-resource-openstack' found/);
  });
});

it("refuses a project whose optional key has no default, as the CLI did before (the check this suite relies on)", async () => {
  const project = YAML.parse(fs.readFileSync(path.join(ROOT, "Pulumi.yaml"), "utf8"));
  delete project.config.clusterName.default;
  const ws = await workspace("testbed", stackFile("testbed"), YAML.stringify(project));
  try {
    const result = await ws.pulumi(["preview"]);
    expect(result.code).not.toBe(0);
    expect(result.stdout + result.stderr).toMatch(/Stack 'testbed' is missing configuration value 'clusterName'/);
  } finally {
    ws.remove();
  }
});

/** `pulumi config set` and `rm` commands in README.md and docs/*.md, in reading order: fenced lines and inline code. */
function documentedCommands(): Array<{ file: string; command: string }> {
  const files = [
    "README.md",
    ...fs
      .readdirSync(path.join(ROOT, "docs"))
      .filter((f) => f.endsWith(".md"))
      .sort()
      .map((f) => `docs/${f}`),
  ];
  const found: Array<{ file: string; command: string }> = [];
  for (const file of files) {
    let fenced = false;
    for (const line of fs.readFileSync(path.join(ROOT, file), "utf8").split("\n")) {
      if (/^\s*```/.test(line)) {
        fenced = !fenced;
      } else if (fenced) {
        if (/^\s*pulumi config (set|rm) /.test(line)) found.push({ file, command: line.trim() });
      } else {
        for (const m of line.matchAll(/`(pulumi config (?:set|rm) [^`]*)`/g)) found.push({ file, command: m[1] });
      }
    }
  }
  // A full command names a key and a value; `pulumi config set dare:KEY VALUE` and bare flags are prose.
  return found.filter(
    ({ command }) =>
      !/\bKEY\b|\bVALUE\b/.test(command) && (/^pulumi config set( --\S+)* \S+ \S+/.test(command) || /^pulumi config rm \S+$/.test(command)),
  );
}

it("accepts what every documented `pulumi config set`/`rm` command writes, applied in reading order", async () => {
  const commands = documentedCommands();
  expect(commands.length).toBeGreaterThan(20);
  const ws = await workspace("testbed", stackFile("testbed"));
  // `pulumi` on PATH for the shell: the real CLI through the project's harness, on this workspace's stack.
  const bin = fs.mkdtempSync(path.join(os.tmpdir(), "dare-engine-bin-"));
  const tsNode = require.resolve("ts-node/register/transpile-only", { paths: [ROOT] });
  fs.writeFileSync(
    path.join(bin, "pulumi"),
    `#!/bin/sh\nexec "${process.execPath}" --require "${tsNode}" "${path.join(ROOT, "tools/engine/pulumi.ts")}" "$@" --stack ${ws.stack} --non-interactive\n`,
    { mode: 0o755 },
  );
  const env = {
    ...process.env,
    PATH: `${bin}:${process.env.PATH}`,
    PULUMI_BACKEND_URL: `file://${path.join(ws.dir, "state")}`,
    PULUMI_CONFIG_PASSPHRASE: "engine-tier-test-passphrase",
    TS_NODE_PROJECT: path.join(ROOT, "tsconfig.json"),
  };
  // The deployment key the docs have the reader make with ssh-keygen before `config set … < dare-deployer`.
  spawnSync("ssh-keygen", ["-q", "-t", "ed25519", "-N", "", "-f", path.join(ws.dir, "dare-deployer")]);
  try {
    for (const { file: from, command } of commands) {
      // Placeholders become values; a following `&& pulumi up` is the reader's next step, not this test's.
      const runnable = command.replace(/\s*&& pulumi up$/, "").replace(/<[^>]+>|…/g, "example-value-0123456789");
      const result = spawnSync("bash", ["-c", runnable], { cwd: ws.dir, env, encoding: "utf8" });
      if (result.status !== 0) throw new Error(`${from}: \`${command}\` failed:\n${result.stdout}\n${result.stderr}`);
    }
    // Read together, the documents leave a configuration the loader accepts (one recipe often spans two).
    const config = await loaderOver(ws);
    // What the commands asked for, read back through the loader.
    expect(config.nodes.pools[0]).toMatchObject({ name: "workers", count: 4, disks: { count: 2, sizeGb: 200 } });
    expect(config.nodes.pools[1]).toMatchObject({ name: "gpu", count: 2, flavor: "g1.xlarge", disks: { count: 0 } });
    expect(config.kubernetesVersion).toBe("1.37.1");
    expect(config.identityProviders.map((p) => p.alias)).toEqual(["egi"]);
    expect(config.alerting).toMatchObject({ smtpHost: "smtp.example.org:587", severities: ["critical"] });
    expect(config.dare.backup.repository).toBe("borg@backup.example.org:/srv/borg/dare");
    expect(config.tlsIssuer).toBe("letsencrypt-prod");
    expect(config.sshPrivateKey).toBeDefined();
    // The air-gapped recipe's mirrors, registry names quoted in the CLI's path syntax.
    expect(config.mirrors.registries["docker.io"]).toBe("https://harbor.example.org/v2/dockerhub-proxy");
    expect(config.mirrors.apt.kubernetes).toBe("https://mirror.example.org/pkgs.k8s.io");
    expect(config.mirrors.caCertificate).toBe("dare-ca");
  } finally {
    ws.remove();
    fs.rmSync(bin, { recursive: true, force: true });
  }
});
