/**
 * Jest global set-up: the validators check renders against the upstream charts and CRDs in the shared
 * folder (`../shared` beside the clone, as CI provides it, or $DARE_SHARED_DIR). Without them a dozen
 * suites would fail with unrelated-looking errors: say once what is missing and where it was looked for.
 */
import * as fs from "fs";
import * as path from "path";
import { sharedDir } from "../../tools/validate/shared";

export default function requireShared(): void {
  const dir = sharedDir();
  const missing = ["charts", "crds"].filter((sub) => !fs.existsSync(path.join(dir, sub)));
  if (missing.length > 0) {
    throw new Error(
      `the tests validate renders against the upstream Helm charts and CRDs in ${dir}, which has no ${missing.map((m) => `${m}/`).join(" and no ")}.\n` +
        `Put the shared folder beside the clone (../shared, as CI does) or point DARE_SHARED_DIR at it, e.g. DARE_SHARED_DIR=/work/shared npm test`,
    );
  }
}
