/**
 * Runs a piece of the program under Pulumi's mock runtime and returns what it registered.
 * Each call installs fresh mocks, so one test file can compare several configurations.
 */
import * as pulumi from "@pulumi/pulumi";
import { installMocks, RecordedResource, SECRET_SIG, settle, SPECIAL_SIG_KEY } from "../../tools/mocks";
import { Redactor } from "../../tools/render-writer";

export async function runMocked(build: () => unknown, stack = "test"): Promise<RecordedResource[]> {
  const resources = installMocks(stack);
  await pulumi.runtime.runInPulumiStack(async () => build());
  await settle();
  return resources;
}

/** Inputs with secrets replaced by "[secret]" (what an operator would see). */
export function redacted(resource: RecordedResource): any {
  return new Redactor().redact(resource.inputs);
}

/** Inputs with Pulumi's secret markers removed: the values the cluster would receive. */
export function unsecret(value: unknown): any {
  if (Array.isArray(value)) return value.map(unsecret);
  if (value === null || typeof value !== "object") return value;
  const obj = value as Record<string, unknown>;
  if (obj[SPECIAL_SIG_KEY] === SECRET_SIG) return unsecret(obj.value);
  return Object.fromEntries(Object.entries(obj).map(([k, v]) => [k, unsecret(v)]));
}

export function ofType(resources: RecordedResource[], type: string): RecordedResource[] {
  return resources.filter((r) => r.type === type);
}

/** Resolves an Output inside a mocked run. */
export function valueOf<T>(output: pulumi.Output<T>): Promise<T> {
  return (output as any).promise();
}

export function isSecretOutput(output: pulumi.Output<unknown>): Promise<boolean> {
  return (output as any).isSecret;
}
