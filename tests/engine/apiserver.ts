/**
 * A real Kubernetes API server for the engine tier: etcd and kube-apiserver as tools/engine/build.sh builds
 * them from Go modules (the pinned Kubernetes and the etcd kubeadm deploys with it), on 127.0.0.1 only.
 *
 *   let server: ApiServer;
 *   beforeAll(async () => { server = await startApiServer(); });
 *   afterAll(() => server?.stop());
 *
 * Each server gets a throwaway PKI made with openssl in its own temporary folder (a CA, a serving
 * certificate for 127.0.0.1, a service-account key pair, an admin client certificate in system:masters),
 * etcd on free loopback ports with its data in that folder, and kube-apiserver with Node,RBAC authorization,
 * the ServiceAccount flags and the default admission plugins (Pod Security among them), on a free port.
 * No controller manager or scheduler runs: objects are stored and admitted, nothing reconciles them (no
 * namespace gets its `default` ServiceAccount by itself, no Pod is scheduled).
 *
 * stop() ends both processes and removes the folder. When Node exits without it, an `exit` hook kills the
 * processes and removes the folder; where util-linux's setpriv exists the processes also get SIGKILL when
 * the process that started them dies (PR_SET_PDEATHSIG), so even a killed test run leaves none behind.
 */
import { ChildProcess, execFileSync, spawn } from "child_process";
import * as fs from "fs";
import * as https from "https";
import * as net from "net";
import * as os from "os";
import * as path from "path";
import { engineDir } from "../../tools/engine/pulumi";
import { leafCertificate, testCa } from "../support/test-certificates";

export interface ApiResponse {
  status: number;
  /** The parsed JSON body, or the raw text when the body is not JSON. */
  json: any;
  /** The server's `Warning` headers' texts (Pod Security's "would violate" among them). */
  warnings: string[];
}

export interface ApiServer {
  /** https://127.0.0.1:<port> */
  url: string;
  /** etcd's client URL (plain HTTP on loopback), to read what the API server stored */
  etcdUrl: string;
  /** The CA that signed the serving and client certificates (PEM file). */
  caFile: string;
  /** The admin client certificate (O=system:masters) and its key (PEM files). */
  certFile: string;
  keyFile: string;
  /** A kubeconfig with the admin credentials embedded; context `dare-test`. */
  kubeconfigPath: string;
  /** The server's gitVersion from /version, e.g. v1.36.4. */
  version: string;
  /**
   * A request as the admin; body is sent as JSON, with `contentType` as its media type (default
   * application/json; server-side apply takes application/apply-patch+yaml, of which JSON is a subset).
   * Never throws on an HTTP error status.
   */
  request(method: string, path: string, body?: unknown, contentType?: string): Promise<ApiResponse>;
  /** Stops kube-apiserver and etcd and removes the temporary folder. Safe to call twice. */
  stop(): Promise<void>;
}

export interface StartOptions {
  /** How long to wait for /readyz (default 120 s: the first start on 2 cores takes some 10–20 s). */
  readyTimeoutMs?: number;
  /** Extra kube-apiserver flags (`--name=value`). */
  extraArgs?: string[];
}

/** Where build.sh assembles the two binaries. */
export function apiServerBinaries(): { kubeApiServer: string; etcd: string } {
  const bin = path.join(engineDir(), "bin");
  return { kubeApiServer: path.join(bin, "kube-apiserver"), etcd: path.join(bin, "etcd") };
}

// Every process started here that is still running, and every folder not yet removed: killed and removed
// when Node exits without stop() having been called.
const running = new Set<ChildProcess>();
const folders = new Set<string>();
let exitHook = false;
function onExit(): void {
  if (exitHook) return;
  exitHook = true;
  process.on("exit", () => {
    for (const c of running) {
      try {
        c.kill("SIGKILL");
      } catch {
        /* already gone */
      }
    }
    for (const dir of folders) fs.rmSync(dir, { recursive: true, force: true });
  });
}
function track(child: ChildProcess): void {
  onExit();
  running.add(child);
  child.once("exit", () => running.delete(child));
}

let setprivPath: string | null | undefined;
/** util-linux's setpriv, when it is there: it makes the child die with the process that started it. */
function setpriv(): string | null {
  if (setprivPath === undefined) {
    setprivPath = ["/usr/bin/setpriv", "/bin/setpriv"].find((p) => fs.existsSync(p)) ?? null;
  }
  return setprivPath;
}

/** Starts a command with its output to a log file; tracked for the exit hook. */
function start(command: string, args: string[], log: string): ChildProcess {
  const fd = fs.openSync(log, "a");
  const sp = setpriv();
  const child = sp
    ? spawn(sp, ["--pdeathsig", "KILL", "--", command, ...args], { stdio: ["ignore", fd, fd] })
    : spawn(command, args, { stdio: ["ignore", fd, fd] });
  fs.closeSync(fd);
  track(child);
  return child;
}

/** Sends SIGTERM, then SIGKILL after graceMs; resolves when the process has exited. */
function terminate(child: ChildProcess, graceMs = 10_000): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    const timer = setTimeout(() => child.kill("SIGKILL"), graceMs);
    child.once("exit", () => {
      clearTimeout(timer);
      resolve();
    });
    child.kill("SIGTERM");
  });
}

/** A free TCP port on 127.0.0.1 (free when asked; the OS hands out ports in turn, so reuse is unlikely). */
function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.unref();
    server.on("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const { port } = server.address() as net.AddressInfo;
      server.close(() => resolve(port));
    });
  });
}

function openssl(dir: string, args: string[]): void {
  execFileSync("openssl", args, { cwd: dir, stdio: ["ignore", "ignore", "pipe"] });
}

/** The throwaway PKI: CA, serving certificate, service-account key pair, admin client certificate. */
function makePki(dir: string): void {
  testCa(dir, "dare-test-kubernetes-ca");
  leafCertificate(dir, "apiserver", "/CN=kube-apiserver", {
    usage: "serverAuth",
    // 10.96.0.1: the `kubernetes` Service's address in --service-cluster-ip-range.
    sans: "IP:127.0.0.1,IP:10.96.0.1,DNS:localhost,DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc,DNS:kubernetes.default.svc.cluster.local",
  });
  leafCertificate(dir, "admin", "/O=system:masters/CN=dare-test-admin", { usage: "clientAuth" });
  openssl(dir, ["genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256", "-out", "sa.key"]);
  openssl(dir, ["pkey", "-in", "sa.key", "-pubout", "-out", "sa.pub"]);
}

function kubeconfig(url: string, dir: string): string {
  const b64 = (file: string) => fs.readFileSync(path.join(dir, file)).toString("base64");
  return [
    "apiVersion: v1",
    "kind: Config",
    "clusters:",
    "- name: dare-test",
    "  cluster:",
    `    server: ${url}`,
    `    certificate-authority-data: ${b64("ca.crt")}`,
    "users:",
    "- name: dare-test-admin",
    "  user:",
    `    client-certificate-data: ${b64("admin.crt")}`,
    `    client-key-data: ${b64("admin.key")}`,
    "contexts:",
    "- name: dare-test",
    "  context:",
    "    cluster: dare-test",
    "    user: dare-test-admin",
    "current-context: dare-test",
    "",
  ].join("\n");
}

function tail(file: string, lines = 40): string {
  try {
    return fs.readFileSync(file, "utf8").trimEnd().split("\n").slice(-lines).join("\n");
  } catch {
    return "(no log)";
  }
}

function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Starts etcd and kube-apiserver and resolves once /readyz answers ok. */
export async function startApiServer(options: StartOptions = {}): Promise<ApiServer> {
  const { kubeApiServer, etcd } = apiServerBinaries();
  for (const bin of [kubeApiServer, etcd]) {
    if (!fs.existsSync(bin))
      throw new Error(`no ${path.basename(bin)} at ${bin}: run tools/engine/build.sh first (npm run test:engine does)`);
  }
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "dare-apiserver-"));
  onExit();
  folders.add(dir);
  const children: ChildProcess[] = [];
  let stopped: Promise<void> | undefined;
  const stop = (): Promise<void> => {
    stopped ??= (async () => {
      // The API server first: it holds etcd connections and would log errors for an etcd gone away.
      for (const child of [...children].reverse()) await terminate(child);
      fs.rmSync(dir, { recursive: true, force: true });
      folders.delete(dir);
    })();
    return stopped;
  };
  try {
    makePki(dir);
    const file = (name: string) => path.join(dir, name);
    const [etcdClient, etcdPeer, securePort] = [await freePort(), await freePort(), await freePort()];
    const etcdUrl = `http://127.0.0.1:${etcdClient}`;
    const peerUrl = `http://127.0.0.1:${etcdPeer}`;
    // etcd on loopback in plain HTTP: only this API server talks to it.
    const etcdProc = start(
      etcd,
      [
        "--name=default",
        `--data-dir=${file("etcd")}`,
        `--listen-client-urls=${etcdUrl}`,
        `--advertise-client-urls=${etcdUrl}`,
        `--listen-peer-urls=${peerUrl}`,
        `--initial-advertise-peer-urls=${peerUrl}`,
        `--initial-cluster=default=${peerUrl}`,
        "--initial-cluster-state=new",
        // A test's data need not survive a power cut.
        "--unsafe-no-fsync",
        "--log-level=warn",
      ],
      file("etcd.log"),
    );
    children.push(etcdProc);
    const url = `https://127.0.0.1:${securePort}`;
    const apiProc = start(
      kubeApiServer,
      [
        `--etcd-servers=${etcdUrl}`,
        "--bind-address=127.0.0.1",
        "--advertise-address=127.0.0.1",
        `--secure-port=${securePort}`,
        `--cert-dir=${file("apiserver-certs")}`,
        `--tls-cert-file=${file("apiserver.crt")}`,
        `--tls-private-key-file=${file("apiserver.key")}`,
        `--client-ca-file=${file("ca.crt")}`,
        "--authorization-mode=Node,RBAC",
        "--service-account-issuer=https://kubernetes.default.svc.cluster.local",
        `--service-account-key-file=${file("sa.pub")}`,
        `--service-account-signing-key-file=${file("sa.key")}`,
        "--service-cluster-ip-range=10.96.0.0/12",
        // As kubeadm sets it: privileged Pods are then refused by admission (Pod Security), not by the API server.
        "--allow-privileged=true",
        // 127.0.0.1 is no valid Endpoints address: the `kubernetes` Service's endpoints are not maintained.
        "--endpoint-reconciler-type=none",
        ...(options.extraArgs ?? []),
      ],
      file("kube-apiserver.log"),
    );
    children.push(apiProc);

    const ca = fs.readFileSync(file("ca.crt"));
    const cert = fs.readFileSync(file("admin.crt"));
    const key = fs.readFileSync(file("admin.key"));
    const agent = new https.Agent({ ca, cert, key, keepAlive: false });
    const request = (method: string, p: string, body?: unknown, contentType = "application/json"): Promise<ApiResponse> =>
      new Promise((resolve, reject) => {
        const data = body === undefined ? undefined : Buffer.from(typeof body === "string" ? body : JSON.stringify(body));
        const req = https.request(
          `${url}${p}`,
          {
            method,
            agent,
            headers: { accept: "application/json", ...(data ? { "content-type": contentType, "content-length": data.length } : {}) },
            timeout: 60_000,
          },
          (res) => {
            const chunks: Buffer[] = [];
            res.on("data", (c: Buffer) => chunks.push(c));
            res.on("end", () => {
              const text = Buffer.concat(chunks).toString("utf8");
              let json: unknown = text;
              try {
                json = JSON.parse(text);
              } catch {
                /* not JSON: keep the text */
              }
              // A Warning header is `299 - "text"` (RFC 7234); several come as one array.
              const header = res.headers.warning as string | string[] | undefined;
              const warnings = (Array.isArray(header) ? header : header ? header.split(/,(?=\s*299 )/) : []).map((w) =>
                w
                  .trim()
                  .replace(/^299 - "(.*)"$/s, "$1")
                  .replace(/\\(.)/g, "$1"),
              );
              resolve({ status: res.statusCode ?? 0, json, warnings });
            });
            res.on("error", reject);
          },
        );
        req.on("timeout", () => req.destroy(new Error(`${method} ${p}: timed out`)));
        req.on("error", reject);
        req.end(data);
      });

    const deadline = Date.now() + (options.readyTimeoutMs ?? 120_000);
    let last = "no answer";
    for (;;) {
      for (const [name, child, log] of [
        ["etcd", etcdProc, "etcd.log"],
        ["kube-apiserver", apiProc, "kube-apiserver.log"],
      ] as const) {
        if (child.exitCode !== null || child.signalCode !== null) {
          throw new Error(`${name} exited (${child.exitCode ?? child.signalCode}) before the API server was ready:\n${tail(file(log))}`);
        }
      }
      try {
        const ready = await request("GET", "/readyz");
        if (ready.status === 200) break;
        last = `/readyz ${ready.status}: ${typeof ready.json === "string" ? ready.json : JSON.stringify(ready.json)}`;
      } catch (e) {
        last = (e as Error).message;
      }
      if (Date.now() > deadline) {
        throw new Error(
          `kube-apiserver not ready after ${options.readyTimeoutMs ?? 120_000} ms (${last}):\n${tail(file("kube-apiserver.log"))}`,
        );
      }
      await delay(250);
    }
    const versionInfo = await request("GET", "/version");
    const kubeconfigPath = file("kubeconfig");
    fs.writeFileSync(kubeconfigPath, kubeconfig(url, dir), { mode: 0o600 });
    return {
      url,
      etcdUrl,
      caFile: file("ca.crt"),
      certFile: file("admin.crt"),
      keyFile: file("admin.key"),
      kubeconfigPath,
      version: String(versionInfo.json?.gitVersion ?? ""),
      request,
      stop,
    };
  } catch (e) {
    await stop();
    throw e;
  }
}

/** Polls until check() returns a value other than undefined (the API server's eventual states: Established, served). */
export async function waitFor<T>(what: string, check: () => Promise<T | undefined>, timeoutMs = 60_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await check();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}
