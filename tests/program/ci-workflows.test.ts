/**
 * The GitHub Actions workflows (.github/workflows/*.yml), parsed: every action pinned by commit SHA with
 * its release in a comment; credentials only in jobs behind a GitHub environment (required reviewers) or
 * jobs that run only on the default branch; previews with the read-only state credential; no
 * pull_request_target or workflow_run job that checks out the pull request's code. Each check is also run
 * on a bad workflow, to show that it can fail.
 */
import * as fs from "fs";
import * as path from "path";
import * as YAML from "yaml";

const DIR = path.join(__dirname, "..", "..", ".github", "workflows");
const FILES = fs
  .readdirSync(DIR)
  .filter((f) => /\.ya?ml$/.test(f))
  .sort();

type Json = any;
interface Workflow {
  file: string;
  text: string;
  doc: Json;
}
const load = (file: string, text: string): Workflow => ({ file, text, doc: YAML.parse(text) });
const WORKFLOWS = FILES.map((f) => load(f, fs.readFileSync(path.join(DIR, f), "utf8")));
const byFile = (f: string) => WORKFLOWS.find((w) => w.file === f)!;

/** Secrets GitHub gives every run (no credential of ours). */
const AMBIENT_SECRETS = new Set(["GITHUB_TOKEN"]);
/** The state bucket's read-write credential: only `pulumi up` may hold it. */
const WRITE_STATE_SECRETS = ["PULUMI_STATE_ACCESS_KEY_ID", "PULUMI_STATE_SECRET_ACCESS_KEY"];

/** The events a workflow runs on. */
function events(doc: Json): string[] {
  const on = doc.on ?? doc[true as any]; // YAML 1.1 parsers read `on` as true; yaml 2 does not, but be safe
  if (typeof on === "string") return [on];
  if (Array.isArray(on)) return on;
  return Object.keys(on ?? {});
}

/** `uses:` lines that are not pinned to a full commit SHA with a `# vX.Y.Z` comment. */
export function unpinnedUses(w: Workflow): string[] {
  const bad: string[] = [];
  for (const line of w.text.split("\n")) {
    const m = /^\s*(?:-\s+)?uses:\s*(\S+)(.*)$/.exec(line);
    if (!m) continue;
    const [, ref, rest] = m;
    if (ref.startsWith("./")) continue; // a local action or workflow is this commit's own code
    if (!/^[A-Za-z0-9_.-]+\/[A-Za-z0-9_./-]+@[0-9a-f]{40}$/.test(ref) || !/^\s+#\s*v\d+\.\d+\.\d+\s*$/.test(rest))
      bad.push(`${w.file}: ${line.trim()}`);
  }
  return bad;
}

/** The secrets a job reads (`secrets.NAME` anywhere in it), ambient ones left out. */
function jobSecrets(job: Json): string[] {
  const names = new Set<string>();
  for (const m of JSON.stringify(job).matchAll(/secrets\.([A-Za-z_][A-Za-z0-9_]*)/g)) if (!AMBIENT_SECRETS.has(m[1])) names.add(m[1]);
  if (job.secrets === "inherit") names.add("(inherit)");
  return [...names].sort();
}

/** Does the job run only on the default branch: pushes to it, or a manual run guarded by `if:` on it? */
function defaultBranchOnly(doc: Json, job: Json): boolean {
  const on = events(doc);
  const prEvents = on.filter((e) => e.startsWith("pull_request") || e === "workflow_run" || e === "issue_comment");
  if (prEvents.length > 0) return false;
  const guard = String(job.if ?? "");
  const guarded =
    /github\.ref\s*==\s*format\('refs\/heads\/\{0\}',\s*github\.event\.repository\.default_branch\)/.test(guard) ||
    /github\.ref\s*==\s*'refs\/heads\/main'/.test(guard);
  const pushOnlyMain = on.every((e) => e === "push") && JSON.stringify(doc.on.push?.branches ?? []) === JSON.stringify(["main"]);
  return guarded || pushOnlyMain;
}

/** Jobs that read a credential without an environment and without being restricted to the default branch. */
export function unguardedCredentialJobs(w: Workflow): string[] {
  const bad: string[] = [];
  for (const [id, job] of Object.entries<Json>(w.doc.jobs ?? {})) {
    const secrets = jobSecrets(job);
    if (secrets.length === 0) continue;
    if (job.environment) continue;
    if (defaultBranchOnly(w.doc, job)) continue;
    bad.push(`${w.file}: job ${id} reads ${secrets.join(", ")} with no environment on ${events(w.doc).join(", ")}`);
  }
  return bad;
}

/** pull_request_target / workflow_run jobs (base repository's token and secrets) that check out the pull request's code. */
export function privilegedCheckoutsOfPullRequests(w: Workflow): string[] {
  const on = events(w.doc);
  if (!on.includes("pull_request_target") && !on.includes("workflow_run")) return [];
  const bad: string[] = [];
  for (const [id, job] of Object.entries<Json>(w.doc.jobs ?? {})) {
    for (const step of job.steps ?? []) {
      if (!String(step.uses ?? "").startsWith("actions/checkout@")) continue;
      const ref = JSON.stringify(step.with ?? {});
      // Without `ref` pull_request_target checks out the base; anything naming the head (or a fork's repository) is the PR's code.
      if (/pull_request\.head|head_ref|workflow_run\.head|refs\/pull\/|merge_commit_sha/.test(ref))
        bad.push(`${w.file}: job ${id} checks out ${ref}`);
    }
  }
  return bad;
}

describe("the workflows", () => {
  it("are all here and parse", () => {
    expect(FILES).toEqual(["preview.yml", "render-diff-comment.yml", "render-diff.yml", "test.yml", "up.yml"]);
    for (const w of WORKFLOWS) expect(w.doc.jobs).toBeDefined();
  });

  it("pin every action to a full commit SHA, with its release in a comment, the same one for the same SHA", () => {
    expect(WORKFLOWS.flatMap(unpinnedUses)).toEqual([]);
    const versions = new Map<string, Set<string>>();
    for (const w of WORKFLOWS) {
      for (const m of w.text.matchAll(/uses:\s*(\S+@[0-9a-f]{40})\s+#\s*(v\S+)/g)) {
        versions.set(m[1], (versions.get(m[1]) ?? new Set()).add(m[2]));
      }
    }
    expect(versions.size).toBeGreaterThanOrEqual(7);
    for (const [ref, v] of versions) expect([ref, [...v]]).toEqual([ref, [[...v][0]]]);
    // One release per action across the workflows (a bump moves all of them).
    const perAction = new Map<string, Set<string>>();
    for (const ref of versions.keys()) perAction.set(ref.split("@")[0], (perAction.get(ref.split("@")[0]) ?? new Set()).add(ref));
    for (const [action, refs] of perAction) expect([action, refs.size]).toEqual([action, 1]);
  });

  it("give credentials only to jobs behind an environment or on the default branch", () => {
    expect(WORKFLOWS.flatMap(unguardedCredentialJobs)).toEqual([]);
  });

  it("never check out a pull request's code with the base repository's token (pull_request_target, workflow_run)", () => {
    expect(WORKFLOWS.filter((w) => events(w.doc).includes("pull_request_target")).map((w) => w.file)).toEqual([]);
    expect(WORKFLOWS.flatMap(privilegedCheckoutsOfPullRequests)).toEqual([]);
  });
});

describe("the preview", () => {
  const preview = byFile("preview.yml");
  const job = preview.doc.jobs.preview;

  it("runs per stack in the stack's preview environment, for branches of this repository only", () => {
    expect(events(preview.doc)).toEqual(["pull_request"]);
    expect(job.environment).toBe("${{ matrix.stack }}-preview");
    expect(job.strategy.matrix.stack).toEqual(["testbed", "production"]);
    expect(job.if).toBe("github.event.pull_request.head.repo.full_name == github.repository");
  });

  it("reads the state with the read-only credential and OpenStack with the reader credential, never the write ones", () => {
    const secrets = jobSecrets(job);
    expect(secrets).toEqual([
      "OS_AUTH_URL",
      "OS_READER_APPLICATION_CREDENTIAL_ID",
      "OS_READER_APPLICATION_CREDENTIAL_SECRET",
      "OS_REGION_NAME",
      "PULUMI_BACKEND_URL",
      "PULUMI_CONFIG_PASSPHRASE",
      "PULUMI_STATE_READ_ACCESS_KEY_ID",
      "PULUMI_STATE_READ_SECRET_ACCESS_KEY",
    ]);
    for (const name of WRITE_STATE_SECRETS) expect(secrets).not.toContain(name);
    const env = job.steps.find((s: Json) => String(s.uses).startsWith("pulumi/actions@")).env;
    expect(env.AWS_ACCESS_KEY_ID).toBe("${{ secrets.PULUMI_STATE_READ_ACCESS_KEY_ID }}");
    expect(env.AWS_SECRET_ACCESS_KEY).toBe("${{ secrets.PULUMI_STATE_READ_SECRET_ACCESS_KEY }}");
  });

  it("the render diff stays for every pull request, forks included, with no credential", () => {
    for (const file of ["render-diff.yml", "test.yml"]) {
      const w = byFile(file);
      expect(events(w.doc)).toContain("pull_request");
      for (const [id, j] of Object.entries<Json>(w.doc.jobs)) {
        expect([id, jobSecrets(j), j.environment, j.if]).toEqual([id, [], undefined, undefined]);
      }
    }
  });

  it("`pulumi up` holds the write credential, manual, default branch only, in the stack's environment", () => {
    const up = byFile("up.yml");
    expect(events(up.doc)).toEqual(["workflow_dispatch"]);
    const j = up.doc.jobs.up;
    expect(j.environment).toBe("${{ inputs.stack }}");
    expect(defaultBranchOnly(up.doc, j)).toBe(true);
    expect(jobSecrets(j)).toEqual(expect.arrayContaining(WRITE_STATE_SECRETS));
  });
});

describe("the checks fail on bad workflows", () => {
  const bad = (text: string) => load("bad.yml", text);

  it("an action by tag, by branch, by a short SHA or without its release comment", () => {
    const w = bad(`on: push
jobs:
  a:
    runs-on: ubuntu-24.04
    steps:
      - uses: actions/checkout@v7.0.1
      - uses: actions/checkout@main
      - uses: actions/checkout@3d3c42e # v7.0.1
      - uses: actions/checkout@3d3c42e5aac5ba805825da76410c181273ba90b1
      - uses: actions/checkout@3d3c42e5aac5ba805825da76410c181273ba90b1 # v7.0.1
      - uses: ./local-action
`);
    expect(unpinnedUses(w)).toHaveLength(4);
  });

  it("a pull request job that reads the passphrase without an environment", () => {
    const w = bad(`on: { pull_request: {} }
jobs:
  preview:
    runs-on: ubuntu-24.04
    steps:
      - run: pulumi preview
        env: { PULUMI_CONFIG_PASSPHRASE: "\${{ secrets.PULUMI_CONFIG_PASSPHRASE }}" }
`);
    expect(unguardedCredentialJobs(w)).toEqual(["bad.yml: job preview reads PULUMI_CONFIG_PASSPHRASE with no environment on pull_request"]);
    // The same job on pushes to main only, or behind an environment, passes.
    expect(unguardedCredentialJobs(bad(w.text.replace("{ pull_request: {} }", "{ push: { branches: [main] } }")))).toEqual([]);
    expect(unguardedCredentialJobs(bad(w.text.replace("    runs-on:", "    environment: production-preview\n    runs-on:")))).toEqual([]);
    // A manual run without the default-branch guard does not.
    expect(unguardedCredentialJobs(bad(w.text.replace("{ pull_request: {} }", "{ workflow_dispatch: {} }")))).toHaveLength(1);
  });

  it("pull_request_target checking out the pull request's head", () => {
    const w = bad(`on: pull_request_target
jobs:
  build:
    runs-on: ubuntu-24.04
    steps:
      - uses: actions/checkout@3d3c42e5aac5ba805825da76410c181273ba90b1 # v7.0.1
        with: { ref: "\${{ github.event.pull_request.head.sha }}" }
`);
    expect(privilegedCheckoutsOfPullRequests(w)).toHaveLength(1);
    expect(privilegedCheckoutsOfPullRequests(bad(w.text.replace(/\n\s+with:.*\n/, "\n")))).toEqual([]);
  });
});
