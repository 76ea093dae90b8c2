/**
 * docs/operations.md: every command an operator copies from it exists — npm scripts and program files of
 * this project, Pulumi subcommands and flags, and the stack outputs it names (what the program returns and index.ts exports).
 */
import { execFileSync } from "child_process";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { WORKLOADS } from "../../components/dare-services";

const ROOT = path.join(__dirname, "..", "..");
const DOC = fs.readFileSync(path.join(ROOT, "docs", "operations.md"), "utf8");
const PACKAGE = JSON.parse(fs.readFileSync(path.join(ROOT, "package.json"), "utf8"));
const INDEX = fs.readFileSync(path.join(ROOT, "index.ts"), "utf8");

let rendered: Record<string, any> | undefined;
/** The testbed's stack outputs, from one offline render of the program (what index.ts exports). */
function renderedOutputs(): Record<string, any> {
  if (!rendered) {
    const out = fs.mkdtempSync(path.join(os.tmpdir(), "operations-doc-"));
    try {
      execFileSync(
        path.join(ROOT, "node_modules", ".bin", "ts-node"),
        ["--transpile-only", path.join(ROOT, "tools", "render.ts"), "--stack", "testbed", "--out", out],
        { cwd: ROOT, stdio: "pipe" },
      );
      rendered = JSON.parse(fs.readFileSync(path.join(out, "outputs.json"), "utf8"));
    } finally {
      fs.rmSync(out, { recursive: true, force: true });
    }
  }
  return rendered!;
}

/** Pulumi CLI 3.x subcommands and the flags this document may use with them (`pulumi <cmd> --help`). */
const PULUMI: Record<string, string[]> = {
  preview: ["--diff", "--policy-pack", "--stack"],
  up: ["--policy-pack", "--policy-pack-config", "--replace", "--target", "--stack", "--diff"],
  refresh: ["--diff"],
  "config get": [],
  "config set": ["--path", "--secret"],
  "config rm": [],
  "state unprotect": [],
  stack: ["--show-urns"],
  "stack output": ["--show-secrets", "--json"],
  "stack select": ["--create"],
  "stack export": ["--file", "--show-secrets"],
  "stack import": ["--file"],
  "stack change-secrets-provider": [],
  login: ["--local"],
};

/** Shell lines of the ```sh blocks, and commands quoted inline in backticks. */
function commands(): string[] {
  const blocks = [...DOC.matchAll(/```sh\n([\s\S]*?)```/g)].flatMap((m) => m[1].split("\n"));
  const inline = [...DOC.matchAll(/`((?:pulumi|npm|npx) [^`]+)`/g)].map((m) => m[1]);
  return [...blocks, ...inline]
    .map((line) => line.replace(/\s+#.*$/, "").trim())
    .flatMap((line) => line.split(/\s*(?:&&|\|)\s*/))
    .filter((line) => /^(pulumi|npm|npx) /.test(line));
}

const words = (command: string) => command.match(/'[^']*'|\S+/g) ?? [];

/** Output names in the document's stack-output table (third column's first code span). */
const tableOutputs = () => [...DOC.matchAll(/^\|[^|]+\|[^|]+\| `(\w+)`/gm)].map((m) => m[1]);

describe("docs/operations.md", () => {
  const all = commands();

  it("has commands to check", () => {
    expect(all.filter((c) => c.startsWith("pulumi ")).length).toBeGreaterThan(10);
  });

  it("uses only npm scripts and program files that exist", () => {
    for (const c of all.filter((x) => x.startsWith("npm run "))) expect(Object.keys(PACKAGE.scripts)).toContain(words(c)[2]);
    for (const c of all.filter((x) => x.startsWith("npx "))) {
      for (const file of words(c).filter((w) => /\.ts$/.test(w))) expect(fs.existsSync(path.join(ROOT, file))).toBe(true);
    }
    expect(all.filter((c) => c.includes("--policy-pack policy")).length).toBeGreaterThan(0);
    expect(fs.existsSync(path.join(ROOT, "policy", "PulumiPolicy.yaml"))).toBe(true);
  });

  it("uses only Pulumi subcommands and flags that exist", () => {
    for (const c of all.filter((x) => x.startsWith("pulumi "))) {
      const w = words(c).slice(1);
      const positional = w.filter((x) => !x.startsWith("-"));
      const two = positional.slice(0, 2).join(" ");
      const sub = PULUMI[two] ? two : positional[0];
      expect({ command: c, known: sub in PULUMI }).toEqual({ command: c, known: true });
      for (const flag of w.filter((x) => x.startsWith("--")))
        expect({ command: c, flag, known: PULUMI[sub].includes(flag) }).toEqual({ command: c, flag, known: true });
    }
  });

  it("names only stack outputs that the program exports", () => {
    const exported = new Set(Object.keys(renderedOutputs()));
    const named = all
      .filter((c) => c.startsWith("pulumi stack output "))
      .map(
        (c) =>
          words(c)
            .slice(3)
            .filter((x) => !x.startsWith("-"))[0],
      )
      .filter((x): x is string => x !== undefined && x !== ">");
    const table = tableOutputs();
    expect(named.length + table.length).toBeGreaterThan(3);
    for (const output of [...named, ...table]) expect({ output, exported: exported.has(output) }).toEqual({ output, exported: true });
  }, 120000);

  it("documents outputs that a render of the testbed really prints, with the addresses under dare:domain", () => {
    const outputs = renderedOutputs();
    // index.ts, which the Pulumi CLI runs, exports what the program returns; the render runs the program itself.
    expect(INDEX).toMatch(/^export = dareProgram\(\);$/m);
    // harborUrl is null on the testbed (Harbor off) but still printed.
    for (const name of tableOutputs()) expect({ name, printed: name in outputs }).toEqual({ name, printed: true });
    const site = "https://testbed.dare.example.org";
    for (const name of ["dareUrl", "keycloakUrl", "keycloakAdminConsole", "grafanaUrl"])
      expect(outputs[name]).toMatch(new RegExp(`^${site}(/|$)`));
    const served = Object.entries(WORKLOADS)
      .filter(([, w]) => w.routes)
      .map(([name]) => name);
    expect(Object.keys(outputs.dareServiceUrls).sort()).toEqual(served.sort());
    for (const url of Object.values<string>(outputs.dareServiceUrls)) expect(url.startsWith(`${site}/`)).toBe(true);
    expect(outputs.apiServerUrl).toBe(`https://${outputs.apiServer.publicAddress}:${outputs.apiServer.port}`);
    expect(outputs.kubeconfig).toBe("[secret]");
  }, 120000);
});
