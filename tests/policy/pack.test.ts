/**
 * The pack's wiring: policy/index.ts registers every rule as a mandatory policy, and a policy reports
 * through the SDK's callback what its rule finds. The SDK's PolicyPack (which would start a gRPC
 * server for the engine) is replaced by a recorder.
 */
import * as fs from "fs";
import * as path from "path";
import * as YAML from "yaml";
import type { PolicyPackArgs, ResourceValidationArgs, ResourceValidationPolicy } from "@pulumi/policy";
import { RULES } from "../../policy/rules";

const constructed: Array<{ name: string; args: PolicyPackArgs }> = [];
jest.mock("@pulumi/policy", () => ({
  PolicyPack: class {
    constructor(name: string, args: PolicyPackArgs) {
      constructed.push({ name, args });
    }
  },
}));

const POLICY_DIR = path.join(__dirname, "..", "..", "policy");

function registered(): ResourceValidationPolicy[] {
  jest.isolateModules(() => {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    require("../../policy/index");
  });
  expect(constructed).toHaveLength(1);
  return constructed[0].args.policies as ResourceValidationPolicy[];
}

function run(policy: ResourceValidationPolicy, type: string, props: Record<string, any>): string[] {
  const reports: string[] = [];
  const args = { type, props, urn: `urn:pulumi:test::dare::${type}::r`, name: "r" } as unknown as ResourceValidationArgs;
  const validate = policy.validateResource;
  for (const fn of Array.isArray(validate) ? validate : [validate!]) fn(args, (message) => reports.push(message));
  return reports;
}

describe("policy pack", () => {
  const policies = registered();

  it("registers every rule once, each mandatory", () => {
    expect(constructed[0].name).toBe("dare");
    expect(policies.map((p) => p.name).sort()).toEqual(RULES.map((r) => r.name).sort());
    expect(new Set(policies.map((p) => p.name)).size).toBe(policies.length);
    for (const policy of policies) expect(policy.enforcementLevel).toBe("mandatory");
  });

  it("covers the six platform rules", () => {
    expect(policies.map((p) => p.name)).toEqual(
      expect.arrayContaining([
        "no-nodeport-services",
        "container-resources",
        "pinned-images",
        "no-world-open-security-group-rules",
        "pinned-helm-releases",
        "secrets-marked-secret",
      ]),
    );
  });

  it("reports a violation through the SDK callback and nothing for a compliant resource", () => {
    const byName = Object.fromEntries(policies.map((p) => [p.name, p]));
    expect(run(byName["no-nodeport-services"], "kubernetes:core/v1:Service", { spec: { type: "NodePort" } })).toHaveLength(1);
    expect(run(byName["no-nodeport-services"], "kubernetes:core/v1:Service", { spec: { type: "ClusterIP" } })).toEqual([]);
    const sshFromWorld = { direction: "ingress", protocol: "tcp", portRangeMin: 22, portRangeMax: 22, remoteIpPrefix: "0.0.0.0/0" };
    expect(run(byName["no-world-open-security-group-rules"], "openstack:networking/secGroupRule:SecGroupRule", sshFromWorld)).toHaveLength(
      1,
    );
  });

  it("is a loadable pack: PulumiPolicy.yaml with the nodejs runtime and a versioned package.json", () => {
    const manifest = YAML.parse(fs.readFileSync(path.join(POLICY_DIR, "PulumiPolicy.yaml"), "utf8"));
    expect(manifest.runtime.name).toBe("nodejs");
    // PolicyPack reads the version from the pack directory's package.json and refuses to start without one.
    const pkg = JSON.parse(fs.readFileSync(path.join(POLICY_DIR, "package.json"), "utf8"));
    expect(pkg.version).toMatch(/^\d+\.\d+\.\d+$/);
    expect(fs.existsSync(path.join(POLICY_DIR, pkg.main))).toBe(true);
  });
});
