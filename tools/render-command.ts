/**
 * The render's command line exactly as `npm run render` runs it (package.json's `render` script, with
 * its Node flags), for tools that time or repeat renders.
 */
import * as fs from "fs";
import * as path from "path";

const ROOT = path.resolve(__dirname, "..");

/** [executable, arguments] of `npm run render -- ...extra`, to run from the project root. */
export function renderCommand(extra: string[]): [string, string[]] {
  const scripts = JSON.parse(fs.readFileSync(path.join(ROOT, "package.json"), "utf8")).scripts as Record<string, string>;
  const [program, ...args] = scripts.render.split(/\s+/);
  if (program !== "node") throw new Error(`package.json's render script should start with node: ${scripts.render}`);
  return [process.execPath, [...args, ...extra]];
}
