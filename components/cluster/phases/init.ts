/**
 * The cluster itself: `kubeadm init` on the first control plane, and the bootstrap token the
 * other hosts join with, minted for a round of joins and revoked once every join of it is done.
 */
import * as command from "@pulumi/command";
import * as pulumi from "@pulumi/pulumi";
import * as random from "@pulumi/random";
import { initConfig, tokenConfig } from "../kubeadm-config";
import { kubeVipOf } from "./api-virtual-ip";
import { ClusterContext, HostSteps } from "./context";

/** The initialised cluster. */
export interface Initialised {
  /** `kubeadm init` on the first control plane: every later step on the cluster waits for it */
  step: command.remote.Command;
  /** the bootstrap token, `<id>.<secret>` (secret), which init creates and the joins present */
  bootstrapToken: pulumi.Output<string>;
}

/**
 * `kubeadm init` on the first control plane. Depends on that host's `prepare` (kubeadm, containerd),
 * `kubeletConfig` (the kubelet init starts has its settings), `pki` (init uses the shared CAs rather
 * than making its own) and `kubeVip` (init reaches the API at the virtual IP).
 */
export function initCluster(
  ctx: ClusterContext,
  { prepare, kubeletConfig, pki, kubeVip }: { prepare: HostSteps; kubeletConfig: HostSteps; pki: HostSteps; kubeVip: HostSteps },
): Initialised {
  const { first } = ctx;
  const bootstrapToken = pulumi.secret(
    pulumi
      .all([
        new random.RandomString(`${ctx.name}-token-id`, { length: 6, upper: false, special: false }, { parent: ctx.parent }).result,
        // A RandomPassword: its result is a secret in the state too (a RandomString's is plain text there).
        new random.RandomPassword(`${ctx.name}-token-secret`, { length: 16, upper: false, special: false }, { parent: ctx.parent }).result,
      ])
      .apply(([id, secret]) => `${id}.${secret}`),
  );
  const step = ctx.step(
    first,
    "init",
    "k8s-kubeadm.sh",
    {
      KUBEADM_ACTION: "init",
      KUBEADM_CONFIG: pulumi
        .all([ctx.settings, ctx.privateAddress(first)])
        .apply(([s, address]) => initConfig(s, { name: first.name, privateAddress: address })),
      BOOTSTRAP_TOKEN: bootstrapToken,
      NODE_NAME: first.name,
    },
    [prepare.get(first.name)!, kubeletConfig.get(first.name)!, pki.get(first.name)!, ...kubeVipOf(kubeVip, first)],
    {
      // A lone control plane re-created is a lost cluster: init builds it again. With others still
      // running, init would start a second cluster: that host is re-joined by hand (docs/recovery.md).
      rerunOnNewMachine: ctx.controlPlanes.length === 1,
      // `pulumi destroy` leaves the first control plane as clean as the others (after every join's reset).
      deleteScript: "k8s-reset.sh",
    },
  );
  return { step, bootstrapToken };
}

/** The bootstrap token, valid for the joins of this round. */
export interface JoinToken {
  /** the token step on the first control plane: every join depends on it */
  step: command.remote.Command;
  /** the hosts that join and their machines: a change is a new round (a new mint, a new revoke) */
  joinRound: pulumi.Output<string>;
}

/**
 * Mints `init`'s bootstrap token again whenever a join will run: a host added, or a machine re-created
 * (a new id under the same name). Depends on `init` (the API). It never expires by itself; revokeJoinToken
 * deletes it once every join is done, so a join that failed finds it still valid when it is retried,
 * however much later.
 */
export function mintJoinToken(ctx: ClusterContext, { init }: { init: Initialised }): JoinToken {
  const joinRound = pulumi
    .all(ctx.others.map((n) => ctx.hostOf(n).apply((h) => `${n.name}=${h.machineId ?? ""}`)))
    .apply((members) => members.join(","));
  const step = ctx.step(
    ctx.first,
    "token",
    "k8s-token.sh",
    {
      BOOTSTRAP_TOKEN: init.bootstrapToken,
      TOKEN_CONFIG: tokenConfig(),
    },
    [init.step],
    { triggers: [joinRound] },
  );
  return { step, joinRound };
}

/**
 * Deletes the bootstrap token. Depends on `token` and on every join (`joins`, control planes' and
 * workers'): none of them needs it any more. Re-runs with each round. Returns the token-revoke step.
 */
export function revokeJoinToken(
  ctx: ClusterContext,
  { init, token, joins }: { init: Initialised; token: JoinToken; joins: HostSteps },
): command.remote.Command {
  return ctx.step(
    ctx.first,
    "token-revoke",
    "k8s-token-revoke.sh",
    { BOOTSTRAP_TOKEN: init.bootstrapToken },
    [token.step, ...joins.values()],
    {
      triggers: [token.joinRound],
    },
  );
}
