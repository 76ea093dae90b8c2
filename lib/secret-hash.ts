/** A pod annotation that changes when a generated secret does, so that the pods using it restart. */
import * as crypto from "crypto";
import * as pulumi from "@pulumi/pulumi";

/** A short hash of a generated secret, for a pod annotation: a 256-bit random value's hash reveals nothing of it. */
export function secretHash(secret: pulumi.Output<string>): pulumi.Output<string> {
  return pulumi.unsecret(secret.apply((v) => crypto.createHash("sha256").update(v).digest("hex").slice(0, 16)));
}
