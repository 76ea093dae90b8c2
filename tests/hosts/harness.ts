/**
 * Test hosts for host-level tests (bootstrap scripts over SSH, borg between
 * hosts): each host is a Linux network namespace (`dare-t-<run>-<name>`, the run's id first so that two
 * test runs on one machine never share one) joined by a
 * veth pair to a bridge in the root namespace, plus a mount + UTS namespace
 * whose root is a tmpfs holding the real /usr (read-only, with the host's
 * private /usr/local/bin on top) and the host's private /etc, /var, /root,
 * /home, /opt, /srv, /mnt, /tmp and /run, all backed by `host.root` on the
 * real file system. In it runs a real OpenSSH server (key-only auth).
 *
 * Needs root, iproute2 (`ip netns`), util-linux (unshare, nsenter,
 * pivot_root), openssh-server, openssh-client, sudo and passwd (useradd).
 * See tests/hosts/host-up.sh and host-down.sh for the shell side.
 */
import { spawn, spawnSync } from "child_process";
import * as crypto from "crypto";
import * as fs from "fs";
import * as net from "net";
import * as os from "os";
import * as path from "path";

export interface ExecResult {
  code: number;
  stdout: string;
  stderr: string;
}

export interface ExecOptions {
  /** Data written to the command's standard input (closed after). */
  stdin?: string | Buffer;
  /** Kill the command after this many ms (default 60 000). */
  timeoutMs?: number;
}

export interface HostStat {
  /** Permission bits, e.g. 0o600 (includes setuid/setgid/sticky bits). */
  mode: number;
  uid: number;
  gid: number;
  /** Owner and group names as the host's own /etc/passwd and /etc/group tell. */
  user: string;
  group: string;
  type: "file" | "directory" | "symlink" | "other";
  size: number;
}

export interface TestHost {
  /** `<run>-<name>`: its namespace is `dare-t-<id>`, its private tree and log under hostsBaseDir() are named so */
  id: string;
  name: string;
  /** IPv4 address on the test subnet (10.213.0.0/24), reachable from the test process and from every other host. */
  address: string;
  port: 22;
  /** Login user: 'root', or a dedicated user with passwordless sudo (default 'ubuntu'). */
  user: string;
  /** The host's private directory on the real fs: `path.join(root, 'etc/x')` is the host's /etc/x (same for var, root, home, opt, srv, mnt, tmp, run, usr/local/bin). */
  root: string;
  /** The host's SSH host public key line ("ssh-ed25519 AAAA... root@name"), e.g. for known_hosts. */
  hostPublicKey: string;
  /** Its veth's name in the root namespace (`dare-tv<slot>`, the slot being this run's). */
  veth: string;
  /** PID (in the machine's PID namespace) of the host's sshd: the anchor of its namespaces. */
  pid: number;
  /** Runs `/bin/sh -c cmd` as root inside the host's namespaces (nsenter), with a clean login-like environment. Never throws on a non-zero exit. */
  exec(cmd: string, opts?: ExecOptions): Promise<ExecResult>;
  /** Reads a file as the host sees it (follows the host's symlinks). Throws if it cannot be read. */
  readFile(p: string): Promise<string>;
  /** Writes a file as the host sees it (parent directories created), as root, then applies mode/owner if given. */
  writeFile(p: string, content: string | Buffer, opts?: { mode?: number; owner?: string }): Promise<void>;
  /** stat -L of a path as the host sees it. Throws if it does not exist. */
  stat(p: string): Promise<HostStat>;
}

export interface StartHostsOptions {
  /** OpenSSH public key line installed in the login user's ~/.ssh/authorized_keys. */
  authorizedKey: string;
  /** Binary name -> stand-in script content, installed as /usr/local/bin/<name> (mode 0755) in every host. */
  stubs?: Record<string, string>;
  /** Login user (default 'ubuntu', the deployer's default sshUser: a dedicated user with passwordless sudo, like a cloud image's default user; 'root' logs in as root). */
  user?: string;
  /** Bounded wait for each sshd to accept connections (default 20 000 ms). */
  readyTimeoutMs?: number;
}

export interface SshExecOptions {
  stdin?: string | Buffer;
  /**
   * Accept only this host key (`ssh-ed25519 AAAA…`) from `host`, as the program's connections do (the provider's
   * `hostKey`); unset: any key, for tests that only need a shell on their own hosts.
   */
  hostKey?: string;
  /** The same for the jump host `via`. */
  viaHostKey?: string;
  /** Jump host: the connection to `host` is tunnelled through this host's sshd (same key, unless viaPrivateKeyPem). */
  via?: TestHost;
  viaPrivateKeyPem?: string;
  /** Login user (default host.user). */
  user?: string;
  /** Kill ssh after this many ms (default 120 000). */
  timeoutMs?: number;
}

/** Where a stand-in made by recordingStub() logs its calls, inside each host. */
export const STUB_CALL_LOG = "/var/log/dare-stub-calls.log";

export const TEST_SUBNET_PREFIX = "10.213.0";
const PREFIX_LEN = 24;
const BRIDGE = "dare-tbr0";
const BRIDGE_ADDRESS = `${TEST_SUBNET_PREFIX}.1`;
const FIRST_SLOT = 10;
const LAST_SLOT = 250;
const STALE_SLOT_MS = 60_000;
const HOST_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
const HOST_UP = path.join(__dirname, "host-up.sh");
const HOST_DOWN = path.join(__dirname, "host-down.sh");

/** Base of the hosts' private trees (and of the harness's own state); override with DARE_TEST_HOSTS_DIR. */
export function hostsBaseDir(): string {
  return process.env.DARE_TEST_HOSTS_DIR || "/var/tmp/dare-test-hosts";
}

export class HostSupportError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "HostSupportError";
  }
}

const REQUIRED_BINARIES: Array<[string, string]> = [
  ["ip", "iproute2"],
  ["unshare", "util-linux"],
  ["nsenter", "util-linux"],
  ["pivot_root", "util-linux"],
  ["flock", "util-linux"],
  ["sshd", "openssh-server"],
  ["ssh", "openssh-client"],
  ["ssh-keygen", "openssh-client"],
  ["sudo", "sudo"],
  ["useradd", "passwd"],
];

function which(bin: string): string | undefined {
  const dirs = HOST_PATH.split(":"); // every program the harness runs gets this PATH
  for (const d of dirs) {
    const p = path.join(d, bin);
    try {
      fs.accessSync(p, fs.constants.X_OK);
      return p;
    } catch {
      /* next */
    }
  }
  return undefined;
}

/**
 * Throws a HostSupportError that says what is missing when this machine
 * cannot run test hosts (not root, no `ip netns`, missing programs). Tests
 * that need hosts should call startHosts (which calls this) and so fail,
 * not skip, where hosts cannot be made.
 */
export function checkHostSupport(): void {
  const problems: string[] = [];
  if (typeof process.getuid !== "function" || process.getuid() !== 0) {
    problems.push(`test hosts need root (network and mount namespaces); running as uid ${process.getuid?.() ?? "?"}`);
  }
  const missing = REQUIRED_BINARIES.filter(([b]) => !which(b));
  if (missing.length) {
    const pkgs = [...new Set(missing.map(([, p]) => p))].join(" ");
    problems.push(`missing programs: ${missing.map(([b]) => b).join(", ")} (apt-get install ${pkgs})`);
  }
  if (!missing.some(([b]) => b === "ip") && problems.length === 0) {
    const r = spawnSync("ip", ["netns", "list"], { encoding: "utf8", env: cleanEnv() });
    if (r.error || r.status !== 0) {
      problems.push(`'ip netns' is unavailable: ${(r.error?.message || r.stderr || "").trim()}`);
    }
  }
  if (problems.length) {
    throw new HostSupportError(`cannot start test hosts: ${problems.join("; ")}`);
  }
}

function cleanEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  return { PATH: HOST_PATH, LANG: "C.UTF-8", LC_ALL: "C.UTF-8", ...extra };
}

interface RunOptions {
  stdin?: string | Buffer;
  timeoutMs?: number;
  env?: NodeJS.ProcessEnv;
}

/** Runs a program (no shell), collecting output; never rejects for a non-zero exit. */
function run(cmd: string, args: string[], opts: RunOptions = {}): Promise<ExecResult & { stdoutBuf: Buffer }> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { env: opts.env ?? cleanEnv(), stdio: ["pipe", "pipe", "pipe"] });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      child.kill("SIGKILL");
    }, opts.timeoutMs ?? 60_000);
    child.stdout.on("data", (d: Buffer) => out.push(d));
    child.stderr.on("data", (d: Buffer) => err.push(d));
    child.on("error", (e) => {
      clearTimeout(timer);
      reject(e);
    });
    child.on("close", (code, signal) => {
      clearTimeout(timer);
      const stdoutBuf = Buffer.concat(out);
      let stderr = Buffer.concat(err).toString("utf8");
      if (timedOut) stderr += `\n[harness] ${cmd} killed after ${opts.timeoutMs ?? 60_000} ms`;
      resolve({
        code: code ?? (signal ? 128 + (os.constants.signals[signal] ?? 0) : -1),
        stdout: stdoutBuf.toString("utf8"),
        stdoutBuf,
        stderr,
      });
    });
    child.stdin.on("error", () => undefined); // EPIPE if the command does not read its input
    child.stdin.end(opts.stdin ?? "");
  });
}

function shQuote(s: string): string {
  return `'${s.replace(/'/g, `'\\''`)}'`;
}

// ------------------------------------------------------------------ slots

function slotDir(): string {
  return path.join(hostsBaseDir(), "slots");
}

function netnsExists(ns: string): boolean {
  return fs.existsSync(path.join("/run/netns", ns));
}

/** Takes a free address slot (a file created with O_EXCL, so concurrent runs never share one). */
function claimSlot(name: string): number {
  const dir = slotDir();
  fs.mkdirSync(dir, { recursive: true });
  for (let pass = 0; pass < 2; pass++) {
    for (let slot = FIRST_SLOT; slot <= LAST_SLOT; slot++) {
      const file = path.join(dir, String(slot));
      try {
        fs.writeFileSync(file, name, { flag: "wx" });
        return slot;
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== "EEXIST") throw e;
        if (pass === 1) {
          // Second pass: reclaim slots left by crashed runs (old, and their host's namespace is gone).
          try {
            const owner = fs.readFileSync(file, "utf8").trim();
            const age = Date.now() - fs.statSync(file).mtimeMs;
            if (age > STALE_SLOT_MS && !netnsExists(`dare-t-${owner}`)) {
              fs.rmSync(file, { force: true });
              fs.writeFileSync(file, name, { flag: "wx" });
              return slot;
            }
          } catch {
            /* raced with someone else: try the next slot */
          }
        }
      }
    }
  }
  throw new Error(`no free test-host address left in ${TEST_SUBNET_PREFIX}.${FIRST_SLOT}-${LAST_SLOT}`);
}

function releaseSlot(slot: number, name: string): void {
  const file = path.join(slotDir(), String(slot));
  try {
    if (fs.readFileSync(file, "utf8").trim() === name) fs.rmSync(file, { force: true });
  } catch {
    /* already gone */
  }
}

/** Frees slots still held by `name` (a crashed earlier run with the same host name). */
function releaseSlotsOf(name: string): void {
  let entries: string[] = [];
  try {
    entries = fs.readdirSync(slotDir());
  } catch {
    return;
  }
  for (const e of entries) {
    if (/^\d+$/.test(e)) releaseSlot(Number(e), name);
  }
}

/**
 * Whether a run still holds a slot: its host's namespace exists, or it took the slot under a minute ago (its
 * host is coming up). A crashed run's slots, older and without a namespace, do not keep the bridge.
 */
export function anySlotHeld(): boolean {
  try {
    return fs
      .readdirSync(slotDir())
      .filter((e) => /^\d+$/.test(e))
      .some((e) => {
        const file = path.join(slotDir(), e);
        try {
          const owner = fs.readFileSync(file, "utf8").trim();
          return netnsExists(`dare-t-${owner}`) || Date.now() - fs.statSync(file).mtimeMs <= STALE_SLOT_MS;
        } catch {
          return false; // released meanwhile
        }
      });
  } catch {
    return false;
  }
}

function vethName(slot: number): string {
  return `dare-tv${slot}`;
}

// ------------------------------------------------------------------ host lifecycle

async function hostDown(name: string, root: string, veth?: string): Promise<void> {
  const args = [HOST_DOWN, name, root];
  if (veth) args.push(veth);
  const r = await run("bash", args, { timeoutMs: 30_000 });
  if (r.code !== 0) throw new Error(`tearing down test host ${name} failed (exit ${r.code}): ${r.stderr.trim()}`);
}

function tail(file: string, lines = 30): string {
  try {
    return fs.readFileSync(file, "utf8").trimEnd().split("\n").slice(-lines).join("\n");
  } catch {
    return "(no log)";
  }
}

/** Resolves once a TCP connection to address:port receives an SSH banner; rejects with the reason otherwise. */
function probeSsh(address: string, port: number, timeoutMs: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const sock = net.connect({ host: address, port });
    let data = "";
    const done = (err?: Error) => {
      clearTimeout(timer);
      sock.destroy();
      if (err) reject(err);
      else resolve();
    };
    const timer = setTimeout(() => done(new Error("no SSH banner in time")), timeoutMs);
    sock.on("data", (d) => {
      data += d.toString("latin1");
      if (data.includes("\n")) done(data.startsWith("SSH-") ? undefined : new Error(`unexpected banner ${JSON.stringify(data)}`));
    });
    sock.on("error", (e) => done(e));
    sock.on("close", () => done(new Error("connection closed before banner")));
  });
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

const NAME_RE = /^[a-z][a-z0-9-]{0,30}$/;
/**
 * This test run's prefix of namespace, private-tree and slot names: two runs on one machine (a developer's
 * and CI's, or two tiers) may both start a host called cp-0 and must not tear down each other's.
 */
const RUN_ID = `r${process.pid.toString(36)}`;

class Host implements TestHost {
  readonly port = 22 as const;
  constructor(
    readonly name: string,
    /** the run-qualified name of its namespace (`dare-t-<id>`), private tree and slot */
    readonly id: string,
    readonly address: string,
    readonly user: string,
    readonly root: string,
    readonly hostPublicKey: string,
    readonly pid: number,
    readonly slot: number,
    readonly veth: string,
  ) {}

  async exec(cmd: string, opts: ExecOptions = {}): Promise<ExecResult> {
    const r = await run("nsenter", ["-t", String(this.pid), "-m", "-u", "-n", "-r", "-w", "--", "/bin/sh", "-c", cmd], {
      stdin: opts.stdin,
      timeoutMs: opts.timeoutMs,
      env: cleanEnv({ HOME: "/root", USER: "root", LOGNAME: "root", SHELL: "/bin/bash" }),
    });
    return { code: r.code, stdout: r.stdout, stderr: r.stderr };
  }

  async readFile(p: string): Promise<string> {
    const r = await this.exec(`cat -- ${shQuote(p)}`);
    if (r.code !== 0) throw new Error(`${this.name}: cannot read ${p}: ${r.stderr.trim()}`);
    return r.stdout;
  }

  async writeFile(p: string, content: string | Buffer, opts: { mode?: number; owner?: string } = {}): Promise<void> {
    const q = shQuote(p);
    let cmd = `mkdir -p -- "$(dirname -- ${q})" && cat > ${q}`;
    if (opts.mode !== undefined) cmd += ` && chmod ${opts.mode.toString(8)} -- ${q}`;
    if (opts.owner !== undefined) cmd += ` && chown ${shQuote(opts.owner)} -- ${q}`;
    const r = await this.exec(cmd, { stdin: content });
    if (r.code !== 0) throw new Error(`${this.name}: cannot write ${p}: ${r.stderr.trim()}`);
  }

  async stat(p: string): Promise<HostStat> {
    const r = await this.exec(`stat -L -c '%f|%u|%g|%U|%G|%s' -- ${shQuote(p)}`);
    if (r.code !== 0) throw new Error(`${this.name}: cannot stat ${p}: ${r.stderr.trim()}`);
    const [rawMode, uid, gid, user, group, size] = r.stdout.trim().split("|");
    const full = parseInt(rawMode, 16);
    const fmt = full & 0o170000;
    const type = fmt === 0o100000 ? "file" : fmt === 0o040000 ? "directory" : fmt === 0o120000 ? "symlink" : "other";
    return { mode: full & 0o7777, uid: Number(uid), gid: Number(gid), user, group, type, size: Number(size) };
  }
}

async function startOne(name: string, id: string, peers: string, slot: number, opts: StartHostsOptions, user: string): Promise<Host> {
  const base = hostsBaseDir();
  const root = path.join(base, id);
  const veth = vethName(slot);
  const address = `${TEST_SUBNET_PREFIX}.${slot}`;
  const logFile = path.join(base, `${id}.log`);

  // The private tree exists before the host does, with the caller's stand-ins in it.
  const bin = path.join(root, "usr/local/bin");
  fs.mkdirSync(bin, { recursive: true });
  for (const [stub, content] of Object.entries(opts.stubs ?? {})) {
    if (!/^[A-Za-z0-9._+-]+$/.test(stub)) throw new Error(`invalid stub name ${JSON.stringify(stub)}`);
    fs.writeFileSync(path.join(bin, stub), content, { mode: 0o755 });
    fs.chmodSync(path.join(bin, stub), 0o755);
  }

  const logFd = fs.openSync(logFile, "w");
  let exited: string | undefined;
  let child;
  try {
    child = spawn(
      "bash",
      [HOST_UP, name, address, String(PREFIX_LEN), veth, BRIDGE, BRIDGE_ADDRESS, root, user, peers, opts.authorizedKey.trim()],
      { detached: true, stdio: ["ignore", logFd, logFd], env: { ...cleanEnv(), DARE_TEST_HOST_ID: id } },
    );
  } finally {
    fs.closeSync(logFd);
  }
  const exitPromise = new Promise<void>((resolve) => {
    child.on("exit", (code, signal) => {
      exited = `exit ${code ?? signal}`;
      resolve();
    });
  });
  child.on("error", (e) => {
    exited = `spawn error ${e.message}`;
  });
  child.unref();
  const pid = child.pid;
  if (!pid) throw new Error(`test host ${name}: could not spawn host-up.sh`);

  // On failure, stop host-up.sh (still seeding, or already sshd: same pid, own process group)
  // before anyone tears the host down, so that nothing recreates what the teardown removes.
  const fail = async (message: string): Promise<never> => {
    if (!exited) {
      try {
        process.kill(-pid, "SIGKILL");
      } catch {
        /* already gone */
      }
      await Promise.race([exitPromise, sleep(5_000)]);
    }
    throw new Error(`${message}; log ${logFile}:\n${tail(logFile)}`);
  };
  const deadline = Date.now() + (opts.readyTimeoutMs ?? 20_000);
  let lastError = "not tried";
  for (;;) {
    if (exited) await fail(`test host ${name} (${address}) failed to start (${exited})`);
    try {
      await probeSsh(address, 22, 1_000);
      break;
    } catch (e) {
      lastError = (e as Error).message;
    }
    if (Date.now() > deadline) {
      await fail(
        `test host ${name}: sshd did not accept connections on ${address}:22 within ${opts.readyTimeoutMs ?? 20_000} ms ` +
          `(last error: ${lastError})`,
      );
    }
    await sleep(50);
  }
  const hostPublicKey = fs.readFileSync(path.join(root, "etc/ssh/ssh_host_ed25519_key.pub"), "utf8").trim();
  return new Host(name, id, address, user, root, hostPublicKey, pid, slot, veth);
}

/**
 * Starts one test host per name, in parallel, and resolves once every sshd
 * accepts connections. Stale state of the same names (a crashed earlier run)
 * is torn down first. On any failure, the hosts already made are torn down
 * and the error says which host failed and shows its log.
 */
export async function startHosts(names: string[], opts: StartHostsOptions): Promise<TestHost[]> {
  checkHostSupport();
  if (!opts.authorizedKey || !/^\S+ \S+/.test(opts.authorizedKey.trim())) {
    throw new Error('startHosts: authorizedKey must be an OpenSSH public key line ("ssh-ed25519 AAAA...")');
  }
  for (const n of names) {
    if (!NAME_RE.test(n))
      throw new Error(`startHosts: invalid host name ${JSON.stringify(n)} (use [a-z][a-z0-9-]*, at most 31 characters)`);
  }
  if (new Set(names).size !== names.length) throw new Error("startHosts: host names must be unique");
  const user = opts.user ?? "ubuntu";
  if (!/^[a-z_][a-z0-9_-]{0,31}$/.test(user)) throw new Error(`startHosts: invalid user ${JSON.stringify(user)}`);

  const base = hostsBaseDir();
  fs.mkdirSync(base, { recursive: true, mode: 0o755 });

  // Clean what a crashed earlier start of this run left under the same names.
  const ids = names.map((n) => `${RUN_ID}-${n}`);
  await Promise.all(ids.map((id) => hostDown(id, path.join(base, id))));
  ids.forEach(releaseSlotsOf);

  const slots: number[] = [];
  try {
    for (const id of ids) slots.push(claimSlot(id));
  } catch (e) {
    slots.forEach((s, i) => releaseSlot(s, ids[i]));
    throw e;
  }
  const peers = names.map((n, i) => `${n}=${TEST_SUBNET_PREFIX}.${slots[i]}`).join(" ");

  const results = await Promise.allSettled(names.map((n, i) => startOne(n, ids[i], peers, slots[i], opts, user)));
  const failed = results.filter((r): r is PromiseRejectedResult => r.status === "rejected");
  if (failed.length) {
    await Promise.allSettled(ids.map((id, i) => hostDown(id, path.join(base, id), vethName(slots[i]))));
    slots.forEach((s, i) => releaseSlot(s, ids[i]));
    await deleteBridgeIfUnused();
    throw new Error(failed.map((f) => (f.reason as Error).message ?? String(f.reason)).join("\n\n"));
  }
  return results.map((r) => (r as PromiseFulfilledResult<Host>).value);
}

async function deleteBridgeIfUnused(): Promise<void> {
  if (anySlotHeld()) return;
  await run("bash", [HOST_DOWN, "--bridge", BRIDGE, hostsBaseDir()], { timeoutMs: 10_000 });
}

/** Stops hosts made by startHosts: kills everything in their namespaces, deletes netns, veth, private trees, and the bridge once no host is left. */
export async function stopHosts(hosts: TestHost[]): Promise<void> {
  const errors: string[] = [];
  await Promise.all(
    hosts.map(async (h) => {
      const host = h as Host;
      try {
        await hostDown(host.id, host.root, host.veth);
      } catch (e) {
        errors.push((e as Error).message);
      }
      if (host.slot !== undefined) releaseSlot(host.slot, host.id);
      fs.rmSync(path.join(hostsBaseDir(), `${host.id}.log`), { force: true });
    }),
  );
  await deleteBridgeIfUnused();
  if (errors.length) throw new Error(errors.join("\n"));
}

/**
 * Tears down every test host on this machine (any dare-t-* namespace and every
 * private tree under hostsBaseDir()), e.g. before a CI run or after a run that
 * was killed. Not for use while other test files run hosts.
 */
export async function cleanupAllHosts(): Promise<void> {
  checkHostSupport();
  const base = hostsBaseDir();
  const names = new Set<string>();
  const ns = await run("ip", ["netns", "list"]);
  for (const line of ns.stdout.split("\n")) {
    const m = /^dare-t-(\S+)/.exec(line);
    if (m) names.add(m[1]);
  }
  try {
    for (const e of fs.readdirSync(base)) if (NAME_RE.test(e) && fs.statSync(path.join(base, e)).isDirectory()) names.add(e);
  } catch {
    /* no base dir */
  }
  await Promise.all([...names].map((n) => hostDown(n, path.join(base, n))));
  fs.rmSync(slotDir(), { recursive: true, force: true });
  for (const n of names) fs.rmSync(path.join(base, `${n}.log`), { force: true });
  await deleteBridgeIfUnused();
}

// ------------------------------------------------------------------ stand-ins

/**
 * Script content for a recording stand-in: appends one line
 * `[VAR=value ...] name arg1 arg2 ...` (args shell-quoted with printf %q only
 * where needed) to /var/log/dare-stub-calls.log inside the host, then runs
 * `behaviour` (a bash snippet; "$@" holds the arguments) or exits 0.
 */
export function recordingStub(name: string, behaviour?: string, opts: { env?: string[] } = {}): string {
  const envParts = (opts.env ?? [])
    .filter((v) => /^[A-Za-z_][A-Za-z0-9_]*$/.test(v))
    .map((v) => `if [ -n "\${${v}+x}" ]; then __line+="$(printf '%s=%q ' ${v} "\${${v}}")"; fi`)
    .join("\n");
  return `#!/bin/bash
# dare recording stand-in for ${name} (tests/hosts/harness.ts)
__line=''
${envParts}
__line+=${shQuote(name)}
for __a in "$@"; do __line+=" $(printf '%q' "$__a")"; done
printf '%s\\n' "$__line" >> ${STUB_CALL_LOG}
unset __line __a
${behaviour ?? "exit 0"}
`;
}

/** The lines recordingStub stand-ins logged on this host, in call order. */
export async function readStubCalls(host: TestHost): Promise<string[]> {
  const text = await host.readFile(STUB_CALL_LOG);
  return text.split("\n").filter((l) => l.length > 0);
}

// ------------------------------------------------------------------ host-to-host keys

/**
 * Gives `from` an SSH client key for `fromUser` (ed25519, made inside the host
 * if missing), authorizes it for `toUser` on `to`, and records `to`'s host key
 * in from's known_hosts under its name and address, so `ssh toUser@<to.name>`
 * (or borg over SSH) works from `from` without prompts. Returns the public key line.
 */
export async function installClientKey(from: TestHost, to: TestHost, opts: { fromUser?: string; toUser?: string } = {}): Promise<string> {
  const fromUser = opts.fromUser ?? "root";
  const toUser = opts.toUser ?? "root";
  const asUser = (cmd: string) => (fromUser === "root" ? cmd : `su -s /bin/sh ${shQuote(fromUser)} -c ${shQuote(cmd)}`);
  const gen = await from.exec(
    asUser(
      'set -e; umask 077; mkdir -p "$HOME/.ssh"; ' +
        '[ -f "$HOME/.ssh/id_ed25519" ] || ssh-keygen -q -t ed25519 -N "" -C "$(id -un)@$(hostname)" -f "$HOME/.ssh/id_ed25519"; ' +
        `printf '%s\\n' ${shQuote(`${to.name},${to.address} ${to.hostPublicKey}`)} >> "$HOME/.ssh/known_hosts"; ` +
        'cat "$HOME/.ssh/id_ed25519.pub"',
    ),
  );
  if (gen.code !== 0) throw new Error(`installClientKey: key for ${fromUser}@${from.name} failed: ${gen.stderr.trim()}`);
  const pub = gen.stdout.trim();
  const add = await to.exec(
    `set -e; home=$(getent passwd ${shQuote(toUser)} | cut -d: -f6); grp=$(id -gn ${shQuote(toUser)}); ` +
      "install -d -m 0700 -o " +
      shQuote(toUser) +
      ' -g "$grp" "$home/.ssh"; ' +
      `printf '%s\\n' ${shQuote(pub)} >> "$home/.ssh/authorized_keys"; ` +
      `chown ${shQuote(toUser)}:"$grp" "$home/.ssh/authorized_keys"; chmod 0600 "$home/.ssh/authorized_keys"`,
  );
  if (add.code !== 0) throw new Error(`installClientKey: authorizing on ${toUser}@${to.name} failed: ${add.stderr.trim()}`);
  return pub;
}

// ------------------------------------------------------------------ ssh client

function sshString(b: Buffer): Buffer {
  const len = Buffer.alloc(4);
  len.writeUInt32BE(b.length);
  return Buffer.concat([len, b]);
}

/**
 * Returns an OpenSSH-format private key ("BEGIN OPENSSH PRIVATE KEY", what
 * @pulumi/tls's privateKeyOpenssh gives). OpenSSH keys and PEM forms that
 * OpenSSH reads itself (RSA/ECDSA PKCS#1/SEC1/PKCS#8) come back unchanged; a
 * PKCS#8 "BEGIN PRIVATE KEY" ED25519 key, which OpenSSH 9.2 rejects
 * ("invalid format"), is converted.
 */
export function toOpenSshPrivateKey(pem: string): string {
  if (pem.includes("BEGIN OPENSSH PRIVATE KEY")) return pem.endsWith("\n") ? pem : pem + "\n";
  const key = crypto.createPrivateKey(pem);
  if (key.asymmetricKeyType !== "ed25519") return pem.endsWith("\n") ? pem : pem + "\n";
  const jwk = key.export({ format: "jwk" });
  const seed = Buffer.from(jwk.d as string, "base64url");
  const pub = Buffer.from(jwk.x as string, "base64url");
  const type = Buffer.from("ssh-ed25519");
  const pubBlob = Buffer.concat([sshString(type), sshString(pub)]);
  const check = crypto.randomBytes(4);
  let priv = Buffer.concat([
    check,
    check,
    sshString(type),
    sshString(pub),
    sshString(Buffer.concat([seed, pub])),
    sshString(Buffer.alloc(0)),
  ]);
  const pad: number[] = [];
  for (let i = 1; (priv.length + pad.length) % 8 !== 0; i++) pad.push(i);
  priv = Buffer.concat([priv, Buffer.from(pad)]);
  const count = Buffer.alloc(4);
  count.writeUInt32BE(1);
  const blob = Buffer.concat([
    Buffer.from("openssh-key-v1\0"),
    sshString(Buffer.from("none")),
    sshString(Buffer.from("none")),
    sshString(Buffer.alloc(0)),
    count,
    sshString(pubBlob),
    sshString(priv),
  ]);
  const b64 = blob
    .toString("base64")
    .match(/.{1,70}/g)!
    .join("\n");
  return `-----BEGIN OPENSSH PRIVATE KEY-----\n${b64}\n-----END OPENSSH PRIVATE KEY-----\n`;
}

const SSH_OPTS = [
  "-F",
  "/dev/null",
  "-o",
  "BatchMode=yes",
  "-o",
  "GlobalKnownHostsFile=/dev/null",
  "-o",
  "IdentitiesOnly=yes",
  "-o",
  "IdentityAgent=none",
  "-o",
  "ConnectTimeout=10",
  "-o",
  "LogLevel=ERROR",
];

/**
 * ssh options that accept any host key, or, with `hostKey`, only that key: a known_hosts file holding it
 * alone for `address` (`[address]:port` off port 22, sshd(8) "SSH_KNOWN_HOSTS FILE FORMAT"), strict checking,
 * and the key's own type as the only host-key algorithm, as the provider's `ssh.FixedHostKey` with
 * `HostKeyAlgorithms` set to the key's type does.
 */
function hostKeyOpts(dir: string, name: string, address: string, port: number, hostKey?: string): string[] {
  if (!hostKey) return ["-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null"];
  const file = path.join(dir, `known_hosts-${name}`);
  const [type, blob] = hostKey.trim().split(/\s+/);
  fs.writeFileSync(file, `${port === 22 ? address : `[${address}]:${port}`} ${type} ${blob}\n`);
  return ["-o", "StrictHostKeyChecking=yes", "-o", `UserKnownHostsFile=${file}`, "-o", `HostKeyAlgorithms=${type}`, "-o", "CheckHostIP=no"];
}

/**
 * Runs `command` on `host` with the system ssh client, as `opts.user` (default
 * host.user), authenticating with `privateKeyPem` (OpenSSH format, or PKCS#8
 * ED25519 which is converted). With `via`, the connection goes through that
 * host's sshd (ProxyCommand ssh -W, the same as ProxyJump but with the key
 * passed explicitly). Never throws for a non-zero exit; ssh's own failures
 * come back as code 255 with ssh's message in stderr.
 */
export async function sshExec(host: TestHost, privateKeyPem: string, command: string, opts: SshExecOptions = {}): Promise<ExecResult> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "dare-ssh-"));
  try {
    const keyFile = path.join(dir, "id");
    fs.writeFileSync(keyFile, toOpenSshPrivateKey(privateKeyPem), { mode: 0o600 });
    fs.chmodSync(keyFile, 0o600);
    const args = [...SSH_OPTS, ...hostKeyOpts(dir, "host", host.address, host.port, opts.hostKey), "-i", keyFile, "-p", String(host.port)];
    if (opts.via) {
      let viaKey = keyFile;
      if (opts.viaPrivateKeyPem) {
        viaKey = path.join(dir, "via");
        fs.writeFileSync(viaKey, toOpenSshPrivateKey(opts.viaPrivateKeyPem), { mode: 0o600 });
        fs.chmodSync(viaKey, 0o600);
      }
      const proxy = [
        "ssh",
        ...SSH_OPTS,
        ...hostKeyOpts(dir, "via", opts.via.address, opts.via.port, opts.viaHostKey),
        "-i",
        viaKey,
        "-p",
        String(opts.via.port),
        "-W",
        "%h:%p",
        `${opts.via.user}@${opts.via.address}`,
      ]
        .map((a) => (/^[A-Za-z0-9_./:%@=,-]+$/.test(a) ? a : shQuote(a)))
        .join(" ");
      args.push("-o", `ProxyCommand=${proxy}`);
    }
    args.push(`${opts.user ?? host.user}@${host.address}`, "--", command);
    const r = await run("ssh", args, {
      stdin: opts.stdin,
      timeoutMs: opts.timeoutMs ?? 120_000,
      env: cleanEnv({ HOME: process.env.HOME || "/root" }),
    });
    return { code: r.code, stdout: r.stdout, stderr: r.stderr };
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}
