/**
 * A real `pulumi preview` of a stack of existing hosts: the real CLI, the real Kubernetes provider (its
 * Helm releases resolve their charts from the mirror on 127.0.0.1), the stand-in command/random/tls
 * plugins. Then the render of the same configuration must declare the same resources: the mock runtime
 * and the engine must not disagree.
 */
import * as fs from "fs";
import * as path from "path";
import { render } from "../support/render";
import { requireEngine, serveChartMirror, workspace, Workspace } from "./support";
import { existingHostsStack } from "./stacks";
import { TEST_SUBNET_PREFIX } from "../hosts/harness";

jest.setTimeout(600_000);

let mirror: { url: string; close: () => Promise<void> };
let ws: Workspace;
let preview: {
  steps: Array<{ op: string; urn: string; newState?: { type: string } }>;
  diagnostics?: Array<{ severity: string; message: string }>;
};

beforeAll(async () => {
  requireEngine();
  mirror = await serveChartMirror();
  // A preview dials no host: any addresses of the subnet do.
  const hosts = [1, 2, 3].map((i) => `${TEST_SUBNET_PREFIX}.${i}`);
  ws = await workspace("engine", existingHostsStack({ hosts, chartMirror: mirror.url }));
  const result = await ws.pulumi(["preview", "--json"]);
  if (result.code !== 0) throw new Error(`pulumi preview failed:\n${result.stdout.slice(-4000)}\n${result.stderr.slice(-4000)}`);
  preview = JSON.parse(result.stdout);
});
afterAll(async () => {
  ws?.remove();
  await mirror?.close();
});

/** What both sides declare: every resource but the stack itself and the engine's default providers. */
const declared = (urns: string[]) =>
  urns.filter((u) => !u.includes("::pulumi:pulumi:Stack::") && !/::pulumi:providers:[^:]+::default/.test(u)).sort();

it("previews the whole program for existing hosts without an error", () => {
  const errors = (preview.diagnostics ?? []).filter((d) => d.severity === "error");
  expect(errors).toEqual([]);
  const creates = preview.steps.filter((s) => s.op === "create");
  expect(creates.length).toBeGreaterThan(150);
  const types = new Set(creates.map((s) => s.newState?.type));
  for (const type of [
    "command:remote:Command",
    "tls:index/privateKey:PrivateKey",
    "random:index/randomPassword:RandomPassword",
    "kubernetes:helm.sh/v3:Release",
    "kubernetes:core/v1:Namespace",
    "pulumi:providers:kubernetes",
  ]) {
    expect({ type, previewed: types.has(type) }).toEqual({ type, previewed: true });
  }
});

it("declares exactly the resources the render declares for the same configuration", () => {
  const stackFile = path.join(ws.dir, "Pulumi.engine.yaml");
  const rendered = render("engine", ["--stack-file", stackFile]);
  expect(rendered.stderr).toBe("");
  const renderUrns = declared(
    JSON.parse(fs.readFileSync(path.join(rendered.dir, "resources.json"), "utf8")).map((r: { urn: string }) => r.urn),
  );
  const previewUrns = declared(preview.steps.map((s) => s.urn));
  expect({
    onlyInPreview: previewUrns.filter((u) => !renderUrns.includes(u)),
    onlyInRender: renderUrns.filter((u) => !previewUrns.includes(u)),
  }).toEqual({ onlyInPreview: [], onlyInRender: [] });
});
