/**
 * Pulumi.yaml's `config:` block and README.md's configuration reference, both generated from the key
 * declarations in lib/config-keys.ts, and the check that the files agree with them.
 *
 *   npm run config-reference              print the reference
 *   npm run config-reference -- --check   exit 1 when Pulumi.yaml or README.md disagrees
 *   npm run config-reference -- --write   rewrite Pulumi.yaml's config block and README.md between the markers
 *
 * Pulumi.yaml's text before its top-level `config:` line is hand-written, and so is README.md outside
 * START_MARKER and END_MARKER.
 */
import * as fs from "fs";
import * as path from "path";
import * as YAML from "yaml";
import { pulumiYamlConfig } from "../lib/config-keys";

export const START_MARKER = "<!-- config-reference:start -->";
export const END_MARKER = "<!-- config-reference:end -->";
const ROOT = path.resolve(__dirname, "..");
const WRITE_COMMAND = "npm run config-reference -- --write";
const CONFIG_LINE = /^config:\s*$/m;

interface ConfigDeclaration {
  type?: string;
  items?: { type?: string };
  secret?: boolean;
  description?: string;
  default?: unknown;
}

const oneLine = (text: string) => text.replace(/\s*\n\s*/g, " ").trim();

/** Outside code spans, `<domain>` would be read as an HTML tag and vanish. */
const escapeHtml = (text: string) =>
  text
    .split(/(`[^`]*`)/)
    .map((part, i) => (i % 2 === 1 ? part : part.replace(/</g, "&lt;")))
    .join("");

function typeOf(decl: ConfigDeclaration): string {
  // Pulumi.yaml types only scalars and arrays; maps and lists of maps are set with `pulumi config set --path`.
  if (!decl.type) return "structured";
  if (decl.type === "array" && decl.items?.type) return `array of ${decl.items.type}`;
  return decl.type;
}

function defaultText(decl: ConfigDeclaration): { inline?: string; block?: string } {
  // No default: the description says whether the key is required or what the program derives.
  if (!("default" in decl)) return {};
  const value = decl.default;
  const isEmpty = value !== null && typeof value === "object" && Object.keys(value as object).length === 0;
  if (value === null || typeof value !== "object" || isEmpty) return { inline: `default \`${JSON.stringify(value)}\`` };
  return { block: YAML.stringify(value, { lineWidth: 0 }).trimEnd() };
}

/** The reference section's Markdown for a Pulumi.yaml text (without the markers). */
export function generateReference(pulumiYaml: string): string {
  const project = YAML.parse(pulumiYaml) ?? {};
  const namespace: string = project.name;
  const config: Record<string, ConfigDeclaration> = project.config ?? {};
  const lines = [
    `<!-- Generated from Pulumi.yaml by \`${WRITE_COMMAND}\`; edit Pulumi.yaml, not this section. -->`,
    "",
    `Set a key with \`pulumi config set ${namespace}:KEY VALUE\` (a secret with \`--secret\`; one field of a structured key with`,
    `\`--path\`, e.g. \`pulumi config set --path '${namespace}:nodes.pools[0].count' 3\`).`,
    "",
  ];
  for (const [key, decl] of Object.entries(config)) {
    const facts = [typeOf(decl), ...(decl.secret ? ["secret"] : [])];
    const def = defaultText(decl);
    if (def.inline) facts.push(def.inline);
    const description = decl.description ? escapeHtml(oneLine(decl.description)) : "";
    lines.push(`- **\`${namespace}:${key}\`** (${facts.join(", ")})${description ? `: ${description}` : ""}`);
    if (def.block) lines.push("", "  Default:", "", "  ```yaml", ...def.block.split("\n").map((l) => `  ${l}`), "  ```", "");
  }
  return `${lines.join("\n").trimEnd()}\n`;
}

/** README text with the reference replaced; throws when the markers are missing or out of order. */
export function replaceSection(readme: string, reference: string): string {
  const start = readme.indexOf(START_MARKER);
  const end = readme.indexOf(END_MARKER);
  if (start < 0 || end < 0 || end < start) {
    throw new Error(`README.md needs the markers ${START_MARKER} and ${END_MARKER} (in that order) around the configuration reference`);
  }
  return `${readme.slice(0, start + START_MARKER.length)}\n${reference}${readme.slice(end)}`;
}

/** Pulumi.yaml with its `config:` block generated from the declarations (the text before it kept). */
export function generatePulumiYaml(pulumiYaml: string): string {
  const match = CONFIG_LINE.exec(pulumiYaml);
  const head = match ? pulumiYaml.slice(0, match.index) : `${pulumiYaml.trimEnd()}\n`;
  const generated = `# Generated from lib/config-keys.ts by \`${WRITE_COMMAND}\`; edit that file, not this block.\n`;
  const block = YAML.stringify({ config: pulumiYamlConfig() }, { lineWidth: 120 });
  return `${head.replace(/# Generated from lib\/config-keys.ts[^\n]*\n$/, "")}${generated}${block}`;
}

/** Undefined when README.md's section is what Pulumi.yaml generates, else what is wrong. */
export function checkReadme(readme: string, pulumiYaml: string): string | undefined {
  const expected = replaceSection(readme, generateReference(pulumiYaml));
  if (expected === readme) return undefined;
  const section = (text: string) => text.slice(text.indexOf(START_MARKER), text.indexOf(END_MARKER)).split("\n");
  const have = new Set(section(readme));
  const differing = section(expected).filter((line) => !have.has(line) && line.startsWith("- **"));
  const keys = differing.map((line) => /`([^`]+)`/.exec(line)?.[1]).filter(Boolean);
  return `README.md's configuration reference disagrees with Pulumi.yaml${keys.length ? ` (${keys.join(", ")})` : ""}; run ${WRITE_COMMAND}`;
}

function main(argv: string[]): number {
  const mode = argv[0] ?? "--print";
  if (argv.length > 1 || !["--print", "--check", "--write"].includes(mode)) {
    process.stderr.write("usage: npm run config-reference -- [--check | --write]\n");
    return 2;
  }
  const pulumiYamlPath = path.join(ROOT, "Pulumi.yaml");
  const current = fs.readFileSync(pulumiYamlPath, "utf8");
  const pulumiYaml = generatePulumiYaml(current);
  if (mode === "--print") {
    process.stdout.write(generateReference(pulumiYaml));
    return 0;
  }
  const readmePath = path.join(ROOT, "README.md");
  const readme = fs.existsSync(readmePath) ? fs.readFileSync(readmePath, "utf8") : "";
  if (mode === "--write") {
    fs.writeFileSync(pulumiYamlPath, pulumiYaml);
    fs.writeFileSync(readmePath, replaceSection(readme, generateReference(pulumiYaml)));
    return 0;
  }
  if (current !== pulumiYaml) {
    process.stderr.write(`Pulumi.yaml's config block disagrees with lib/config-keys.ts; run ${WRITE_COMMAND}\n`);
    return 1;
  }
  const problem = checkReadme(readme, pulumiYaml);
  if (problem) {
    process.stderr.write(`${problem}\n`);
    return 1;
  }
  process.stdout.write("Pulumi.yaml and README.md's configuration reference match lib/config-keys.ts\n");
  return 0;
}

if (require.main === module) {
  try {
    process.exit(main(process.argv.slice(2)));
  } catch (err) {
    process.stderr.write(`${err instanceof Error ? err.message : String(err)}\n`);
    process.exit(1);
  }
}
