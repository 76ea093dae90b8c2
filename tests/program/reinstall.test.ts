/**
 * Issue 13, item 6: an existing host that was re-installed is set up again by a documented configuration
 * change (a new `installation` in its dare:hosts entry), as a re-created VM is by its new instance id
 * (tests/program/lifecycle.test.ts): every step of that host gets the new identity, so the engine updates, that is
 * re-runs, them; the other hosts' steps do not change.
 */
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { existingHostsStack, hostName } from "../engine/stacks";
import { readTree, render, RenderResult } from "../support/render";

jest.setTimeout(120_000);

let stackFile: string;
let before: RenderResult;
let after: RenderResult;
beforeAll(() => {
  stackFile = path.join(fs.mkdtempSync(path.join(os.tmpdir(), "reinstall-")), "Pulumi.existing.yaml");
  fs.writeFileSync(
    stackFile,
    existingHostsStack({
      hosts: ["10.213.0.10", "10.213.0.11", "10.213.0.12"],
      subnet: "10.213.0.0/24",
      chartMirror: "http://127.0.0.1:1",
    }),
  );
  before = render("existing", ["--stack-file", stackFile]);
  after = render("existing", ["--stack-file", stackFile, "--set", "hosts[2].installation=reinstalled-2026-12-01"]);
});

/** host -> step file -> contents, of the host step parameters. */
function stepEnvs(result: RenderResult): Map<string, string> {
  expect(result.stderr).toBe("");
  return new Map([...readTree(path.join(result.dir, "hosts"))].filter(([file]) => file.endsWith(".env")));
}

it("changes exactly the steps of the re-installed host, and those that act on its node", () => {
  const was = stepEnvs(before);
  const is = stepEnvs(after);
  expect([...is.keys()].sort()).toEqual([...was.keys()].sort());
  const changed = [...is.keys()].filter((file) => is.get(file) !== was.get(file)).sort();
  const reinstalled = hostName(2);
  // Its own steps (prepare, join, upgrade) and the control plane's steps for its node (`<step>-<host>`: labels
  // and removal, the approval of its new kubelet serving certificate, its upgrade's drain).
  expect(changed.length).toBeGreaterThanOrEqual(3);
  for (const file of changed)
    expect(file.startsWith(`${reinstalled}/`) || file.endsWith(`-${reinstalled}.env`) || file.includes("token")).toBe(true);
  expect(changed.some((f) => f.endsWith(`-kubelet-serving-${reinstalled}.env`))).toBe(true);
  for (const step of ["prepare", "join"]) {
    expect(changed.some((f) => f.startsWith(`${reinstalled}/`) && f.endsWith(`-${step}.env`))).toBe(true);
  }
  expect(changed.some((f) => f.startsWith(`${hostName(1)}/`))).toBe(false);
  // The new identity is what changed.
  const prepare = changed.find((f) => f.startsWith(`${reinstalled}/`) && f.endsWith("-prepare.env"))!;
  expect(is.get(prepare)).toContain("MACHINE_ID='reinstalled-2026-12-01'");
  expect(was.get(prepare)).toContain("MACHINE_ID=''");
});

it("refuses an installation name that is not a short identifier, with an example", () => {
  const bad = render("existing", ["--stack-file", stackFile, "--set", "hosts[2].installation=re installed"]);
  expect(bad.status).not.toBe(0);
  expect(bad.stderr).toContain("dare:hosts[2].installation");
  expect(bad.stderr).toContain("reinstalled-2026-12-01");
});
