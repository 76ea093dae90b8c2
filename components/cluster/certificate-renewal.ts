/**
 * The certificate lifecycle's shared facts: how early certificates are renewed, where host scripts leave
 * metrics for node-exporter, and when each control plane runs its daily check (docs/kubernetes.md,
 * "Certificates: what renews when").
 */

/**
 * `dare:certificateRenewalDays` bounds. Above 30 days (the KubeadmCertificateExpiresSoon warning) with two
 * weeks of daily retries to spare, so a working renewal never warns; at most half of kubeadm's one-year
 * certificate lifetime, so a certificate is not renewed more than twice a year.
 */
export const CERTIFICATE_RENEWAL_DAYS_MIN = 45;
export const CERTIFICATE_RENEWAL_DAYS_MAX = 180;

/**
 * Where host scripts write node-exporter textfiles (`*.prom`): mounted read-only into node-exporter's pods
 * at NODE_EXPORTER_TEXTFILE_MOUNT and read by its textfile collector (monitoring.ts).
 */
export const NODE_EXPORTER_TEXTFILE_DIR = "/var/lib/dare/node-exporter-textfile";
export const NODE_EXPORTER_TEXTFILE_MOUNT = "/host/dare-textfile";

/** Hour (UTC, host clock) of the first control plane's daily check; the others follow an hour apart each. */
export const CERTIFICATE_CHECK_FIRST_HOUR = 4;

/**
 * systemd OnCalendar of control plane `index`'s daily check: one hour apart, so that control planes never
 * restart their static pods together (a restart takes a few minutes: four components, 20 s each and back).
 */
export function certificateCheckCalendar(index: number): string {
  const hour = CERTIFICATE_CHECK_FIRST_HOUR + index;
  if (!Number.isInteger(index) || index < 0 || hour > 23) throw new Error(`certificateCheckCalendar: no hour for control plane ${index}`);
  return `*-*-* ${String(hour).padStart(2, "0")}:00:00`;
}
