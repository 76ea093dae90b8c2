/**
 * The pack's policies: each rule of rules.ts as a mandatory resource validation, so a violation stops
 * `pulumi preview --policy-pack policy` and `pulumi up` instead of printing a warning.
 */
import type { ResourceValidationPolicy } from "@pulumi/policy";
import { RULES } from "./rules";

export const policies: ResourceValidationPolicy[] = RULES.map((rule) => ({
  name: rule.name,
  description: rule.description,
  enforcementLevel: "mandatory",
  validateResource: (args, reportViolation) => {
    for (const message of rule.check(args.type, args.props, { name: args.name, protect: args.opts?.protect })) reportViolation(message);
  },
}));
