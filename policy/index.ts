/**
 * DARE platform policy pack. From the project root, after `npm ci`:
 *   pulumi preview --policy-pack policy
 * The rules are plain functions in rules.ts (tested in tests/policy*.test.ts without the Pulumi CLI).
 */
import { PolicyPack } from "@pulumi/policy";
import { policies } from "./policies";

new PolicyPack("dare", { policies, enforcementLevel: "mandatory" });
