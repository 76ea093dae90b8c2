/**
 * Runs the policy pack's rules over an offline render (npm run render) — no Pulumi CLI, no credentials,
 * so pull requests from forks get the same verdict. The render keeps what the pack cannot see: which
 * values are Pulumi secrets ("[secret]"), so the secrets rule also checks values here.
 *
 *   npx ts-node --transpile-only policy/check-render.ts RENDER_DIR [RENDER_DIR ...]
 */
import * as fs from "fs";
import * as path from "path";
import { RULES, secretsMarkedSecret } from "./rules";

/** How tools/render-writer.ts writes a Pulumi secret. */
const RENDERED_SECRET = "[secret]";

interface RenderedResource {
  urn: string;
  type: string;
  /** absent in renders written before options were recorded */
  name?: string;
  inputs: Record<string, any>;
  options?: { protect?: boolean };
}

/** `urn [rule] message` for every violation in a render's resources. */
export function checkResources(resources: RenderedResource[]): string[] {
  const isSecret = (value: unknown) => value === RENDERED_SECRET;
  return resources.flatMap((r) => {
    const inputs = r.inputs ?? {};
    return RULES.flatMap((rule) => {
      const messages =
        rule.name === "secrets-marked-secret"
          ? secretsMarkedSecret(r.type, inputs, isSecret)
          : rule.check(r.type, inputs, r.name === undefined ? undefined : { name: r.name, protect: r.options?.protect });
      return messages.map((m) => `${r.urn} [${rule.name}] ${m}`);
    });
  });
}

export function checkRenderDir(dir: string): string[] {
  const file = path.join(dir, "resources.json");
  if (!fs.existsSync(file)) throw new Error(`${dir} is not a render directory (no resources.json)`);
  return checkResources(JSON.parse(fs.readFileSync(file, "utf8")));
}

if (require.main === module) {
  const dirs = process.argv.slice(2);
  if (dirs.length === 0) {
    process.stderr.write("usage: npx ts-node --transpile-only policy/check-render.ts RENDER_DIR [RENDER_DIR ...]\n");
    process.exit(2);
  }
  let failed = false;
  try {
    for (const dir of dirs) {
      const violations = checkRenderDir(dir);
      failed ||= violations.length > 0;
      process.stdout.write(
        violations.length === 0
          ? `${dir}: no policy violations\n`
          : `${dir}: ${violations.length} policy violations\n${violations.map((v) => `  ${v}\n`).join("")}`,
      );
    }
  } catch (err) {
    process.stderr.write(`${err instanceof Error ? err.message : String(err)}\n`);
    process.exit(2);
  }
  process.exit(failed ? 1 : 0);
}
