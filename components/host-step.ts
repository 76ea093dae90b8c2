/**
 * Host work as small scripts (kubeone's way): each step is a real `.sh` file under `components/scripts/`
 * that takes its parameters from environment variables and is guarded so that a rerun is a no-op.
 *
 * On the wire a step is one `command.remote.Command`: the script text is the `bash -c` argument and
 * its parameters arrive on stdin as `KEY='value'` lines, so nothing depends on sshd's AcceptEnv and
 * no secret parameter is ever part of the command line (the stdin input is a Pulumi secret whenever a
 * parameter is). Every step is also recorded here so the offline render can write
 * `hosts/<host>/NN-<step>.sh` and `.env` in the order steps are declared for each host.
 */
import * as fs from "fs";
import * as path from "path";
import * as command from "@pulumi/command";
import * as pulumi from "@pulumi/pulumi";
import { Host, SshEndpoint } from "./hosts";

export const SCRIPTS_DIR = path.join(__dirname, "scripts");

/** How SSH reaches hosts: the program's key, and the bastion for hosts without a public address. */
export interface SshAccess {
  privateKey: pulumi.Input<string>;
  bastion: pulumi.Input<SshEndpoint | undefined>;
}

/**
 * A host whose name is known when the program is declared but whose addresses may come later (an
 * OpenStack VM's IP): the step's name uses `name`, the SSH connection waits for `host`.
 */
export interface HostRef {
  name: string;
  host: pulumi.Input<Host>;
}

export interface HostStepArgs {
  /** the host the script runs on */
  host: Host | HostRef;
  /** step name, e.g. `prepare`; the resource is named `<prefix>-<host>-<step>` */
  step: string;
  /** file name under components/scripts/, e.g. `prepare-host.sh` */
  script: string;
  /** parameters: environment variables of the script */
  env: Record<string, pulumi.Input<string>>;
  /** script run by `pulumi destroy` or when the step leaves the program (e.g. drain and reset) */
  deleteScript?: string;
  /** re-run the step when any of these change (a script's own text and env always do) */
  triggers?: pulumi.Input<unknown>[];
  /**
   * Run the step again on a re-created machine (a new `Host.machineId` under the same name): default true.
   * The parameter MACHINE_ID carries it, so the change is an update (the provider runs `create` again),
   * not a replacement whose delete script would then undo the step on the new machine.
   */
  rerunOnNewMachine?: boolean;
}

export interface RecordedStep {
  host: string;
  step: string;
  script: string;
  env: Record<string, pulumi.Input<string>>;
  deleteScript?: string;
}

/** Steps in declaration order; the offline render reads this. */
export const recordedSteps: RecordedStep[] = [];

const scriptCache = new Map<string, string>();
export function readScript(file: string): string {
  if (!scriptCache.has(file)) scriptCache.set(file, fs.readFileSync(path.join(SCRIPTS_DIR, file), "utf8"));
  return scriptCache.get(file)!;
}

/** POSIX single-quoting: safe for any value, including ones with quotes and newlines. */
export function shellQuote(value: string): string {
  return `'${value.replace(/'/g, `'\\''`)}'`;
}

/** The parameters as a sourced file: `KEY='value'` lines in key order. */
export function envFile(env: Record<string, string>): string {
  return Object.keys(env).sort().map((k) => `${k}=${shellQuote(env[k])}\n`).join("");
}

/** The command SSH runs: parameters from stdin, then the script, as root, failing on the first error. */
export function wrapScript(scriptText: string): string {
  return `sudo -n bash -c ${shellQuote(`set -euo pipefail\nset -a\n. /dev/stdin\nset +a\n${scriptText}`)}`;
}

/**
 * The SSH connection to a host, pinned to its host key (and the bastion's to the bastion's key): with
 * `hostKey` the provider accepts that key only (@pulumi/command ≥ 1.1.0, pulumi/pulumi-command#794:
 * `ssh.FixedHostKey`, the host-key algorithm restricted to the key's type); without it, any key.
 * So whoever answers on a host's address without its private host key gets no secret parameter.
 */
export function connectionFor(target: pulumi.Input<Host>, access: SshAccess): pulumi.Output<command.types.input.remote.ConnectionArgs> {
  return pulumi.all([pulumi.output(target), pulumi.output(access.bastion), pulumi.output(access.privateKey)]).apply(([host, bastion, privateKey]) => {
    // A connection that would accept any key is a bug, not a configuration: refuse it here too.
    if (!host.hostKey) throw new Error(`host ${host.name}: no SSH host key to pin`);
    if (host.viaBastion && bastion && !bastion.hostKey) throw new Error(`bastion ${bastion.address}: no SSH host key to pin`);
    return {
      host: host.address,
      port: host.port,
      user: host.sshUser,
      hostKey: host.hostKey,
      privateKey,
      // Fresh VMs take a while to boot sshd: retry dials with backoff rather than fail the update.
      dialErrorLimit: 30,
      perDialTimeout: 15,
      ...(host.viaBastion && bastion
        ? { proxy: { host: bastion.address, port: bastion.port, user: bastion.user, hostKey: bastion.hostKey, privateKey, dialErrorLimit: 30, perDialTimeout: 15 } }
        : {}),
    };
  });
}

/**
 * One connection per host and access: a host's steps share it rather than each building its own
 * (a host name names one host within one access).
 */
const connections = new WeakMap<SshAccess, Map<string, pulumi.Output<command.types.input.remote.ConnectionArgs>>>();
function sharedConnection(hostName: string, target: pulumi.Input<Host>, access: SshAccess) {
  let byHost = connections.get(access);
  if (!byHost) connections.set(access, (byHost = new Map()));
  let connection = byHost.get(hostName);
  if (!connection) byHost.set(hostName, (connection = connectionFor(target, access)));
  return connection;
}

/** Declares one host step. `prefix` is the owning component's name. */
export function hostStep(prefix: string, args: HostStepArgs, access: SshAccess, opts: pulumi.CustomResourceOptions): command.remote.Command {
  const scriptText = readScript(args.script);
  const target = "host" in args.host ? args.host.host : args.host;
  const env = args.rerunOnNewMachine === false ? args.env
    : { ...args.env, MACHINE_ID: pulumi.output(target).apply((h) => h.machineId ?? "") };
  const keys = Object.keys(env).sort();
  const stdin = pulumi.all(keys.map((k) => pulumi.output(env[k]))).apply((values) =>
    envFile(Object.fromEntries(keys.map((k, i) => [k, values[i]]))));
  recordedSteps.push({ host: args.host.name, step: args.step, script: args.script, env, deleteScript: args.deleteScript });
  return new command.remote.Command(`${prefix}-${args.host.name}-${args.step}`, {
    connection: sharedConnection(args.host.name, target, access),
    // No `update`: on a change the provider runs `create` again, which is what a guarded script wants.
    create: wrapScript(scriptText),
    delete: args.deleteScript ? wrapScript(readScript(args.deleteScript)) : undefined,
    // The delete script needs its parameters again long after the create ran.
    addPreviousOutputInEnv: false,
    stdin,
    triggers: args.triggers,
    // A step given a credential may print one (kubeadm init prints the join command with the bootstrap
    // token): its output is not streamed to the logs. The others stream their progress.
    logging: stepLogging(stdin),
  }, {
    ...opts,
    // Kept in the state, so secret there: the program never reads them, and any tool a script calls may
    // print a credential (upstream's advice for such output: the `logging` input's description in
    // pulumi-command's provider/pkg/provider/remote/command.go).
    additionalSecretOutputs: [...(opts.additionalSecretOutputs ?? []), ...HOST_STEP_SECRET_OUTPUTS],
  });
}

/** The outputs of every host step kept only as secrets. */
export const HOST_STEP_SECRET_OUTPUTS = ["stdout", "stderr"];

/** `none` when the step's parameters hold a secret, else both streams. */
function stepLogging(stdin: pulumi.Output<string>): pulumi.Output<command.types.enums.remote.Logging> {
  const { None, StdoutAndStderr } = command.types.enums.remote.Logging;
  return pulumi.output(pulumi.isSecret(stdin)).apply((secret) => (secret ? None : StdoutAndStderr));
}
