/** The configuration reference generated from Pulumi.yaml, and the check that README.md agrees with it. */
import * as fs from "fs";
import * as path from "path";
import * as YAML from "yaml";
import { checkReadme, END_MARKER, generatePulumiYaml, generateReference, replaceSection, START_MARKER } from "../../tools/config-reference";
import { CONFIG_KEYS } from "../../lib/config-keys";

const ROOT = path.join(__dirname, "..", "..");
const PULUMI_YAML = fs.readFileSync(path.join(ROOT, "Pulumi.yaml"), "utf8");

const FIXTURE = `
name: demo
config:
  domain:
    type: string
    description: "DNS name | served at <domain>."
  replicas:
    type: integer
    default: 2
    description: Pods.
  adminCidrs:
    type: array
    items: {type: string}
    description: Sources.
  token:
    type: string
    secret: true
    description: An API token.
  nodes:
    description: Machines.
    default:
      pools: [{name: workers, count: 2}]
`;

const readmeWith = (section: string) => `# Demo\n\nIntro.\n\n${START_MARKER}\n${section}${END_MARKER}\n\n## After\n`;

describe("generateReference", () => {
  const text = generateReference(FIXTURE);

  it("lists every key with its namespace, type, default and description, in Pulumi.yaml's order", () => {
    const keys = [...text.matchAll(/^- \*\*`([^`]+)`\*\*/gm)].map((m) => m[1]);
    expect(keys).toEqual(["demo:domain", "demo:replicas", "demo:adminCidrs", "demo:token", "demo:nodes"]);
    expect(text).toContain("- **`demo:replicas`** (integer, default `2`): Pods.");
    expect(text).toContain("- **`demo:adminCidrs`** (array of string): Sources.");
    expect(text).toContain("- **`demo:token`** (string, secret): An API token.");
  });

  it("shows a structured default as a YAML block that parses back to the default", () => {
    const block = /Default:\n\n {2}```yaml\n([\s\S]*?)\n {2}```/.exec(text)![1].replace(/^ {2}/gm, "");
    expect(YAML.parse(block)).toEqual({ pools: [{ name: "workers", count: 2 }] });
  });

  it("keeps <placeholders> visible in Markdown", () => {
    expect(text).toContain("served at &lt;domain>");
  });

  it("covers every key of the project's Pulumi.yaml", () => {
    const declared = Object.keys(YAML.parse(PULUMI_YAML).config);
    const reference = generateReference(PULUMI_YAML);
    for (const key of declared) expect(reference).toContain(`**\`dare:${key}\`**`);
  });
});

describe("README check", () => {
  it("passes when the section is what Pulumi.yaml generates, keeping the text around it", () => {
    const readme = replaceSection(readmeWith("stale\n"), generateReference(FIXTURE));
    expect(readme.startsWith("# Demo\n\nIntro.\n\n")).toBe(true);
    expect(readme.endsWith(`${END_MARKER}\n\n## After\n`)).toBe(true);
    expect(checkReadme(readme, FIXTURE)).toBeUndefined();
  });

  it("fails naming the key when Pulumi.yaml changed a default, and when a key is missing", () => {
    const readme = replaceSection(readmeWith(""), generateReference(FIXTURE));
    expect(checkReadme(readme, FIXTURE.replace("default: 2", "default: 3"))).toMatch(/disagrees.*demo:replicas/);
    const withNewKey = `${FIXTURE}  sshUser:\n    type: string\n    description: Login.\n`;
    expect(checkReadme(readme, withNewKey)).toMatch(/demo:sshUser/);
  });

  it("fails when the markers are missing", () => {
    expect(() => checkReadme("# Demo\n", FIXTURE)).toThrow(/config-reference:start/);
  });

  const readmePath = path.join(ROOT, "README.md");
  const readme = fs.existsSync(readmePath) ? fs.readFileSync(readmePath, "utf8") : "";
  it("README.md agrees with Pulumi.yaml", () => {
    expect(checkReadme(readme, PULUMI_YAML)).toBeUndefined();
  });
});

describe("Pulumi.yaml's config block", () => {
  it("is what lib/config-keys.ts generates", () => {
    expect(generatePulumiYaml(PULUMI_YAML)).toBe(PULUMI_YAML);
  });

  it("is regenerated from the declarations, keeping the hand-written head", () => {
    const stale = PULUMI_YAML.replace("default: 1.36.4", "default: 1.35.0");
    const regenerated = generatePulumiYaml(stale);
    expect(regenerated).toBe(PULUMI_YAML);
    expect(YAML.parse(regenerated).config.kubernetesVersion.default).toBe(CONFIG_KEYS.kubernetesVersion.default);
  });

  it("gives every key but the required ones a default, so the CLI does not refuse a stack that leaves it out", () => {
    const config = YAML.parse(PULUMI_YAML).config as Record<string, Record<string, unknown>>;
    const required = Object.keys(config).filter((k) => !("default" in config[k]));
    expect(required.sort()).toEqual(["adminCidrs", "domain"]);
    // The CLI applies a typed secret key's default in plain text and then refuses it as unencrypted.
    for (const [key, decl] of Object.entries(config)) if (decl.secret) expect({ key, type: decl.type }).toEqual({ key, type: undefined });
  });
});
