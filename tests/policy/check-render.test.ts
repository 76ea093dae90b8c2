/** The policy rules over offline renders: the whole program of both stacks complies, and the check sees secrets. */
import { execFile } from "child_process";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { promisify } from "util";
import { checkRenderDir, checkResources } from "../../policy/check-render";

const ROOT = path.join(__dirname, "..", "..");
const TS_NODE = path.join(ROOT, "node_modules", ".bin", "ts-node");
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "policy-render-"));
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

describe("checkResources", () => {
  it("reports a plain-text Kubernetes Secret value (the render keeps secret markers) with the rule's name", () => {
    const secret = (value: string) => ({
      urn: "urn:pulumi:testbed::dare::kubernetes:core/v1:Secret::db",
      type: "kubernetes:core/v1:Secret",
      inputs: { metadata: { name: "db" }, stringData: { password: value } },
    });
    expect(checkResources([secret("hunter2")])).toEqual([expect.stringMatching(/::db \[secrets-marked-secret\] .*stringData\.password/)]);
    expect(checkResources([secret("[secret]")])).toEqual([]);
  });

  it("runs every other rule too", () => {
    const service = { urn: "urn:x::web", type: "kubernetes:core/v1:Service", inputs: { spec: { type: "NodePort" } } };
    expect(checkResources([service])).toEqual([expect.stringContaining("[no-nodeport-services]")]);
  });
});

describe("the program's renders", () => {
  const run = promisify(execFile);
  it.each(["testbed", "production"])(
    "%s has no policy violation",
    async (stack) => {
      const out = path.join(tmp, stack);
      await run(TS_NODE, ["--transpile-only", path.join(ROOT, "tools", "render.ts"), "--stack", stack, "--out", out], {
        cwd: ROOT,
        maxBuffer: 64 * 1024 * 1024,
      });
      expect(checkRenderDir(out)).toEqual([]);
    },
    120000,
  );
});
