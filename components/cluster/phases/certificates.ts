/** Each kubelet's serving certificate approved, and the control planes' renewal timers. */
import { certificateCheckCalendar, NODE_EXPORTER_TEXTFILE_DIR } from "../certificate-renewal";
import { readScript } from "../../../lib/host-step";
import { ClusterContext, HostSteps } from "./context";
import { Initialised } from "./init";
import { ControlPlanesUpgraded } from "./upgrades";

/** Seconds the kubelet-serving step waits for a node's certificate request and for the kubelet to serve it. */
export const KUBELET_SERVING_TIMEOUT_SECONDS = 300;

/**
 * Per host, on the first control plane: approves its kubelet's own serving-certificate request. Depends
 * on the host being there: `init` for the first control plane, its node step (`nodes`: joined and
 * labelled) for the others; a re-created machine asks again. Returns the kubelet-serving step per host
 * (deleted when the host leaves: the renewal approver approves nothing more for its name).
 */
export function approveKubeletServing(ctx: ClusterContext, { init, nodes }: { init: Initialised; nodes: HostSteps }): HostSteps {
  return new Map(
    ctx.nodes.map((member) => [
      member.name,
      ctx.step(
        ctx.first,
        `kubelet-serving-${member.name}`,
        "k8s-kubelet-serving.sh",
        {
          NODE_NAME: member.name,
          NODE_ADDRESSES: ctx
            .hostOf(member)
            .apply((h) => [...new Set([h.privateAddress, ...(h.publicAddress ? [h.publicAddress] : [])])].join(" ")),
          CSR_TIMEOUT: String(KUBELET_SERVING_TIMEOUT_SECONDS),
          NODE_MACHINE_ID: ctx.hostOf(member).apply((h) => h.machineId ?? ""),
          API_ENDPOINT: ctx.apiEndpoint,
        },
        [member === ctx.first ? init.step : nodes.get(member.name)!],
        { deleteScript: "k8s-kubelet-serving-forget.sh" },
      ),
    ]),
  );
}

/**
 * Per control plane: the daily certificate check and renewal, each control plane at its own hour; on the
 * first, also the hourly approval of renewed kubelet serving certificates. Depends on that control
 * plane's upgrade (`controlPlanesUpgraded`: kubeadm upgrades renew the certificates too). Returns the
 * certificates step per control plane.
 */
export function installCertificateRenewal(
  ctx: ClusterContext,
  { controlPlanesUpgraded }: { controlPlanesUpgraded: ControlPlanesUpgraded },
): HostSteps {
  const { first } = ctx;
  return new Map(
    ctx.controlPlanes.map((member, index) => [
      member.name,
      ctx.step(
        member,
        "certificates",
        "k8s-certs-setup.sh",
        {
          NODE_NAME: member.name,
          RENEW_WITHIN_DAYS: String(ctx.renewalDays),
          TEXTFILE_DIR: NODE_EXPORTER_TEXTFILE_DIR,
          CERTS_SCRIPT: readScript("k8s-certs-renew.sh"),
          CERTS_SERVICE_UNIT: readScript("dare-kubeadm-certs.service"),
          CERTS_TIMER_UNIT: readScript("dare-kubeadm-certs.timer").replace("@ON_CALENDAR@", certificateCheckCalendar(index)),
          APPROVER_SCRIPT: member === first ? readScript("k8s-kubelet-serving.sh") : "",
          APPROVER_SERVICE_UNIT: member === first ? readScript("dare-kubelet-serving.service") : "",
          APPROVER_TIMER_UNIT: member === first ? readScript("dare-kubelet-serving.timer") : "",
        },
        [controlPlanesUpgraded.upgrades.get(member.name)!],
      ),
    ]),
  );
}
