/**
 * Throwaway database servers for the restore tests: Debian's PostgreSQL and MariaDB, each in its own
 * temporary folder, on a free loopback port and a socket in that folder, run as the packages' system users
 * (postgres, mysql). stop() ends the server and removes the folder; an `exit` hook kills what is left, and
 * util-linux's setpriv makes the server die with the test process (PR_SET_PDEATHSIG).
 */
import { ChildProcess, execFileSync, spawn, spawnSync } from "child_process";
import * as fs from "fs";
import * as net from "net";
import * as os from "os";
import * as path from "path";

const running = new Set<ChildProcess>();
const folders = new Set<string>();
let hooked = false;
function cleanupOnExit(): void {
  if (hooked) return;
  hooked = true;
  process.on("exit", () => {
    for (const c of running) {
      try {
        c.kill("SIGKILL");
      } catch {
        /* gone */
      }
    }
    for (const d of folders) fs.rmSync(d, { recursive: true, force: true });
  });
}

export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.unref();
    s.on("error", reject);
    s.listen(0, "127.0.0.1", () => {
      const { port } = s.address() as net.AddressInfo;
      s.close(() => resolve(port));
    });
  });
}

/** A temporary folder owned by a system user (the servers refuse to run as root). */
function folderFor(user: string, prefix: string): string {
  cleanupOnExit();
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), prefix));
  folders.add(dir);
  execFileSync("chown", [`${user}:${user}`, dir]);
  return dir;
}

/** Starts a server (as `user` when given: setpriv execs, so signals reach the server itself). */
function startLogged(command: string, args: string[], log: string, user?: string): ChildProcess {
  const fd = fs.openSync(log, "a");
  const identity = user ? [`--reuid=${user}`, `--regid=${user}`, "--init-groups"] : [];
  const child = spawn("setpriv", [...identity, "--pdeathsig", "KILL", "--", command, ...args], { stdio: ["ignore", fd, fd] });
  fs.closeSync(fd);
  running.add(child);
  child.once("exit", () => running.delete(child));
  return child;
}

function stopChild(child: ChildProcess, signal: NodeJS.Signals): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    const t = setTimeout(() => child.kill("SIGKILL"), 15_000);
    child.once("exit", () => {
      clearTimeout(t);
      resolve();
    });
    child.kill(signal);
  });
}

async function waitUntil(what: string, child: ChildProcess, log: string, ready: () => boolean, timeoutMs = 60_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!ready()) {
    if (child.exitCode !== null || child.signalCode !== null || Date.now() > deadline) {
      throw new Error(`${what} did not start:\n${fs.existsSync(log) ? fs.readFileSync(log, "utf8").slice(-3000) : "(no log)"}`);
    }
    await new Promise((r) => setTimeout(r, 100));
  }
}

function run(command: string, args: string[], options: { env?: Record<string, string>; input?: string } = {}): string {
  const r = spawnSync(command, args, {
    encoding: "utf8",
    input: options.input,
    env: { PATH: "/usr/sbin:/usr/bin:/sbin:/bin", ...options.env },
  });
  if (r.status !== 0) throw new Error(`${command} ${args.join(" ")} failed (${r.status}):\n${r.stderr}${r.stdout}`);
  return r.stdout;
}

export interface Postgres {
  /** The server's binaries (initdb, postgres, psql, pg_dump, pg_restore), first on PATH for the scripts. */
  bin: string;
  version: string;
  port: number;
  /** The folder of its Unix socket: PGHOST for local connections, as `kubectl exec` into the pod has them. */
  socketDir: string;
  /** psql as `user` over the socket (trust), -At output. */
  psql(sql: string, database?: string, user?: string): string;
  stop(): Promise<void>;
}

/** Debian's newest installed PostgreSQL server binaries. */
export function postgresBin(): string {
  const root = "/usr/lib/postgresql";
  const versions = fs.existsSync(root) ? fs.readdirSync(root).filter((v) => fs.existsSync(path.join(root, v, "bin", "postgres"))) : [];
  if (versions.length === 0) throw new Error("no PostgreSQL server under /usr/lib/postgresql: apt-get install postgresql (.ci/run does)");
  return path.join(root, versions.sort((a, b) => Number(b) - Number(a))[0], "bin");
}

/** A PostgreSQL server: socket with trust for local users, TCP on 127.0.0.1 with passwords (scram-sha-256). */
export async function startPostgres(): Promise<Postgres> {
  const bin = postgresBin();
  const dir = folderFor("postgres", "dare-pg-");
  const data = path.join(dir, "data");
  const log = path.join(dir, "postgres.log");
  const as = (args: string[]) => ["-u", "postgres", "--", ...args];
  run(
    "runuser",
    as([
      path.join(bin, "initdb"),
      "--no-sync",
      "-D",
      data,
      "-U",
      "postgres",
      "-E",
      "UTF8",
      "--locale=C.UTF-8",
      "--auth-local=trust",
      "--auth-host=scram-sha-256",
    ]),
  );
  const port = await freePort();
  const child = startLogged(
    path.join(bin, "postgres"),
    ["-D", data, "-p", String(port), "-k", dir, "-c", "listen_addresses=127.0.0.1", "-c", "fsync=off", "-c", "logging_collector=off"],
    log,
    "postgres",
  );
  const isReady = () => spawnSync(path.join(bin, "pg_isready"), ["-q", "-h", dir, "-p", String(port)]).status === 0;
  try {
    await waitUntil("postgres", child, log, isReady);
  } catch (e) {
    await stopChild(child, "SIGKILL");
    fs.rmSync(dir, { recursive: true, force: true });
    folders.delete(dir);
    throw e;
  }
  const psql = (sql: string, database = "postgres", user = "postgres") =>
    run(
      path.join(bin, "psql"),
      ["-X", "-v", "ON_ERROR_STOP=1", "-At", "-h", dir, "-p", String(port), "-U", user, "-d", database, "-f", "-"],
      { input: sql },
    );
  const version = run(path.join(bin, "postgres"), ["--version"]).trim();
  let stopped: Promise<void> | undefined;
  return {
    bin,
    version,
    port,
    socketDir: dir,
    psql,
    stop: () =>
      (stopped ??= (async () => {
        await stopChild(child, "SIGINT");
        fs.rmSync(dir, { recursive: true, force: true });
        folders.delete(dir);
      })()),
  };
}

export interface MariaDb {
  version: string;
  port: number;
  socket: string;
  /** The mysql client as root over the socket with the root password, batch output without column names. */
  sql(statements: string, password?: string): string;
  stop(): Promise<void>;
}

/**
 * A MariaDB server whose root@localhost has `rootPassword` (as the mysql image sets MYSQL_ROOT_PASSWORD),
 * and, with remoteRoot, root@'%' with the same password (the image's default, what the dump job logs in as).
 */
export async function startMariaDb(rootPassword: string, remoteRoot: boolean): Promise<MariaDb> {
  const dir = folderFor("mysql", "dare-mariadb-");
  const data = path.join(dir, "data");
  const socket = path.join(dir, "mysqld.sock");
  const log = path.join(dir, "mariadbd.log");
  run("mariadb-install-db", [
    "--no-defaults",
    `--datadir=${data}`,
    "--user=mysql",
    "--auth-root-authentication-method=normal",
    "--skip-test-db",
    "--skip-name-resolve",
  ]);
  const port = await freePort();
  const child = startLogged(
    "mariadbd",
    [
      "--no-defaults",
      `--datadir=${data}`,
      "--user=mysql",
      `--socket=${socket}`,
      `--port=${port}`,
      "--bind-address=127.0.0.1",
      `--pid-file=${path.join(dir, "mariadbd.pid")}`,
      `--log-error=${log}`,
      "--skip-name-resolve",
      "--innodb-flush-log-at-trx-commit=0",
      "--innodb-buffer-pool-size=32M",
    ],
    log,
  );
  const client = (statements: string, password?: string) =>
    run("mariadb", ["--no-defaults", "-uroot", `--socket=${socket}`, "-N", "-B"], {
      input: statements,
      env: password === undefined ? {} : { MYSQL_PWD: password },
    });
  const isReady = () =>
    spawnSync("mariadb-admin", ["--no-defaults", "-uroot", `--socket=${socket}`, "ping"], { stdio: "ignore" }).status === 0;
  try {
    await waitUntil("mariadbd", child, log, isReady);
    const quoted = `'${rootPassword.replace(/\\/g, "\\\\").replace(/'/g, "''")}'`;
    client(
      [
        // mariadb-install-db's other root and anonymous accounts would match a TCP login before root@'%'.
        `DROP USER IF EXISTS root@'127.0.0.1', root@'::1', root@'${os.hostname()}', ''@'localhost', ''@'${os.hostname()}';`,
        `ALTER USER root@localhost IDENTIFIED BY ${quoted};`,
        ...(remoteRoot ? [`CREATE USER root@'%' IDENTIFIED BY ${quoted};`, "GRANT ALL ON *.* TO root@'%' WITH GRANT OPTION;"] : []),
      ].join("\n"),
    );
  } catch (e) {
    await stopChild(child, "SIGKILL");
    fs.rmSync(dir, { recursive: true, force: true });
    folders.delete(dir);
    throw e;
  }
  const version = run("mariadbd", ["--version"]).trim();
  let stopped: Promise<void> | undefined;
  return {
    version,
    port,
    socket,
    sql: (statements, password = rootPassword) => client(statements, password),
    stop: () =>
      (stopped ??= (async () => {
        await stopChild(child, "SIGTERM");
        fs.rmSync(dir, { recursive: true, force: true });
        folders.delete(dir);
      })()),
  };
}
