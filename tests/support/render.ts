/** Runs the offline render CLI in a child process, as an operator would (`npm run render`'s command line). */
import { spawnSync } from "child_process";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { renderCommand } from "../../tools/render-command";

export const ROOT = path.resolve(__dirname, "..", "..");

export interface RenderResult {
  status: number;
  stdout: string;
  stderr: string;
  dir: string;
}

export function render(stack: string, extra: string[] = [], dir = fs.mkdtempSync(path.join(os.tmpdir(), `dare-${stack}-`))): RenderResult {
  const out = path.join(dir, "out");
  const [program, args] = renderCommand(["--stack", stack, "--out", out, ...extra]);
  const result = spawnSync(program, args, { cwd: ROOT, encoding: "utf8", timeout: 120_000 });
  return { status: result.status ?? -1, stdout: result.stdout, stderr: result.stderr, dir: out };
}

/** Every file under dir, relative path -> content. */
export function readTree(dir: string): Map<string, string> {
  const files = new Map<string, string>();
  const walk = (d: string) => {
    for (const entry of fs.readdirSync(d, { withFileTypes: true })) {
      const p = path.join(d, entry.name);
      if (entry.isDirectory()) walk(p);
      else files.set(path.relative(dir, p), fs.readFileSync(p, "utf8"));
    }
  };
  walk(dir);
  return files;
}
