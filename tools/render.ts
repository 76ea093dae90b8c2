/**
 * Offline render: evaluates the real program with a stack's configuration under Pulumi's mock
 * runtime (no cloud, no Pulumi CLI) and writes what it would create.
 *
 *   npm run render -- --stack NAME [--stack-file FILE] [--last-update OUTPUTS.json] [--set KEY=VALUE ...] [--set-secret KEY=VALUE ...] [--out DIR]
 *
 * --stack-file reads the stack's configuration from FILE instead of Pulumi.<NAME>.yaml.
 * --last-update reads the stack's last outputs (e.g. a render of the base branch: its outputs.json), so that
 * the program refuses a change that would delete data as it does against the real stack.
 */
import * as fs from "fs";
import * as path from "path";
import { StepList } from "../lib/host-step";
import { readStackConfig, runProgram, setConfigPath, UsageError } from "./program";
import { renderFiles, writeFiles } from "./render-writer";

// Pulumi's runtime records a stack trace for every promise it makes (for its leak report) and reads
// one per resource for its source position (which the render does not record); ts-node source-maps
// each of them. That was most of a large render's time: off unless asked for, to debug the program.
const STACK_TRACES = Boolean(process.env.DARE_RENDER_STACK_TRACES);
function withoutStackTraces(): void {
  Error.stackTraceLimit = 0;
  // Pulumi raises the limit for its source positions; then only the first line is formatted.
  Error.prepareStackTrace = (error: Error) => Error.prototype.toString.call(error);
}

const USAGE =
  "usage: npm run render -- --stack NAME [--stack-file FILE] [--last-update OUTPUTS.json] [--set KEY=VALUE ...] [--set-secret KEY=VALUE ...] [--out DIR]";

interface RenderArgs {
  stack: string;
  stackFile?: string;
  lastUpdate?: string;
  sets: Array<{ key: string; value: string; secret: boolean }>;
  out: string;
}

export function parseArgs(argv: string[]): RenderArgs {
  let stack: string | undefined;
  let out: string | undefined;
  let stackFile: string | undefined;
  let lastUpdate: string | undefined;
  const sets: RenderArgs["sets"] = [];
  for (let i = 0; i < argv.length; i++) {
    const flag = argv[i];
    const next = () => {
      const value = argv[++i];
      if (value === undefined) throw new UsageError(`${flag} needs a value\n${USAGE}`);
      return value;
    };
    if (flag === "--stack") stack = next();
    else if (flag === "--out") out = next();
    else if (flag === "--stack-file") stackFile = next();
    else if (flag === "--last-update") lastUpdate = next();
    else if (flag === "--set" || flag === "--set-secret") {
      const pair = next();
      const eq = pair.indexOf("=");
      if (eq <= 0) throw new UsageError(`${flag} ${pair}: expected KEY=VALUE, e.g. ${flag} nodes.pools[0].count=3`);
      sets.push({ key: pair.slice(0, eq), value: pair.slice(eq + 1), secret: flag === "--set-secret" });
    } else throw new UsageError(`unknown argument ${flag}\n${USAGE}`);
  }
  if (!stack) throw new UsageError(`--stack is required\n${USAGE}`);
  return { stack, stackFile, lastUpdate, sets, out: out ?? path.join("out", stack) };
}

async function main(): Promise<number> {
  const args = parseArgs(process.argv.slice(2));
  const config = readStackConfig(args.stack, undefined, args.stackFile && path.resolve(args.stackFile));
  for (const s of args.sets) setConfigPath(config, s.key, s.value, s.secret);
  const lastUpdate = args.lastUpdate ? readOutputs(args.lastUpdate) : {};
  const steps = new StepList();
  const run = await runProgram(args.stack, config, lastUpdate, steps);
  const files = await renderFiles(run.resources, run.outputs, steps.steps, config.secretValues);
  const outDir = path.resolve(process.cwd(), args.out);
  writeFiles(outDir, files);
  const count = run.resources.length;
  process.stdout.write(
    `rendered stack ${args.stack}: ${count} resources, ${Object.keys(files).length} files in ${path.relative(process.cwd(), outDir) || "."}\n`,
  );
  return 0;
}

/** A render's outputs.json, as the stack's last outputs. */
function readOutputs(file: string): Record<string, unknown> {
  if (!fs.existsSync(file)) throw new UsageError(`--last-update ${file}: no such file (a render's outputs.json)`);
  return JSON.parse(fs.readFileSync(file, "utf8"));
}

/** A user's mistake prints its message alone; only a bug in the program prints a stack trace. */
function report(err: unknown): number {
  const e = err as { name?: string; message?: string; __pulumiRunError?: boolean };
  if (err instanceof UsageError || e?.name === "ConfigError" || e?.__pulumiRunError) {
    process.stderr.write(`${e.message}\n`);
    return 2;
  }
  const hint = STACK_TRACES ? "" : "\n(run again with DARE_RENDER_STACK_TRACES=1 for the stack trace)";
  process.stderr.write(`render failed: ${err instanceof Error ? err.stack : String(err)}${hint}\n`);
  return 1;
}

if (require.main === module) {
  if (!STACK_TRACES) withoutStackTraces();
  main().then(
    (code) => process.exit(code),
    (err) => process.exit(report(err)),
  );
}
