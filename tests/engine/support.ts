/**
 * The engine tier's workspaces: a folder with the project's Pulumi.yaml and one stack file, a local
 * file:// backend and a passphrase secrets provider, driven by the real Pulumi CLI through
 * tools/engine/pulumi.ts (as `npm run pulumi` does). The chart mirror from the shared folder is served on
 * 127.0.0.1 so Helm releases resolve their charts offline.
 */
import { spawn } from "child_process";
import * as fs from "fs";
import * as http from "http";
import * as os from "os";
import * as path from "path";
import { AddressInfo } from "net";
import { engineDir } from "../../tools/engine/pulumi";
import { sharedDir } from "../../tools/validate/shared";
import { ROOT } from "../support/render";
import { untgz } from "../support/untgz";

export { ROOT };
const HARNESS = path.join(ROOT, "tools", "engine", "pulumi.ts");
const TS_NODE = require.resolve("ts-node/register/transpile-only", { paths: [ROOT] });

export interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
}

export interface RunOptions {
  timeoutMs?: number;
  /** written to the CLI's standard input (e.g. a secret for `config set`, which then stays off the command line) */
  stdin?: string;
}

export interface Workspace {
  dir: string;
  stack: string;
  /** Runs `pulumi ARGS --stack <stack>` in the workspace; never throws on a non-zero exit. */
  pulumi(args: string[], opts?: RunOptions): Promise<CliResult>;
  /** Like pulumi(), but throws with the CLI's output when it fails. */
  ok(args: string[], opts?: RunOptions): Promise<string>;
  /** The stack's configuration as the CLI resolves it (project defaults applied), secrets shown. */
  config(): Promise<Record<string, unknown>>;
  remove(): void;
}

/**
 * A new workspace with Pulumi.yaml (or `projectYaml`) and `stackYaml` as Pulumi.<stack>.yaml, its stack
 * created in a fresh file:// backend under the workspace.
 */
export async function workspace(
  stack: string,
  stackYaml: string,
  projectYaml = fs.readFileSync(path.join(ROOT, "Pulumi.yaml"), "utf8"),
): Promise<Workspace> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), `dare-engine-${stack}-`));
  fs.mkdirSync(path.join(dir, "state"));
  fs.writeFileSync(path.join(dir, "Pulumi.yaml"), projectYaml);
  const env = {
    ...process.env,
    PULUMI_BACKEND_URL: `file://${path.join(dir, "state")}`,
    PULUMI_CONFIG_PASSPHRASE: "engine-tier-test-passphrase",
    // Plain output, nothing to a terminal.
    PULUMI_SKIP_CONFIRMATIONS: "true",
    NO_COLOR: "1",
    // ts-node reads the project's tsconfig, not one in the workspace.
    TS_NODE_PROJECT: path.join(ROOT, "tsconfig.json"),
  };
  const run = (args: string[], { timeoutMs = 600_000, stdin }: RunOptions = {}): Promise<CliResult> =>
    new Promise((resolve, reject) => {
      const child = spawn(process.execPath, ["--require", TS_NODE, HARNESS, ...args, "--stack", stack, "--non-interactive"], {
        cwd: dir,
        env,
      });
      let stdout = "";
      let stderr = "";
      child.stdout.on("data", (d) => {
        stdout += d;
      });
      child.stderr.on("data", (d) => {
        stderr += d;
      });
      child.stdin.end(stdin ?? "");
      const timer = setTimeout(() => child.kill("SIGTERM"), timeoutMs);
      child.on("error", reject);
      child.on("exit", (code) => {
        clearTimeout(timer);
        resolve({ code: code ?? -1, stdout, stderr });
      });
    });
  // Local files the program names relative to the project directory (the MPIJob CRD's ConfigFile), which
  // its providers read from their working directory, the workspace: the workspace holds the project's tree.
  fs.symlinkSync(path.join(ROOT, "components"), path.join(dir, "components"));
  const ws: Workspace = {
    dir,
    stack,
    pulumi: (args, opts) => run(args, opts),
    ok: async (args, opts) => {
      const result = await run(args, opts);
      if (result.code !== 0) throw new Error(`pulumi ${args.join(" ")} exited ${result.code}:\n${result.stdout}\n${result.stderr}`);
      return result.stdout;
    },
    config: async () => {
      const entries = JSON.parse(await ws.ok(["config", "--json", "--show-secrets"])) as Record<
        string,
        { value?: string; objectValue?: unknown }
      >;
      return Object.fromEntries(Object.entries(entries).map(([k, v]) => [k, v.objectValue ?? v.value]));
    },
    remove: () => fs.rmSync(dir, { recursive: true, force: true }),
  };
  const init = await run(["stack", "init", "--secrets-provider", "passphrase"]);
  if (init.code !== 0) throw new Error(`pulumi stack init failed:\n${init.stdout}\n${init.stderr}`);
  // After init: `stack init` writes the stack file's encryption salt, which the stack file below must keep.
  const salt = /^encryptionsalt: .*$/m.exec(fs.readFileSync(path.join(dir, `Pulumi.${stack}.yaml`), "utf8"))?.[0] ?? "";
  fs.writeFileSync(path.join(dir, `Pulumi.${stack}.yaml`), `${salt}\n${stackYaml}`);
  return ws;
}

/**
 * Serves ../shared/chart-mirror (a static Helm repository) on 127.0.0.1; resolves to its URL. Like an
 * air-gapped site's mirror (README, "Air-gapped sites"), it also serves each chart unpacked beside its
 * archive, `<chart>-<version>/<path in chart>`: the CRD files the program applies itself (lib/helm.ts).
 * A CRD chart the shared mirror lacks (Calico's `crd.projectcalico.org.v1`) is served the same way from the
 * upstream files of ../shared/crds taken from that chart at its tag (their index names chart path and tag).
 */
export async function serveChartMirror(): Promise<{ url: string; close: () => Promise<void> }> {
  const root = path.join(sharedDir(), "chart-mirror");
  if (!fs.existsSync(path.join(root, "index.yaml"))) throw new Error(`no Helm chart mirror at ${root} (see README, "The engine tier")`);
  const unpacked = new Map<string, Map<string, Buffer>>();
  // `<chart>-<version>/<path in chart>` -> a ../shared/crds file whose upstream path is charts/<chart>/<path> at tag <version>.
  const sharedCrds = new Map(
    (
      JSON.parse(fs.readFileSync(path.join(sharedDir(), "crds", "index.json"), "utf8")) as Array<{
        path: string;
        upstream_ref: string;
        upstream_path: string;
      }>
    ).flatMap((f) => {
      const m = /^charts\/([^/]+)\/(.+)$/.exec(f.upstream_path);
      return m
        ? [[`${m[1]}-${f.upstream_ref.replace(/^tag /, "")}/${m[2]}`, path.join(sharedDir(), "crds", f.path)] as [string, string]]
        : [];
    }),
  );
  const server = http.createServer((req, res) => {
    const parts = decodeURIComponent((req.url ?? "/").split("?")[0])
      .split("/")
      .filter((p) => p && p !== "..");
    const archive = parts.length > 1 ? path.join(root, `${parts[0]}.tgz`) : undefined;
    if (archive && fs.existsSync(archive)) {
      if (!unpacked.has(archive)) unpacked.set(archive, untgz(archive));
      // The archive's entries start with the chart's name: <chart>/<path>.
      const chart = parts[0].replace(/-v?\d[^-]*$/, "");
      const content = unpacked.get(archive)!.get([chart, ...parts.slice(1)].join("/"));
      if (content) res.writeHead(200, { "content-type": "text/yaml" }).end(content);
      else res.writeHead(404).end();
      return;
    }
    const sharedCrd = sharedCrds.get(parts.join("/"));
    if (sharedCrd) {
      res.writeHead(200, { "content-type": "text/yaml" });
      fs.createReadStream(sharedCrd).pipe(res);
      return;
    }
    const name = parts.length === 1 ? parts[0] : "";
    const file = path.join(root, name);
    if (!name || !fs.existsSync(file)) {
      res.writeHead(404).end();
      return;
    }
    res.writeHead(200, { "content-type": name.endsWith(".yaml") ? "text/yaml" : "application/gzip" });
    fs.createReadStream(file).pipe(res);
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  return { url: `http://127.0.0.1:${port}`, close: () => new Promise((resolve) => server.close(() => resolve())) };
}

/** Whether tools/engine/build.sh has assembled the engine (npm run test:engine does that first). */
export function requireEngine(): void {
  const cli = path.join(engineDir(), "bin", "pulumi");
  if (!fs.existsSync(cli))
    throw new Error(`no engine at ${cli}: run the engine tier with npm run test:engine (it builds the engine first)`);
}
