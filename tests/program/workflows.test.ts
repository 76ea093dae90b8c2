/** The GitHub Actions workflows: valid YAML of the right shape, pinned actions, and wired to things that exist. */
import * as fs from "fs";
import * as path from "path";
import * as YAML from "yaml";

const ROOT = path.join(__dirname, "..", "..");
const WORKFLOWS = path.join(ROOT, ".github", "workflows");
const PACKAGE = JSON.parse(fs.readFileSync(path.join(ROOT, "package.json"), "utf8"));

/** Inputs of pulumi/actions v6.6.1 (its action.yml); an unknown input is silently ignored by GitHub. */
const PULUMI_ACTION_INPUTS = new Set([
  "command",
  "stack-name",
  "pulumi-version",
  "pulumi-version-file",
  "work-dir",
  "comment-on-pr",
  "comment-on-pr-number",
  "comment-on-summary",
  "github-token",
  "cloud-url",
  "secrets-provider",
  "parallel",
  "message",
  "config-map",
  "expect-no-changes",
  "diff",
  "replace",
  "exclude",
  "exclude-dependents",
  "target",
  "target-dependents",
  "policyPacks",
  "policyPackConfigs",
  "refresh",
  "upsert",
  "remove",
  "edit-pr-comment",
  "color",
  "exclude-protected",
  "plan",
  "suppress-outputs",
  "suppress-progress",
  "always-include-summary",
  "continue-on-error",
  "log-verbosity",
  "log-flow",
  "debug",
]);

interface Step {
  uses?: string;
  run?: string;
  with?: Record<string, unknown>;
  env?: Record<string, string>;
  name?: string;
  if?: string;
}
interface Job {
  "runs-on": string;
  steps: Step[];
  if?: string;
  environment?: string;
  strategy?: { matrix: Record<string, unknown[]> };
  permissions?: Record<string, string>;
}
interface Workflow {
  name: string;
  on: Record<string, unknown>;
  jobs: Record<string, Job>;
  permissions?: Record<string, string>;
}

const files = fs.readdirSync(WORKFLOWS).filter((f) => /\.ya?ml$/.test(f));
const workflows: Record<string, Workflow> = Object.fromEntries(
  files.map((f) => {
    const doc = YAML.parseDocument(fs.readFileSync(path.join(WORKFLOWS, f), "utf8"));
    if (doc.errors.length > 0) throw new Error(`${f}: ${doc.errors.map((e) => e.message).join("; ")}`);
    return [f, doc.toJS() as Workflow];
  }),
);
const stacks = fs
  .readdirSync(ROOT)
  .filter((f) => /^Pulumi\.[^.]+\.yaml$/.test(f))
  .map((f) => f.split(".")[1])
  .sort();
const steps = (wf: Workflow) => Object.values(wf.jobs).flatMap((j) => j.steps);
const pulumiSteps = (wf: Workflow) => steps(wf).filter((s) => s.uses?.startsWith("pulumi/actions@"));
const text = (f: string) => fs.readFileSync(path.join(WORKFLOWS, f), "utf8");

describe("every workflow", () => {
  it.each(files)("%s has a name, triggers, and jobs whose steps each use an action or run a command", (f) => {
    const wf = workflows[f];
    expect(typeof wf.name).toBe("string");
    expect(Object.keys(wf.on).length).toBeGreaterThan(0);
    for (const [id, job] of Object.entries(wf.jobs)) {
      expect(job["runs-on"]).toBeTruthy();
      expect(Array.isArray(job.steps) && job.steps.length > 0).toBe(true);
      for (const step of job.steps) expect([step.uses, step.run].filter(Boolean)).toHaveLength(1);
      expect(id).toMatch(/^[a-z][a-z0-9-]*$/);
    }
  });

  it.each(files)("%s pins every action to a full commit SHA (its release in a comment: tests/program/ci-workflows.test.ts)", (f) => {
    for (const step of steps(workflows[f]).filter((s) => s.uses)) expect(step.uses).toMatch(/^[\w.-]+\/[\w.-]+@[0-9a-f]{40}$/);
  });

  it.each(files)("%s declares least permissions at the top", (f) => {
    expect(workflows[f].permissions).toBeDefined();
    expect(Object.values(workflows[f].permissions!).every((p) => p === "read" || p === "write")).toBe(true);
  });

  it.each(files)("%s runs only npm scripts and program files that exist", (f) => {
    const commands = steps(workflows[f])
      .map((s) => s.run ?? "")
      .join("\n");
    for (const [, script] of commands.matchAll(/npm run -?s? ?([\w-]+)/g)) expect(Object.keys(PACKAGE.scripts)).toContain(script);
    for (const [file] of commands.matchAll(/\b(tools|policy)\/[\w-]+\.ts\b|\.ci\/[\w-]+/g))
      expect(fs.existsSync(path.join(ROOT, file))).toBe(true);
  });

  it.each(files)("%s gives pulumi/actions only inputs it has", (f) => {
    for (const step of pulumiSteps(workflows[f]))
      for (const input of Object.keys(step.with ?? {})) expect(PULUMI_ACTION_INPUTS).toContain(input);
  });
});

describe("preview.yml", () => {
  const wf = workflows["preview.yml"];
  const job = wf.jobs.preview;

  it("previews every stack on pull requests, with diff, PR comment and the policy pack", () => {
    expect(Object.keys(wf.on)).toEqual(["pull_request"]);
    expect([...(job.strategy!.matrix.stack as string[])].sort()).toEqual(stacks);
    const [step] = pulumiSteps(wf);
    expect(step.with).toMatchObject({
      command: "preview",
      "stack-name": "${{ matrix.stack }}",
      diff: true,
      "comment-on-pr": true,
      policyPacks: "policy",
    });
    expect(fs.existsSync(path.join(ROOT, "policy", "PulumiPolicy.yaml"))).toBe(true);
  });

  it("takes the backend, passphrase and read-only state and OpenStack credentials from its environment's secrets, and skips forks (which get none)", () => {
    const [step] = pulumiSteps(wf);
    expect(job.environment).toBe("${{ matrix.stack }}-preview");
    expect(step.with!["cloud-url"]).toBe("${{ secrets.PULUMI_BACKEND_URL }}");
    expect(step.env!.PULUMI_CONFIG_PASSPHRASE).toBe("${{ secrets.PULUMI_CONFIG_PASSPHRASE }}");
    expect(step.env!.OS_AUTH_URL).toBe("${{ secrets.OS_AUTH_URL }}");
    expect(step.env!.AWS_ACCESS_KEY_ID).toBe("${{ secrets.PULUMI_STATE_READ_ACCESS_KEY_ID }}");
    for (const key of ["OS_APPLICATION_CREDENTIAL_ID", "OS_APPLICATION_CREDENTIAL_SECRET"])
      expect(step.env![key]).toBe(`\${{ secrets.${key.replace("OS_", "OS_READER_")} }}`);
    expect(job.if).toContain("github.event.pull_request.head.repo.full_name == github.repository");
    expect(job.permissions!["pull-requests"]).toBe("write");
  });
});

describe("up.yml", () => {
  const wf = workflows["up.yml"];
  const job = wf.jobs.up;

  it("is manual only, for each stack, from the default branch, behind the stack's environment", () => {
    expect(Object.keys(wf.on)).toEqual(["workflow_dispatch"]);
    const stack = (wf.on.workflow_dispatch as any).inputs.stack;
    expect([...stack.options].sort()).toEqual(stacks);
    expect(job.environment).toBe("${{ inputs.stack }}");
    expect(job.if).toContain("github.event.repository.default_branch");
    expect(pulumiSteps(wf)[0].with).toMatchObject({ command: "up", "stack-name": "${{ inputs.stack }}", policyPacks: "policy" });
  });
});

describe("test.yml", () => {
  it("runs the README's test command through .ci/run on pull requests and the default branch, as root", () => {
    const wf = workflows["test.yml"];
    expect(Object.keys(wf.on).sort()).toEqual(["pull_request", "push"]);
    // A clone has no shared folder: the reference charts and CRDs come from upstream first.
    expect(
      steps(wf)
        .map((s) => s.run)
        .filter(Boolean),
    ).toEqual([
      "npm ci --no-audit --no-fund\nnpx ts-node --transpile-only tools/reference/fetch.ts ../shared\n",
      'sudo env "PATH=$PATH" .ci/run',
    ]);
    expect(fs.readFileSync(path.join(ROOT, ".ci", "run"), "utf8")).toMatch(/^npm test$/m);
  });
});

describe("render-diff.yml", () => {
  const wf = workflows["render-diff.yml"];
  const job = wf.jobs["render-diff"];
  const run = job.steps.map((s) => s.run ?? "").join("\n");

  it("needs no credential: no secret, read-only token, no persisted git credentials", () => {
    expect(text("render-diff.yml")).not.toMatch(/secrets\./);
    expect(wf.permissions).toEqual({ contents: "read" });
    for (const checkout of job.steps.filter((s) => s.uses?.startsWith("actions/checkout@")))
      expect(checkout.with!["persist-credentials"]).toBe(false);
  });

  it("renders every stack for base and head, diffs them with the project's command and uploads the full diff", () => {
    const refs = job.steps.filter((s) => s.uses?.startsWith("actions/checkout@")).map((s) => s.with!.ref);
    expect(refs).toEqual(["${{ github.event.pull_request.base.sha }}", "${{ github.event.pull_request.head.sha }}"]);
    for (const stack of stacks) expect(run).toMatch(new RegExp(`for stack in [^;]*\\b${stack}\\b`));
    // Each side renders with its own `npm run render` (its own Node flags and tools).
    expect(run).toContain('(cd head && npm run -s render -- --stack "$stack"');
    expect(run).toContain('(cd base && npm run -s render -- --stack "$stack"');
    expect(run).toContain("npm run -s render-diff -- ");
    expect(run).toContain("--full");
    expect(run).toContain("$GITHUB_STEP_SUMMARY");
    const upload = job.steps.find((s) => s.uses?.startsWith("actions/upload-artifact@"))!;
    expect(upload.with).toMatchObject({ name: "render-diff", path: "renders/" });
    expect(upload.if).toBe("always()");
  });

  it("is commented on the pull request by a workflow that does not run the pull request's code", () => {
    const comment = workflows["render-diff-comment.yml"];
    expect((comment.on.workflow_run as any).workflows).toEqual([wf.name]);
    const uses = steps(comment).map((s) => s.uses?.split("@")[0]);
    expect(uses).toEqual(["actions/download-artifact", "actions/github-script"]);
    expect(steps(comment).find((s) => s.uses?.startsWith("actions/download-artifact@"))!.with!.name).toBe("render-diff");
  });
});
