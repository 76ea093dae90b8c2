/**
 * Nothing is lost by an ordinary configuration edit. Every resource that holds data (data-kinds.ts) is
 * declared with `protect` (the engine refuses to delete or replace it) and, for Kubernetes objects,
 * `retainOnDelete` (a deliberate removal leaves the object and its volume in the cluster). Both are set in
 * one place, a stack transformation, so no layer can forget them.
 *
 * A renamed pool, cluster, stack or namespace, or a lower disk count, changes which data resources the
 * program declares. Before the engine gets to its own refusal, the program compares them with those of the
 * stack's last update (its output `dataResources`, read through a StackReference to the stack itself) and
 * stops the preview with a message naming what would be lost and how to proceed deliberately:
 * `dare:allowDataLoss` names the resources the operator lets go (docs/operations.md, "Letting data go").
 */
import * as pulumi from "@pulumi/pulumi";
import { dataKindOf } from "./data-kinds";

/** A data resource as the stack output `dataResources` records it. */
export interface DataResource {
  urn: string;
  type: string;
  name: string;
  what: string;
}

/** The data resources of the last update that the program no longer declares and the operator has not let go. */
export function refusedLosses(previous: DataResource[], current: DataResource[], allowDataLoss: string[]): DataResource[] {
  const declared = new Set(current.map((r) => r.urn));
  return previous.filter((r) => !declared.has(r.urn) && !allowDataLoss.includes(r.name));
}

/** The refusal: what would be lost, why, and the two deliberate ways on. */
export function refusalMessage(lost: DataResource[]): string {
  return [
    `Refusing a change that would delete data; nothing has been changed. No longer declared by the configuration:`,
    ...lost.map((r) => `  - ${r.name} (${r.what}; ${r.type})`),
    "This follows from renaming a pool, dare:clusterName, the stack or a namespace, or from fewer disks or hosts.",
    "To keep the data, undo that configuration change. To let it go deliberately, once its data is safe elsewhere",
    '(docs/operations.md, "Letting data go"), name each resource and lift the engine\'s protection:',
    ...[...new Set(lost.map((r) => r.name))].map((name, i) => `  pulumi config set --path 'allowDataLoss[${i}]' ${name}`),
    ...lost.map((r) => `  pulumi state unprotect '${r.urn}'`),
    "  pulumi up --policy-pack policy --policy-pack-config policy/allow-data-loss.json",
  ].join("\n");
}

export class DataProtection {
  private readonly declared: Array<{ resource: pulumi.Resource; type: string; name: string; what: string }> = [];

  /** @param allowDataLoss dare:allowDataLoss: names of data resources that lose their protection on this run */
  constructor(private readonly allowDataLoss: string[]) {}

  /** Protects every data resource declared from now on: call before the first resource. */
  install(): void {
    // A stack transformation (rather than the engine-side registerResourceTransform) runs in the program
    // itself, the same under the mock runtime of the offline render as under the engine.
    pulumi.runtime.registerStackTransformation((args) => {
      const kind = dataKindOf(args.type, args.name, args.props);
      if (!kind) return undefined;
      this.declared.push({ resource: args.resource, type: args.type, name: args.name, what: kind.what });
      const protect = !this.allowDataLoss.includes(args.name);
      return {
        props: args.props,
        opts: pulumi.mergeOptions(args.opts, { protect, ...(kind.retainOnDelete ? { retainOnDelete: true } : {}) }),
      };
    });
  }

  /**
   * The data resources declared by this run (the stack output `dataResources`), once they are checked against
   * the last update's: the output fails with refusalMessage() when data would be lost, which stops the preview.
   * Call after every resource is declared.
   */
  checkedInventory(): pulumi.Output<DataResource[]> {
    const current = pulumi.all(
      this.declared.map((d) => d.resource.urn.apply((urn) => ({ urn, type: d.type, name: d.name, what: d.what }))),
    );
    const self = new pulumi.StackReference("last-update", {
      name: `${pulumi.getOrganization()}/${pulumi.getProject()}/${pulumi.getStack()}`,
    });
    return pulumi.all([self.getOutput("dataResources"), current]).apply(([previous, resources]) => {
      const lost = refusedLosses((previous as DataResource[] | undefined) ?? [], resources, this.allowDataLoss);
      if (lost.length > 0) throw new pulumi.RunError(refusalMessage(lost));
      return resources;
    });
  }
}
