/**
 * dare:skipAwait: every Kubernetes object is created without waiting for what the cluster reports ready.
 * Helm releases get `skipAwait` (no `helm --wait`) and `disableWebhooks` (`helm --no-hooks`: Helm waits for
 * each hook Job to complete, whatever --wait says, e.g. cert-manager's startupapicheck, so a cluster that
 * runs no pods would hold the release until its timeout); every other object gets the Kubernetes provider's
 * `pulumi.com/skipAwait: "true"` annotation (pulumi-kubernetes, provider/pkg/await: the annotation skips
 * the readiness await of create and update). CustomResourceDefinitions keep their await: the provider then
 * waits for `Established`, which the API server decides by itself, before their custom resources.
 *
 * One stack transformation, registered before the first resource, so no layer repeats it; a stack
 * transformation (not the engine-side registerResourceTransform) runs the same in the offline render.
 */
import * as pulumi from "@pulumi/pulumi";

export const SKIP_AWAIT_ANNOTATION = "pulumi.com/skipAwait";
const HELM_RELEASE = "kubernetes:helm.sh/v3:Release";
const CRD = /^kubernetes:apiextensions\.k8s\.io\/v1(beta1)?:CustomResourceDefinition$/;
// Kubernetes objects are `kubernetes:<group>/<version>:<Kind>`; the provider's components (yaml, helm
// charts, kustomize) and its lists (`…List`) carry no object metadata of their own.
const OBJECT = /^kubernetes:[^:]+\/v[^:]*:[A-Z][A-Za-z0-9]*$/;
const COMPONENT = /^kubernetes:(yaml|helm\.sh|kustomize)\//;

/** The props of a resource of type `type` with readiness awaits turned off; undefined: left as they are. */
export function skipAwaitProps(type: string, props: Record<string, unknown>): Record<string, unknown> | undefined {
  if (type === HELM_RELEASE) return { ...props, skipAwait: true, disableWebhooks: true };
  if (!OBJECT.test(type) || COMPONENT.test(type) || CRD.test(type) || type.endsWith("List")) return undefined;
  const metadata = pulumi
    .output((props.metadata ?? {}) as Record<string, unknown>)
    .apply((m: { annotations?: Record<string, string> }) => ({
      ...m,
      annotations: { ...(m?.annotations ?? {}), [SKIP_AWAIT_ANNOTATION]: "true" },
    }));
  return { ...props, metadata };
}

/** Turns readiness awaits off for every Kubernetes object declared from now on: call before the first resource. */
export function installSkipAwait(): void {
  pulumi.runtime.registerStackTransformation((args) => {
    const props = skipAwaitProps(args.type, args.props as Record<string, unknown>);
    return props ? { props, opts: args.opts } : undefined;
  });
}
