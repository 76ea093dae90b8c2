/**
 * The restore commands as docs/recovery.md gives them, read from its code blocks (and inline code), so
 * the restore tests run exactly what an operator would type: change a command in the document and the
 * tests run the changed one. Only the in-cluster `kubectl … exec -i <pod> --` wrapper is taken off, and
 * the document's <placeholders> are filled in; a placeholder left unfilled is an error.
 *
 * Also: the backup CronJobs as the program renders them (the same code path as tests/components/backups.test.ts),
 * and a runner for their container scripts with real tools on PATH.
 */
import { spawnSync, SpawnSyncReturns } from "child_process";
import * as fs from "fs";
import * as path from "path";
import { buildDareLayer, configFrom } from "../support/dare-fixture";

/** docs/recovery.md; DARE_RUNBOOK names another copy (to watch the tests fail on a changed command). */
export const RUNBOOK = process.env.DARE_RUNBOOK ?? path.join(__dirname, "..", "..", "docs", "recovery.md");

/** The text of one `## ` section of docs/recovery.md, found by the start of its title. */
export function runbookSection(titleStart: string, file = RUNBOOK): string {
  const lines = fs.readFileSync(file, "utf8").split("\n");
  const start = lines.findIndex((l) => l.startsWith(`## ${titleStart}`));
  if (start < 0) throw new Error(`${file}: no section "## ${titleStart}…"`);
  const end = lines.findIndex((l, i) => i > start && l.startsWith("## "));
  return lines.slice(start, end < 0 ? undefined : end).join("\n");
}

/** The ```sh code blocks of a text, dedented to their fence, in order. */
export function codeBlocks(text: string): string[] {
  const blocks: string[] = [];
  let indent: number | undefined;
  let current: string[] = [];
  for (const line of text.split("\n")) {
    const fence = /^(\s*)```(\w*)\s*$/.exec(line);
    if (indent === undefined) {
      if (fence && fence[2] === "sh") {
        indent = fence[1].length;
        current = [];
      }
    } else if (fence) {
      blocks.push(current.join("\n"));
      indent = undefined;
    } else {
      current.push(line.slice(Math.min(indent, line.length - line.trimStart().length)));
    }
  }
  if (indent !== undefined) throw new Error("unterminated code block");
  return blocks;
}

/** A block's commands: continuation lines joined, blank lines and comment lines dropped. */
export function commands(block: string): string[] {
  return block
    .replace(/\\\n\s*/g, "")
    .split("\n")
    .map((l) => l.trim())
    .filter((l) => l && !l.startsWith("#"));
}

/** The `inline code` spans of a text (outside code blocks). */
export function inlineCode(text: string): string[] {
  const outside = text.replace(/^\s*```[\s\S]*?^\s*```\s*$/gm, "");
  return [...outside.matchAll(/`([^`\n]+)`/g)].map((m) => m[1]);
}

/** The one command of a section (in its code blocks or inline code) that matches; an error unless exactly one does. */
export function theCommand(section: string, match: RegExp): string {
  const found = [...codeBlocks(section).flatMap(commands), ...inlineCode(section)].filter((c) => match.test(c));
  if (found.length !== 1) throw new Error(`docs/recovery.md: ${found.length} commands match ${match}: ${JSON.stringify(found)}`);
  return found[0];
}

/** The code block of a section that contains a string; an error unless exactly one does. */
export function theBlock(section: string, containing: string): string {
  const found = codeBlocks(section).filter((b) => b.includes(containing));
  if (found.length !== 1) throw new Error(`docs/recovery.md: ${found.length} code blocks contain ${JSON.stringify(containing)}`);
  return found[0];
}

/** A command without its `kubectl [-n ns] exec -i <pod> --` wrapper: what runs inside the pod. */
export function insidePod(command: string): string {
  const wrapper = /kubectl\s+(?:-n\s+\S+\s+)?exec\s+-i\s+\S+\s+--\s+/;
  if (!wrapper.test(command)) throw new Error(`not a kubectl exec command: ${command}`);
  return command.replace(wrapper, "");
}

/** Fills the document's <placeholders>; throws when one is left (the document gained one the test does not know). */
export function fill(command: string, values: Record<string, string>): string {
  let out = command;
  for (const [key, value] of Object.entries(values)) out = out.split(`<${key}>`).join(value);
  const left = out.match(/<[A-Za-z][\w.:-]*>/g);
  if (left) throw new Error(`unfilled placeholders ${left.join(", ")} in: ${out}`);
  return out;
}

/** The backup CronJobs' pod specs as rendered with the default configuration, by CronJob name. */
export async function backupPods(): Promise<Map<string, any>> {
  const built = await buildDareLayer(configFrom({}));
  const pods = new Map<string, any>();
  for (const o of built.objects) {
    if (o.kind === "CronJob" && o.metadata.namespace === "dare-backups") pods.set(o.metadata.name, o.spec.jobTemplate.spec.template.spec);
  }
  return pods;
}

/**
 * A container's environment for a run here: every variable the CronJob sets, with the given values in
 * place of the cluster's (a variable the container does not set is an error, so is a Secret reference
 * without a value here).
 */
export function containerEnv(container: any, values: Record<string, string>): Record<string, string> {
  const env: Record<string, string> = {};
  const names = (container.env ?? []).map((e: any) => e.name);
  for (const name of Object.keys(values)) {
    if (!names.includes(name)) throw new Error(`${container.name} sets no ${name} (it sets ${names.join(", ")})`);
  }
  for (const e of container.env ?? []) {
    if (e.name in values) env[e.name] = values[e.name];
    else if (e.value !== undefined) env[e.name] = e.value;
    else throw new Error(`${container.name}: ${e.name} comes from ${JSON.stringify(e.valueFrom)}: give it a value`);
  }
  return env;
}

/** The plain (non-Secret) environment values a container sets. */
export function plainValues(container: any): Record<string, string> {
  return Object.fromEntries((container.env ?? []).filter((e: any) => e.value !== undefined).map((e: any) => [e.name, e.value]));
}

/** Runs a container's `sh -c`/`bash -c` script with its container paths mapped to local folders. */
export function runContainerScript(
  container: any,
  dirs: Record<string, string>,
  env: Record<string, string>,
  pathDirs: string[] = [],
): SpawnSyncReturns<string> {
  if (container.command?.[1] !== "-c") throw new Error(`${container.name}: not a shell script: ${JSON.stringify(container.command)}`);
  let script: string = container.command[2];
  for (const [from, to] of Object.entries(dirs)) script = script.split(from).join(to);
  // stdin not a socket: bash would otherwise take itself for an rsh session and read ~/.bashrc.
  return spawnSync(container.command[0], ["-c", script], {
    encoding: "utf8",
    stdio: ["ignore", "pipe", "pipe"],
    env: { PATH: [...pathDirs, "/usr/sbin", "/usr/bin", "/sbin", "/bin"].join(":"), ...env },
  });
}

/** Runs a command line from the runbook with bash in a folder; stdout, stderr and status. */
export function runbookShell(command: string, cwd: string, env: Record<string, string>, pathDirs: string[] = []): SpawnSyncReturns<string> {
  return spawnSync("bash", ["-euo", "pipefail", "-c", command], {
    cwd,
    encoding: "utf8",
    stdio: ["ignore", "pipe", "pipe"],
    env: { PATH: [...pathDirs, "/usr/sbin", "/usr/bin", "/sbin", "/bin"].join(":"), ...env },
  });
}

/** The single file a backup script left in a folder (no .part), by pattern. */
export function theDump(dir: string, pattern: RegExp): string {
  const files = fs.readdirSync(dir);
  const matching = files.filter((f) => pattern.test(f));
  if (matching.length !== 1 || files.length !== 1)
    throw new Error(`expected one file like ${pattern} in ${dir}, found ${JSON.stringify(files)}`);
  return matching[0];
}
