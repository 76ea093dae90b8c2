/**
 * The real Pulumi CLI (built by tools/engine/build.sh) on this project, with the program served by the
 * Node.js SDK's own in-process language runtime: the Automation API's LanguageServer, which the CLI reaches
 * through its `--client` flag (runtime "client"). The usual host, the pulumi-language-nodejs plugin, is a
 * Go module of its own that the module proxy does not serve (README, "The engine tier").
 *
 *   npm run pulumi -- preview --stack testbed
 *   npm run pulumi -- config set --path 'nodes.pools[0].count' 3 --stack testbed
 *
 * Every argument goes to the CLI unchanged; the commands that run the program get `--client`. State and
 * secrets are the CLI's own: PULUMI_BACKEND_URL, PULUMI_CONFIG_PASSPHRASE… as set by the caller.
 * One operation per process: the program is loaded once and Pulumi's runtime is a process-wide singleton.
 */
import { spawn } from "child_process";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";

export const PROJECT_ROOT = path.resolve(__dirname, "..", "..");

/** Where tools/engine/build.sh assembles the engine (its last output line). */
export function engineDir(): string {
  const cache = process.env.DARE_ENGINE_CACHE ?? path.join(process.env.XDG_CACHE_HOME ?? path.join(os.homedir(), ".cache"), "dare-engine");
  return path.join(cache, "engine");
}

/** The environment the CLI runs in: the engine's binaries first on PATH, its plugin cache, no downloads. */
export function engineEnv(base: NodeJS.ProcessEnv = process.env): NodeJS.ProcessEnv {
  const dir = engineDir();
  return {
    ...base,
    PATH: `${path.join(dir, "bin")}${path.delimiter}${base.PATH ?? ""}`,
    PULUMI_HOME: path.join(dir, "home"),
    PULUMI_SKIP_UPDATE_CHECK: "true",
    // A missing plugin is an error naming it, not an attempt to download it.
    PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION: "true",
  };
}

/** CLI commands that run the program, and so need the language runtime. */
const RUNS_PROGRAM = new Set(["preview", "pre", "up", "update", "refresh", "destroy", "down"]);

/** The CLI's first positional argument: the command. */
function commandOf(args: string[]): string | undefined {
  return args.find((a) => !a.startsWith("-"));
}

async function serveProgram(): Promise<{ address: string; stop: (hasError: boolean) => void }> {
  // The SDK's own modules, resolved from its package so the gRPC library is the instance it was built with.
  const sdk = path.dirname(require.resolve("@pulumi/pulumi/package.json", { paths: [PROJECT_ROOT] }));
  /* eslint-disable @typescript-eslint/no-require-imports */
  const grpc = require(require.resolve("@grpc/grpc-js", { paths: [sdk] }));
  const { LanguageServer } = require(path.join(sdk, "automation", "server"));
  const langrpc = require(path.join(sdk, "proto", "language_grpc_pb"));
  const { grpcChannelOptions } = require(path.join(sdk, "runtime"));
  // The program's exports are the stack outputs, as with the nodejs host.
  const program = async () => require(path.join(PROJECT_ROOT, "index.ts"));
  /* eslint-enable @typescript-eslint/no-require-imports */
  const server = new grpc.Server(grpcChannelOptions);
  const languageServer = new LanguageServer(program);
  server.addService(langrpc.LanguageRuntimeService, languageServer);
  const port: number = await new Promise((resolve, reject) =>
    server.bindAsync("127.0.0.1:0", grpc.ServerCredentials.createInsecure(), (err: Error | null, p: number) =>
      err ? reject(err) : resolve(p),
    ),
  );
  return {
    address: `127.0.0.1:${port}`,
    stop: (hasError) => {
      languageServer.onPulumiExit(hasError);
      server.forceShutdown();
    },
  };
}

export async function main(args: string[]): Promise<number> {
  const pulumi = path.join(engineDir(), "bin", "pulumi");
  if (!fs.existsSync(pulumi)) {
    process.stderr.write(`no Pulumi CLI at ${pulumi}: run npm run engine:build first (tools/engine/build.sh)\n`);
    return 2;
  }
  const command = commandOf(args);
  const runtime = command && RUNS_PROGRAM.has(command) ? await serveProgram() : undefined;
  const cliArgs = runtime ? [...args, `--client=${runtime.address}`] : args;
  const code: number = await new Promise((resolve, reject) => {
    const child = spawn(pulumi, cliArgs, { env: engineEnv(), stdio: "inherit" });
    child.on("error", reject);
    child.on("exit", (status, signal) => resolve(status ?? (signal ? 128 : 1)));
  });
  runtime?.stop(code !== 0);
  return code;
}

if (require.main === module) {
  main(process.argv.slice(2)).then(
    (code) => process.exit(code),
    (err) => {
      process.stderr.write(`${err instanceof Error ? err.message : String(err)}\n`);
      process.exit(1);
    },
  );
}
