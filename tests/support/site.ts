/**
 * What every site sets and the tests' configurations therefore carry: the DARE images no default exists for
 * (REQUIRED_IMAGES), as a site that built them names them, and a reason for running without off-host
 * backups (a test stack's data is disposable).
 */
import { REQUIRED_IMAGES } from "../../components/dare-services/workloads";

export const SITE_IMAGES: Record<string, string> = Object.fromEntries(
  REQUIRED_IMAGES.map(([name]) => [name, `harbor.dare.example.org/dare/${name}:v3.6`]),
);

export const SITE_CONFIG = { images: SITE_IMAGES, backupOptOut: "test stack: disposable data" };

/** SITE_CONFIG under `values`; a test that sets dare:backup gives up the opt-out, as a site would. */
export function withSite(values: Record<string, unknown>): Record<string, unknown> {
  const { backupOptOut, ...rest } = SITE_CONFIG;
  return {
    ...rest,
    ...(values.backup ? {} : { backupOptOut }),
    ...values,
    images: { ...SITE_IMAGES, ...(values.images as object | undefined) },
  };
}
