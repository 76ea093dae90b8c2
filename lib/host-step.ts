/**
 * Host work as small scripts (kubeone's way): each step is a real `.sh` file under `lib/scripts/`
 * that takes its parameters from environment variables and is guarded so that a rerun is a no-op.
 *
 * On the wire a step is one `command.remote.Command` whose `bash -c` argument is the script text. Its
 * parameters are split by `pulumi.isSecret`, each on its own: the plain ones are `KEY='value'` assignments
 * at the head of that text (`create`, and `delete`), the secret ones arrive on stdin as `KEY='value'` lines
 * (a Pulumi secret then). So nothing depends on sshd's AcceptEnv; no secret is ever part of a command line
 * (plain parameters are: the host's process list shows them while the step runs); and a reviewer sees in
 * `pulumi preview --diff` and render-diff which step changes and which plain parameter made it, where one
 * secret stdin hid every parameter of a step that had a secret. A changed parameter is an update either
 * way (the provider runs `create` again), never a replacement. Every step is also handed to the program's
 * `StepRecorder`, where it has one (the offline render's), which writes `hosts/<host>/NN-<step>.sh` and `.env`
 * in the order steps are declared for each host.
 */
import * as fs from "fs";
import * as path from "path";
import * as command from "@pulumi/command";
import * as pulumi from "@pulumi/pulumi";
import { Host, SshEndpoint } from "./hosts";

export const SCRIPTS_DIR = path.join(__dirname, "scripts");

/** How SSH reaches hosts: the program's key, and the bastion for hosts marked `viaBastion`. */
export interface SshAccess {
  /** the key SSH logs in to every host with (secret) */
  privateKey: pulumi.Input<string>;
  /** the jump host: OpenStack's first control plane, or existing hosts' dare:bastion */
  bastion: pulumi.Input<SshEndpoint | undefined>;
  /** the key SSH logs in to the bastion with (secret); unset: `privateKey` */
  bastionPrivateKey?: pulumi.Input<string>;
  /** receives every step declared with this access (the offline render's); unset: steps are recorded nowhere */
  stepRecorder?: StepRecorder;
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
  /** file name under lib/scripts/, e.g. `prepare-host.sh` */
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

/** Receives each host step as it is declared: the offline render numbers a host's steps in that order. */
export interface StepRecorder {
  record(step: RecordedStep): void;
}

/** A StepRecorder that keeps the steps in a list, in declaration order (what the render reads). */
export class StepList implements StepRecorder {
  readonly steps: RecordedStep[] = [];
  record(step: RecordedStep): void {
    this.steps.push(step);
  }
}

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
  return Object.keys(env)
    .sort()
    .map((k) => `${k}=${shellQuote(env[k])}\n`)
    .join("");
}

const WRAPPED_PREFIX = "sudo -n bash -c ";
const PARAMETERS_START = "set -euo pipefail\nset -a\n";
const PARAMETERS_END = ". /dev/stdin\nset +a\n";

/**
 * The command SSH runs, as root, failing on the first error: the plain parameters (`KEY='value'` lines,
 * envFile), then the secret ones from stdin, all exported, then the script.
 */
export function wrapScript(scriptText: string, plainParameters = ""): string {
  return `${WRAPPED_PREFIX}${shellQuote(`${PARAMETERS_START}${plainParameters}${PARAMETERS_END}${scriptText}`)}`;
}

/**
 * The plain parameters (`KEY='value'` lines) at the head of a command wrapScript made: with the stdin
 * lines, what the script sees (for tests and tools that read a rendered step).
 */
export function plainParametersOf(wrapped: string): string {
  return unwrap(wrapped).parameters;
}

/** A wrapped command's plain parameter block and script text; undefined when it is not one wrapScript made. */
export function unwrapScript(wrapped: string): { parameters: string; script: string } | undefined {
  if (!wrapped.startsWith(WRAPPED_PREFIX)) return undefined;
  const text = wrapped.slice(WRAPPED_PREFIX.length + 1, -1).replace(/'\\''/g, "'");
  const end = text.indexOf(PARAMETERS_END);
  if (!text.startsWith(PARAMETERS_START) || end < 0) return undefined;
  return { parameters: text.slice(PARAMETERS_START.length, end), script: text.slice(end + PARAMETERS_END.length) };
}

function unwrap(wrapped: string): { parameters: string; script: string } {
  const parts = unwrapScript(wrapped);
  if (!parts) throw new Error(`not a wrapped host step: ${wrapped.slice(0, 40)}`);
  return parts;
}

/** `KEY='value'` lines (envFile's) back into their values. */
export function parseEnvFile(text: string): Record<string, string> {
  const values: Record<string, string> = {};
  for (const m of text.matchAll(/^([A-Za-z_][A-Za-z0-9_]*)='((?:[^']|'\\'')*)'\n/gm)) values[m[1]] = m[2].replace(/'\\''/g, "'");
  return values;
}

/**
 * Linux refuses a single argument longer than this (MAX_ARG_STRLEN, 32 pages of 4 KiB: include/uapi/linux/binfmts.h),
 * and the wrapped script is one (`bash -c`, and the login shell's `-c` before it).
 */
export const MAX_COMMAND_BYTES = 131072;

/** A step's wrapped script with its plain parameters; one too long to be a command-line argument is refused. */
export function stepCommand(resourceName: string, file: string, plainParameters: string): string {
  const text = wrapScript(readScript(file), plainParameters);
  const bytes = Buffer.byteLength(text);
  if (bytes > MAX_COMMAND_BYTES) {
    throw new Error(
      `host step ${resourceName}: ${file} with its plain parameters is ${bytes} bytes, more than a ` +
        `command-line argument may be (${MAX_COMMAND_BYTES}); pass the large parameter as a secret (stdin) instead`,
    );
  }
  return text;
}

/** A step's parameters split for the wire: plain ones in the command text, secret ones on stdin. */
export interface SplitParameters {
  /** `KEY='value'` lines of the parameters that are not Pulumi secrets (visible in previews and the host's process list) */
  plain: pulumi.Output<string>;
  /** `KEY='value'` lines of the secret ones; a Pulumi secret when there is any, "" otherwise */
  secret: pulumi.Output<string>;
}

/**
 * Splits parameters by whether each is a Pulumi secret. A secret value is only ever read into `secret`:
 * `plain` is built from the others and so is no secret itself.
 */
export function splitParameters(env: Record<string, pulumi.Input<string>>): SplitParameters {
  const keys = Object.keys(env).sort();
  const parts = keys.map((key) => {
    const value = pulumi.output(env[key]);
    const isSecret = pulumi.output(pulumi.isSecret(value));
    return {
      key,
      plain: isSecret.apply((secret) => (secret ? undefined : value)),
      secret: isSecret.apply((secret) => (secret ? value : undefined)),
    };
  });
  const lines = (side: "plain" | "secret") =>
    pulumi
      .all(parts.map((p) => p[side]))
      .apply((values) => envFile(Object.fromEntries(keys.flatMap((k, i) => (values[i] === undefined ? [] : [[k, values[i] as string]])))));
  return { plain: lines("plain"), secret: lines("secret") };
}

/**
 * The SSH connection to a host, pinned to its host key (and the bastion's to the bastion's key): with
 * `hostKey` the provider accepts that key only (@pulumi/command ≥ 1.1.0, pulumi/pulumi-command#794:
 * `ssh.FixedHostKey`, the host-key algorithm restricted to the key's type); without it, any key.
 * So whoever answers on a host's address without its private host key gets no secret parameter.
 */
export function connectionFor(target: pulumi.Input<Host>, access: SshAccess): pulumi.Output<command.types.input.remote.ConnectionArgs> {
  const bastionKey = pulumi.output(access.bastionPrivateKey ?? access.privateKey);
  return pulumi
    .all([pulumi.output(target), pulumi.output(access.bastion), pulumi.output(access.privateKey), bastionKey])
    .apply(([host, bastion, privateKey, bastionPrivateKey]) => {
      // A connection that would accept any key is a bug, not a configuration: refuse it here too.
      if (!host.hostKey) throw new Error(`host ${host.name}: no SSH host key to pin`);
      if (host.viaBastion && !bastion) throw new Error(`host ${host.name}: reached through a bastion, but there is none`);
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
          ? {
              proxy: {
                host: bastion.address,
                port: bastion.port,
                user: bastion.user,
                hostKey: bastion.hostKey,
                privateKey: bastionPrivateKey,
                dialErrorLimit: 30,
                perDialTimeout: 15,
              },
            }
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
export function hostStep(
  prefix: string,
  args: HostStepArgs,
  access: SshAccess,
  opts: pulumi.CustomResourceOptions,
): command.remote.Command {
  const target = "host" in args.host ? args.host.host : args.host;
  const env =
    args.rerunOnNewMachine === false ? args.env : { ...args.env, MACHINE_ID: pulumi.output(target).apply((h) => h.machineId ?? "") };
  const { plain, secret: stdin } = splitParameters(env);
  const resourceName = `${prefix}-${args.host.name}-${args.step}`;
  const wrapped = (file: string) => plain.apply((parameters) => stepCommand(resourceName, file, parameters));
  access.stepRecorder?.record({ host: args.host.name, step: args.step, script: args.script, env, deleteScript: args.deleteScript });
  return new command.remote.Command(
    resourceName,
    {
      connection: sharedConnection(args.host.name, target, access),
      // No `update`: on a change (of the script or a parameter, in `create` or on stdin) the provider runs
      // `create` again, which is what a guarded script wants.
      create: wrapped(args.script),
      // The stored command is what `pulumi destroy` runs, with the plain parameters of the last update.
      delete: args.deleteScript ? wrapped(args.deleteScript) : undefined,
      // The delete script needs its parameters again long after the create ran.
      addPreviousOutputInEnv: false,
      stdin,
      triggers: args.triggers,
      // A step given a credential may print one (kubeadm init prints the join command with the bootstrap
      // token): its output is not streamed to the logs. The others stream their progress.
      logging: stepLogging(stdin),
    },
    {
      ...opts,
      // Kept in the state, so secret there: the program never reads them, and any tool a script calls may
      // print a credential (upstream's advice for such output: the `logging` input's description in
      // pulumi-command's provider/pkg/provider/remote/command.go).
      additionalSecretOutputs: [...(opts.additionalSecretOutputs ?? []), ...HOST_STEP_SECRET_OUTPUTS],
    },
  );
}

/** The outputs of every host step kept only as secrets. */
export const HOST_STEP_SECRET_OUTPUTS = ["stdout", "stderr"];

/** `none` when the step's parameters hold a secret, else both streams. */
function stepLogging(stdin: pulumi.Output<string>): pulumi.Output<command.types.enums.remote.Logging> {
  const { None, StdoutAndStderr } = command.types.enums.remote.Logging;
  return pulumi.output(pulumi.isSecret(stdin)).apply((secret) => (secret ? None : StdoutAndStderr));
}
