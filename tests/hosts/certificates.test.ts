/**
 * The certificate lifecycle on a real OpenSSH test host (tests/hosts/harness.ts): the program's own
 * `certificates` and `kubelet-serving` steps for a one-control-plane cluster, sent as the provider sends
 * them, then the units they install run as systemd would run them (systemctl is a recording stand-in),
 * with the recording kubeadm and kubectl of tests/hosts/stubs.ts: the daily check exports the expiry
 * textfile and does nothing more while nothing is due; within the window it renews and restarts the static
 * pods one at a time the way kubeadm's docs say; a restart that fails is resumed by the next run; the hourly
 * approver approves a renewed kubelet serving request of a known node and refuses the rest.
 */
import { spawnSync } from "child_process";
import { readScript } from "../../lib/host-step";
import { NODE_EXPORTER_TEXTFILE_DIR } from "../../components/cluster/certificate-renewal";
import { ExecResult, readStubCalls, startHosts, stopHosts, STUB_CALL_LOG, TestHost } from "./harness";
import { bootstrapStubs, KUBEADM_CERTIFICATES, STUB_CERTS, STUB_STATE as STATE } from "./stubs";
import { program, runStep, sshKeyOf, Step } from "./program";
import { kubeletServingRequest } from "../support/test-certificates";

jest.setTimeout(240_000);

const CLUSTER = "ct";
const CP = "ct-0";
const TEXTFILE = `${NODE_EXPORTER_TEXTFILE_DIR}/dare_kubeadm_certificates.prom`;
const COMPONENTS = ["kube-apiserver", "kube-controller-manager", "kube-scheduler", "etcd"];

let hosts: TestHost[] = [];
let cp: TestHost;
let steps: Step[];
const step = (name: string) => steps.find((s) => s.name === `k8s-${name}`)!;

async function ok(result: Promise<ExecResult>): Promise<ExecResult> {
  const r = await result;
  if (r.code !== 0) throw new Error(`exit ${r.code}:\n${r.stdout}\n${r.stderr}`);
  return r;
}

/** Runs an installed unit's ExecStart with its Environment/EnvironmentFile, as systemd would. */
async function runUnit(unit: string, extraEnv: string[] = []): Promise<ExecResult> {
  const text = await cp.readFile(`/etc/systemd/system/${unit}.service`);
  const envFiles = [...text.matchAll(/^EnvironmentFile=(.+)$/gm)].map((m) => `. ${m[1]}`);
  const env = [...text.matchAll(/^Environment=(.+)$/gm)].map((m) => m[1]);
  const execStart = /^ExecStart=(.+)$/m.exec(text)![1];
  return cp.exec(["set -a", ...envFiles, ...env, ...extraEnv, "set +a", execStart].join("; "), { timeoutMs: 120_000 });
}

/** The textfile's samples: metric{labels} -> value. */
async function textfile(): Promise<Map<string, number>> {
  const lines = (await cp.readFile(TEXTFILE)).split("\n").filter((l) => l && !l.startsWith("#"));
  return new Map(lines.map((l) => [l.slice(0, l.lastIndexOf(" ")), Number(l.slice(l.lastIndexOf(" ") + 1))]));
}

/** kubeadm's certificates as the stand-in reports them, with `apiserver` expiring in `days` days. */
async function certificatesExpiring(days: number): Promise<void> {
  const date = (d: number) => new Date(Date.now() + d * 86400_000).toISOString().replace(/\.\d+Z$/, "Z");
  const lines = KUBEADM_CERTIFICATES.map((n) => `certificate ${n} ${date(n === "apiserver" ? days : 300)} false false`);
  await cp.writeFile(STUB_CERTS, [...lines, `authority ca ${date(3000)} false false`, ""].join("\n"));
}

const manifests = async () => (await cp.exec("ls /etc/kubernetes/manifests")).stdout.trim().split("\n");

beforeAll(async () => {
  hosts = await startHosts([CP], { authorizedKey: sshKeyOf(CLUSTER).publicKeyOpenssh, stubs: bootstrapStubs([CP]) });
  cp = hosts[0];
  steps = await program(CLUSTER, hosts, [{ name: CP, controlPlane: true }]);
  for (const c of COMPONENTS) await cp.writeFile(`/etc/kubernetes/manifests/${c}.yaml`, `# ${c} static pod\n`);
});
afterAll(async () => {
  await stopHosts(hosts);
});

test("the certificates step installs the daily check and the approver, exports the expiry at once, and a rerun changes nothing", async () => {
  const first = await ok(runStep(CLUSTER, hosts, step(`${CP}-certificates`)));
  expect(first.stdout).toContain("certs-setup: wrote /usr/local/bin/dare-kubeadm-certs");
  expect(first.stdout).toContain("no certificate expires within 90 days: nothing to renew");
  // What runs on the host is the program's own script; the timer at the first control plane's hour.
  expect(await cp.readFile("/usr/local/bin/dare-kubeadm-certs")).toBe(readScript("k8s-certs-renew.sh"));
  expect(await cp.readFile("/usr/local/bin/dare-kubelet-serving")).toBe(readScript("k8s-kubelet-serving.sh"));
  expect(await cp.readFile("/etc/systemd/system/dare-kubeadm-certs.timer")).toMatch(/^OnCalendar=\*-\*-\* 04:00:00$/m);
  expect(await cp.readFile("/etc/dare/kubeadm-certs.env")).toBe(
    `NODE_NAME='${CP}'\nRENEW_WITHIN_DAYS='90'\nTEXTFILE_DIR='${NODE_EXPORTER_TEXTFILE_DIR}'\n`,
  );
  const calls = await readStubCalls(cp);
  expect(calls).toEqual(
    expect.arrayContaining([
      "systemctl daemon-reload",
      "systemctl enable --now dare-kubeadm-certs.timer",
      "systemctl enable --now dare-kubelet-serving.timer",
    ]),
  );
  // kubeadm asked for its structured output, and never to renew.
  expect(calls.filter((c) => /\bkubeadm certs /.test(c))).toEqual([
    expect.stringMatching(
      /^KUBECONFIG=\/etc\/kubernetes\/admin\.conf kubeadm certs check-expiration -o jsonpath=.*\.certificates\\\[.*\.certificateAuthorities\\\[/,
    ),
  ]);

  // node-exporter (uid 65534) can read the textfile; one sample per certificate and CA, and the check's time.
  expect((await cp.stat(TEXTFILE)).mode & 0o777).toBe(0o644);
  expect((await cp.stat(NODE_EXPORTER_TEXTFILE_DIR)).mode & 0o777).toBe(0o755);
  const samples = await textfile();
  const apiserver = samples.get(
    `dare_kubeadm_certificate_expiry_timestamp_seconds{node="${CP}",certificate="apiserver",authority="false"}`,
  )!;
  expect(Math.abs(apiserver - (Date.now() / 1000 + 365 * 86400))).toBeLessThan(600);
  expect(samples.get(`dare_kubeadm_certificate_expiry_timestamp_seconds{node="${CP}",certificate="ca",authority="true"}`)).toBeGreaterThan(
    apiserver,
  );
  expect(samples.size).toBe(KUBEADM_CERTIFICATES.length + 3 + 1);
  // The format node-exporter's textfile collector reads (promtool is the Prometheus parser).
  const lint = spawnSync("promtool", ["check", "metrics"], { input: await cp.readFile(TEXTFILE), encoding: "utf8" });
  expect({ status: lint.status, output: lint.stdout + lint.stderr }).toEqual({ status: 0, output: "" });

  await cp.exec(`rm -f ${STUB_CALL_LOG}`);
  const again = await ok(runStep(CLUSTER, hosts, step(`${CP}-certificates`)));
  expect(again.stdout).not.toContain("wrote");
  expect((await readStubCalls(cp)).filter((c) => /daemon-reload|kubeadm certs renew/.test(c))).toEqual([]);
});

test("the daily check renews nothing and restarts nothing while no certificate is within the window", async () => {
  await certificatesExpiring(91);
  await cp.exec(`rm -f ${STUB_CALL_LOG}`);
  const run = await ok(runUnit("dare-kubeadm-certs"));
  expect(run.stdout).toContain("nothing to renew");
  expect((await readStubCalls(cp)).filter((c) => /\bkubeadm certs /.test(c))).toHaveLength(1);
  expect(await manifests()).toEqual(COMPONENTS.map((c) => `${c}.yaml`).sort());
});

test("within the window it renews all, restarts the static pods one at a time, and exports the new dates", async () => {
  await certificatesExpiring(89);
  await cp.exec(`rm -f ${STUB_CALL_LOG}`);
  const run = await ok(runUnit("dare-kubeadm-certs", ["FILE_CHECK_SECONDS=1"]));
  expect(run.stdout).toContain("expiring within 90 days: apiserver ; renewing all");
  const calls = (await readStubCalls(cp)).filter((c) => /\bkubeadm certs renew|\bkubectl -n kube-system get pod/.test(c));
  expect(calls[0]).toMatch(/kubeadm certs renew all$/);
  // Each component's mirror pod is read before its manifest leaves and until it is back, in this order.
  const order = calls.slice(1).map((c) => /get pod (\S+)-ct-0 /.exec(c)![1]);
  expect([...new Set(order)]).toEqual(COMPONENTS);
  for (const c of COMPONENTS) expect(run.stdout).toContain(`${c} restarted with the renewed certificates`);
  expect(await manifests()).toEqual(COMPONENTS.map((c) => `${c}.yaml`).sort());
  const apiserver = (await textfile()).get(
    `dare_kubeadm_certificate_expiry_timestamp_seconds{node="${CP}",certificate="apiserver",authority="false"}`,
  )!;
  expect(apiserver).toBeGreaterThan(Date.now() / 1000 + 364 * 86400);
  // Renewed: the next day's run has nothing to do.
  await cp.exec(`rm -f ${STUB_CALL_LOG}`);
  expect((await ok(runUnit("dare-kubeadm-certs"))).stdout).toContain("nothing to renew");
  expect((await readStubCalls(cp)).filter((c) => /\bkubeadm certs renew/.test(c))).toEqual([]);
});

test("a component that does not come back fails the run (no new check time), and the next run restarts what is left", async () => {
  await certificatesExpiring(30);
  const before = (await textfile()).get(`dare_kubeadm_certificate_check_timestamp_seconds{node="${CP}"}`);
  await cp.exec(`touch ${STATE}/unready-kube-scheduler`);
  const failed = await runUnit("dare-kubeadm-certs", ["FILE_CHECK_SECONDS=1", "RESTART_TIMEOUT=3"]);
  expect(failed.code).not.toBe(0);
  expect(failed.stderr).toContain("kube-scheduler is not Ready again within 3s");
  expect(await cp.readFile("/var/lib/dare/kubeadm-certs/restart-pending")).toBe("kube-scheduler\netcd\n");
  expect((await textfile()).get(`dare_kubeadm_certificate_check_timestamp_seconds{node="${CP}"}`)).toBe(before);
  // The manifest went back even so: the kubelet runs the pod.
  expect(await manifests()).toEqual(COMPONENTS.map((c) => `${c}.yaml`).sort());

  await cp.exec(`rm -f ${STATE}/unready-kube-scheduler ${STUB_CALL_LOG}`);
  const resumed = await ok(runUnit("dare-kubeadm-certs", ["FILE_CHECK_SECONDS=1"]));
  expect(resumed.stdout).toContain("restarting what an earlier renewal left: kube-scheduler etcd");
  expect(resumed.stdout).toContain("nothing to renew");
  expect((await readStubCalls(cp)).filter((c) => /\bkubeadm certs renew/.test(c))).toEqual([]);
  expect((await cp.exec("test -e /var/lib/dare/kubeadm-certs/restart-pending || echo gone")).stdout.trim()).toBe("gone");
  expect((await textfile()).get(`dare_kubeadm_certificate_check_timestamp_seconds{node="${CP}"}`)).toBeGreaterThan(before!);
});

describe("renewed kubelet serving certificates", () => {
  /** A real PKCS#10 request as a kubelet makes it, added to the stand-in's pending requests. */
  async function request(name: string, cn: string, sans: string, user = cn, signer = "kubernetes.io/kubelet-serving") {
    await cp.writeFile(`${STATE}/csr-${name}`, kubeletServingRequest(cn, sans));
    await ok(cp.exec(`echo '${name} ${signer} ${user} ' >> ${STATE}/csrs`));
  }

  test("the join-time step records the node's addresses; the hourly approver approves its renewal and refuses the rest", async () => {
    await ok(runStep(CLUSTER, hosts, step(`${CP}-kubelet-serving-${CP}`)));
    expect((await cp.readFile(`/etc/dare/kubelet-serving/nodes/${CP}`)).trim()).toBe(cp.address);
    await cp.exec(`rm -f ${STATE}/csrs ${STATE}/approved`);
    await request("renewal", `system:node:${CP}`, `DNS:${CP},IP:${cp.address}`);
    await request("foreign-address", `system:node:${CP}`, `DNS:${CP},IP:192.0.2.7`);
    await request("unknown-node", "system:node:intruder", "DNS:intruder,IP:192.0.2.8");
    await request("not-a-node", "system:node:ct-0", `DNS:${CP},IP:${cp.address}`, "mallory");
    await request(
      "client",
      `system:node:${CP}`,
      `DNS:${CP},IP:${cp.address}`,
      `system:node:${CP}`,
      "kubernetes.io/kube-apiserver-client-kubelet",
    );
    const run = await ok(runUnit("dare-kubelet-serving"));
    expect((await cp.readFile(`${STATE}/approved`)).trim().split("\n")).toEqual(["renewal"]);
    expect(run.stdout).toContain("renewals: approved 1 kubelet serving certificate request(s)");
    expect(run.stderr).toContain("not approving foreign-address: address 192.0.2.7 is not the host's");
    expect(run.stderr).toContain(
      "not approving unknown-node: requested by 'system:node:intruder', not a node this cluster's program joined",
    );
    expect(run.stderr).toContain("not approving not-a-node: requested by 'mallory'");
  });

  test("a node that no longer exists gets nothing; a host that left is forgotten", async () => {
    await cp.exec(`rm -f ${STATE}/csrs ${STATE}/approved; touch ${STATE}/deleted-node-${CP}`);
    await request("renewal-2", `system:node:${CP}`, `DNS:${CP},IP:${cp.address}`);
    const run = await ok(runUnit("dare-kubelet-serving"));
    expect(run.stderr).toContain(`not approving renewal-2: node ${CP} does not exist`);
    expect((await cp.exec(`cat ${STATE}/approved 2>/dev/null || true`)).stdout).toBe("");
    await cp.exec(`rm -f ${STATE}/deleted-node-${CP}`);
    await ok(runStep(CLUSTER, hosts, step(`${CP}-kubelet-serving-${CP}`), "delete"));
    expect((await cp.exec(`test -e /etc/dare/kubelet-serving/nodes/${CP} || echo gone`)).stdout.trim()).toBe("gone");
    const after = await ok(runUnit("dare-kubelet-serving"));
    expect(after.stderr).toContain("not approving renewal-2: requested by 'system:node:ct-0', not a node this cluster's program joined");
  });
});
