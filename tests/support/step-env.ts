/**
 * A host step's parameters as its script sees them: the plain ones from its command, the secret ones from its
 * stdin (lib/host-step.ts), sourced by a real bash with an empty environment.
 */
import { spawnSync } from "child_process";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { plainParametersOf } from "../../lib/host-step";
import { RecordedResource, SECRET_SIG, SPECIAL_SIG_KEY } from "../../tools/mocks";

export function stepEnv(r: RecordedResource): Record<string, string> {
  const inputs = r.inputs as { create: string; stdin?: unknown };
  const stdin = inputs.stdin as { [key: string]: unknown; value?: string } | string | undefined;
  const secretText = typeof stdin === "object" && stdin !== null && stdin[SPECIAL_SIG_KEY] === SECRET_SIG ? String(stdin.value) : stdin;
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "dare-env-"));
  const file = path.join(dir, "env");
  fs.writeFileSync(file, plainParametersOf(inputs.create) + (typeof secretText === "string" ? secretText : ""));
  const out = spawnSync("bash", ["--norc", "--noprofile", "-c", `set -a; . "$1"; set +a; env -0`, "bash", file], {
    stdio: ["ignore", "pipe", "pipe"],
    env: {},
  }).stdout.toString();
  fs.rmSync(dir, { recursive: true });
  const env = Object.fromEntries(
    out
      .split("\0")
      .filter(Boolean)
      .map((l) => [l.slice(0, l.indexOf("=")), l.slice(l.indexOf("=") + 1)]),
  );
  // What bash itself sets, not a parameter.
  for (const key of ["PWD", "SHLVL", "_"]) delete env[key];
  return env;
}
