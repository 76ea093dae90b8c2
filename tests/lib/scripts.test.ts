/**
 * Host scripts on their own: shellcheck over every script, and the upgrade step's refusals, run with
 * stand-ins for kubeadm and kubelet that report an installed version.
 */
import { spawnSync } from "child_process";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { SCRIPTS_DIR } from "../../lib/host-step";
import { kubeletServingRequest } from "../support/test-certificates";

const scripts = fs.readdirSync(SCRIPTS_DIR).filter((f) => f.endsWith(".sh"));

it("has host scripts", () => {
  expect(scripts).toEqual(expect.arrayContaining(["k8s-prepare.sh", "k8s-kubeadm.sh", "k8s-upgrade.sh"]));
});

it.each(scripts)("shellcheck passes on %s", (script) => {
  const result = spawnSync("shellcheck", ["--shell=bash", "--severity=style", path.join(SCRIPTS_DIR, script)], { encoding: "utf8" });
  if (result.error) throw result.error;
  expect(result.stdout + result.stderr).toBe("");
  expect(result.status).toBe(0);
});

describe("k8s-prepare.sh: apt keys checked against their published fingerprints (real gpg, real keys)", () => {
  const text = fs.readFileSync(path.join(SCRIPTS_DIR, "k8s-prepare.sh"), "utf8");
  // The script's own function, run alone with a curl that serves a file and counts its calls.
  const aptKey = /^apt_key\(\) \{[\s\S]*?^\}$/m.exec(text)![0];
  let dir: string;
  const fpr: Record<string, string> = {};
  const gpg = (args: string[]) => spawnSync("gpg", ["--batch", "--homedir", path.join(dir, "gnupg"), ...args], { encoding: "utf8" });

  beforeAll(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), "apt-key-"));
    fs.mkdirSync(path.join(dir, "gnupg"), { mode: 0o700 });
    for (const who of ["right", "wrong"]) {
      const made = gpg(["--passphrase", "", "--quick-gen-key", `${who} <${who}@example.org>`, "ed25519", "sign", "never"]);
      expect(made.status).toBe(0);
      fs.writeFileSync(path.join(dir, `${who}.key`), gpg(["--armor", "--export", `${who}@example.org`]).stdout);
      fpr[who] = /^fpr:+([0-9A-F]{40}):/m.exec(gpg(["--with-colons", "--list-keys", `${who}@example.org`]).stdout)![1];
    }
    // The right key with another appended: both would be trusted if the file were taken whole.
    fs.writeFileSync(
      path.join(dir, "both.key"),
      fs.readFileSync(path.join(dir, "right.key"), "utf8") + fs.readFileSync(path.join(dir, "wrong.key"), "utf8"),
    );
    fs.writeFileSync(path.join(dir, "garbage.key"), "<html>503 Service Unavailable</html>\n");
  });
  afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

  function run(served: string, keyring: string, caFile = "") {
    const script =
      `set -euo pipefail\ncurl() { echo "$*" >> "$DIR/curl-calls"; cat "$DIR/${served}"; }\n${aptKey}\n` +
      `apt_key "the Kubernetes apt key (pkgs.k8s.io)" https://pkgs.k8s.io/core:/stable:/v1.36/deb/Release.key "$EXPECTED" "$DIR/${keyring}" "${caFile}"\necho stored`;
    return spawnSync("bash", ["-c", script], {
      encoding: "utf8",
      env: { PATH: process.env.PATH, HOME: dir, DIR: dir, EXPECTED: fpr.right },
    });
  }
  const calls = () =>
    fs.existsSync(path.join(dir, "curl-calls")) ? fs.readFileSync(path.join(dir, "curl-calls"), "utf8").trim().split("\n") : [];

  it("pins the published fingerprints of pkgs.k8s.io's and Docker's keys and fetches both through the check", () => {
    expect(text).toMatch(/^KUBERNETES_KEY_FINGERPRINT=DE15B14486CD377B9E876E1A234654DA9A296436$/m);
    // From upstream, or from its mirror (dare:mirrors.apt) with the same fingerprint checked.
    expect(text).toMatch(/^KUBERNETES_APT_UPSTREAM=https:\/\/pkgs\.k8s\.io$/m);
    expect(text).toMatch(/^DOCKER_APT_UPSTREAM=https:\/\/download\.docker\.com\/linux\/ubuntu$/m);
    expect(text).toContain(
      'apt_key "the Kubernetes apt key (pkgs.k8s.io)" "${kubernetes_apt}/core:/stable:/v${minor}/deb/Release.key" \\\n' +
        '  "$KUBERNETES_KEY_FINGERPRINT" /etc/apt/keyrings/kubernetes-apt-keyring.gpg "$(mirror_ca "${KUBERNETES_APT_MIRROR:-}")"',
    );
    expect(text).toContain(
      'apt_key "Docker\'s apt key" "${docker_apt}/gpg" "$DOCKER_KEY_FINGERPRINT" /etc/apt/keyrings/docker.gpg "$(mirror_ca "${DOCKER_APT_MIRROR:-}")"',
    );
    // No other way to a keyring: every curl of a key goes through apt_key.
    expect(text.match(/\bcurl -/g)).toHaveLength(1);
  });

  it("stores the key with the published fingerprint, once", () => {
    const first = run("right.key", "ok.gpg");
    expect([first.status, first.stdout.trim(), first.stderr]).toEqual([0, "stored", ""]);
    const stored = gpg(["--show-keys", "--with-colons", path.join(dir, "ok.gpg")]);
    expect(/^fpr:+([0-9A-F]{40}):/m.exec(stored.stdout)![1]).toBe(fpr.right);
    expect(calls()).toHaveLength(1);
    expect(run("wrong.key", "ok.gpg").status).toBe(0); // a keyring in place is not fetched again
    expect(calls()).toHaveLength(1);
  });

  it("checks a mirror's certificate against the mirror CA alone (curl --cacert), and only when given one", () => {
    const before = calls().length;
    expect(run("right.key", "mirror.gpg", "/etc/dare/mirror-ca.pem").status).toBe(0);
    expect(run("right.key", "upstream.gpg").status).toBe(0);
    expect(calls().slice(before)).toEqual([
      "-fsSL --retry 5 --cacert /etc/dare/mirror-ca.pem https://pkgs.k8s.io/core:/stable:/v1.36/deb/Release.key",
      "-fsSL --retry 5 https://pkgs.k8s.io/core:/stable:/v1.36/deb/Release.key",
    ]);
  });

  it.each([
    ["another key", "wrong.key", () => fpr.wrong],
    ["the right key with another beside it", "both.key", () => `${fpr.right} ${fpr.wrong}`],
    ["a file that holds no key", "garbage.key", () => ""],
  ])("refuses %s, storing nothing", (_, served, found) => {
    const result = run(served, `${served}.gpg`);
    expect(result.status).toBe(1);
    expect(result.stdout).toBe("");
    expect(result.stderr).toBe(`refusing the Kubernetes apt key (pkgs.k8s.io): fingerprint '${found()}', expected ${fpr.right}\n`);
    expect(fs.existsSync(path.join(dir, `${served}.gpg`))).toBe(false);
  });
});

describe("k8s-prepare.sh: containerd", () => {
  // Behaviour on test hosts: tests/hosts/containerd.test.ts. Here, what the script pins and writes.
  const text = fs.readFileSync(path.join(SCRIPTS_DIR, "k8s-prepare.sh"), "utf8");
  const toml = /<<TOML\n([\s\S]*?)\nTOML\n/.exec(text)![1];

  it("pins containerd 2.x from Docker's signed repository and holds it", () => {
    expect(text).toMatch(/^CONTAINERD_VERSION=2\.\d+\.\d+$/m);
    expect(text).toMatch(/^DOCKER_KEY_FINGERPRINT=9DC858229FC7DD38854AE2D88D81803C0EBFCD88$/m);
    expect(text).toContain("signed-by=/etc/apt/keyrings/docker.gpg] ${docker_apt} ${codename} stable");
    expect(text).toContain('"containerd.io=${CONTAINERD_VERSION}-*"');
    expect(text).toContain("apt-mark hold containerd.io");
    // Ubuntu's containerd is no longer a prerequisite.
    expect(text).not.toMatch(/for pkg in [^;]*\bcontainerd\b/);
  });

  it("writes configuration version 3 with the CRI v1 plugins, systemd cgroups and the pause image", () => {
    expect(toml.split("\n")[0]).toBe("version = 3");
    expect(toml).toContain("[plugins.'io.containerd.cri.v1.images'.pinned_images]\n  sandbox = '${PAUSE_IMAGE}'");
    expect(toml).toContain("[plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes.runc.options]\n  SystemdCgroup = true");
    expect(toml).not.toMatch(/io\.containerd\.grpc\.v1\.cri|sandbox_image/);
  });

  it("reads registry hosts from /etc/containerd/certs.d, containerd 2.x's config_path (docs/hosts.md), mirrors or not", () => {
    expect(text).toMatch(/^REGISTRY_HOSTS_DIR=\/etc\/containerd\/certs\.d$/m);
    expect(toml).toContain("[plugins.'io.containerd.cri.v1.images'.registry]\n  config_path = '${REGISTRY_HOSTS_DIR}'");
    // The deprecated in-config mirrors are not used.
    expect(toml).not.toMatch(/registry\.(mirrors|configs)/);
  });
});

describe("k8s-upgrade.sh", () => {
  let dir: string;
  beforeEach(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), "dare-upgrade-"));
  });
  afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

  const listOf = (base: string, version: string) =>
    `deb [signed-by=/etc/apt/keyrings/kubernetes-apt-keyring.gpg] ${base}/core:/stable:/v${version.split(".").slice(0, 2).join(".")}/deb/ /\n`;
  const readList = () => fs.readFileSync(path.join(dir, "etc/apt/sources.list.d/kubernetes.list"), "utf8");

  /** Runs the script as installed at `installed`, with every other command a recorder; the prepare step's repository at `aptBase`. */
  function upgrade(installed: string, target: string, role = "first", node = "cp-0", aptBase = "https://pkgs.k8s.io") {
    const bin = path.join(dir, "bin");
    fs.mkdirSync(bin);
    const log = path.join(dir, "calls.log");
    const stub = (name: string, body = "") =>
      fs.writeFileSync(path.join(bin, name), `#!/bin/bash\necho "${name} $* KUBECONFIG=\${KUBECONFIG:-}" >> ${log}\n${body}\n`, {
        mode: 0o755,
      });
    stub("kubeadm", `[ "$1" = version ] && echo v${installed}; exit 0`);
    stub("kubelet", `echo "Kubernetes v${installed}"`);
    for (const name of ["apt-get", "apt-mark", "kubectl", "systemctl"]) stub(name);
    // The script's guard looks for kubelet.conf: point it at a directory of this test.
    const script = fs
      .readFileSync(path.join(SCRIPTS_DIR, "k8s-upgrade.sh"), "utf8")
      .replaceAll("/etc/kubernetes/", `${dir}/etc/kubernetes/`)
      .replaceAll("/etc/apt/", `${dir}/etc/apt/`);
    fs.mkdirSync(path.join(dir, "etc/kubernetes"), { recursive: true });
    fs.mkdirSync(path.join(dir, "etc/apt/sources.list.d"), { recursive: true });
    fs.writeFileSync(path.join(dir, "etc/kubernetes/kubelet.conf"), "");
    fs.writeFileSync(path.join(dir, "etc/apt/sources.list.d/kubernetes.list"), listOf(aptBase, installed));
    const result = spawnSync("bash", ["-c", script], {
      encoding: "utf8",
      env: { PATH: `${bin}:/usr/bin:/bin`, KUBERNETES_VERSION: target, NODE_NAME: node, UPGRADE_ROLE: role },
    });
    const calls = fs.existsSync(log) ? fs.readFileSync(log, "utf8") : "";
    return { status: result.status, stderr: result.stderr, calls };
  }

  it("refuses a downgrade with what to do instead", () => {
    const r = upgrade("1.36.4", "1.35.9");
    expect(r.status).not.toBe(0);
    expect(r.stderr).toMatch(
      /refusing to change cp-0 from v1.36.4 to v1.35.9: kubeadm cannot downgrade; set dare:kubernetesVersion back to 1.36.4/,
    );
    expect(r.calls).not.toMatch(/apt-get|kubeadm upgrade/);
  });

  it("refuses a jump of two minor versions", () => {
    const r = upgrade("1.35.2", "1.37.0");
    expect(r.status).not.toBe(0);
    expect(r.stderr).toMatch(/one minor version at a time; set dare:kubernetesVersion to 1.36.x first/);
    expect(r.calls).not.toMatch(/kubeadm upgrade/);
  });

  it("does nothing at the target version", () => {
    const r = upgrade("1.36.4", "1.36.4");
    expect(r.status).toBe(0);
    expect(r.calls).not.toMatch(/apt-get|upgrade|drain/);
  });

  it("upgrades the first control plane by one minor in kubeadm's order", () => {
    const r = upgrade("1.35.2", "1.36.4");
    expect(r.status).toBe(0);
    const order = [
      "apt-get update",
      "apt-get install -y -q --allow-change-held-packages kubeadm=1.36.4-*",
      "kubeadm upgrade apply -y v1.36.4",
      "kubectl drain cp-0",
      "kubelet=1.36.4-* kubectl=1.36.4-*",
      "systemctl restart kubelet",
      "kubectl uncordon cp-0",
    ];
    const positions = order.map((call) => r.calls.indexOf(call));
    expect(positions).not.toContain(-1);
    expect([...positions].sort((a, b) => a - b)).toEqual(positions);
  });

  it("moves the repository to the target minor where the prepare step put it: pkgs.k8s.io, or its mirror", () => {
    expect(upgrade("1.35.2", "1.36.4").status).toBe(0);
    expect(readList()).toBe(listOf("https://pkgs.k8s.io", "1.36.4"));
    fs.rmSync(dir, { recursive: true, force: true });
    fs.mkdirSync(dir);
    const mirror = "https://mirror.example.org/pkgs.k8s.io";
    expect(upgrade("1.35.2", "1.36.4", "first", "cp-0", mirror).status).toBe(0);
    expect(readList()).toBe(listOf(mirror, "1.36.4"));
  });

  it("runs `kubeadm upgrade node` on the other hosts", () => {
    const r = upgrade("1.36.1", "1.36.4", "control-plane");
    expect(r.status).toBe(0);
    expect(r.calls).toMatch(/kubeadm upgrade node/);
    expect(r.calls).not.toMatch(/upgrade apply/);
  });

  it("upgrades a worker without any admin credential: no kubectl call, the drain is the first control plane's", () => {
    const r = upgrade("1.36.1", "1.36.4", "worker", "w-0");
    expect({ status: r.status, refused: /refusing|unbound/.test(r.stderr) }).toEqual({ status: 0, refused: false });
    expect(r.calls).toMatch(/kubeadm upgrade node/);
    expect(r.calls).toMatch(/systemctl restart kubelet/);
    expect(r.calls).not.toMatch(/^kubectl /m);
    expect(r.calls).not.toMatch(/admin\.conf/);
  });
});

/** A kubectl stand-in over files in `dir`: Nodes' kubelet versions and annotations, CSRs; every call logged. */
function kubectlStub(dir: string, body: string): string {
  const bin = path.join(dir, "bin");
  fs.mkdirSync(bin, { recursive: true });
  fs.writeFileSync(path.join(bin, "kubectl"), `#!/bin/bash\nD=${dir}\necho "kubectl $*" >> $D/calls.log\n${body}\n`, { mode: 0o755 });
  return bin;
}
const runScript = (script: string, bin: string, env: Record<string, string>) =>
  spawnSync("bash", [path.join(SCRIPTS_DIR, script)], {
    encoding: "utf8",
    env: { PATH: `${bin}:/usr/bin:/bin`, ...env },
  });

describe("k8s-drain.sh: the first control plane drains and uncordons a worker around its upgrade", () => {
  let dir: string;
  let bin: string;
  beforeEach(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), "dare-drain-"));
    bin = kubectlStub(
      dir,
      `
case "$*" in
  "get node w-0 -o jsonpath={.status.nodeInfo.kubeletVersion}") [ -f $D/version ] || exit 1; cat $D/version ;;
  "get node w-0 -o jsonpath={.metadata.annotations.dare\\.io/upgrade-drain}") [ -f $D/version ] || exit 1; cat $D/mark 2>/dev/null || true ;;
  "annotate node w-0 --overwrite dare.io/upgrade-drain="*) echo -n "\${5#*=}" > $D/mark ;;
  "annotate node w-0 dare.io/upgrade-drain-") rm -f $D/mark ;;
esac`,
    );
  });
  afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));
  const calls = () => (fs.existsSync(path.join(dir, "calls.log")) ? fs.readFileSync(path.join(dir, "calls.log"), "utf8") : "");
  const run = (action: string) => runScript("k8s-drain.sh", bin, { DRAIN_ACTION: action, NODE_NAME: "w-0", KUBERNETES_VERSION: "1.37.0" });

  it("drains a worker whose kubelet is older, marking it; uncordons it afterwards and removes the mark", () => {
    fs.writeFileSync(path.join(dir, "version"), "v1.36.4");
    expect(run("drain").status).toBe(0);
    expect(calls()).toContain("kubectl drain w-0 --ignore-daemonsets --delete-emptydir-data --timeout=600s");
    expect(fs.readFileSync(path.join(dir, "mark"), "utf8")).toBe("v1.37.0");
    fs.writeFileSync(path.join(dir, "version"), "v1.37.0");
    const after = run("uncordon");
    expect(after.status).toBe(0);
    expect(calls()).toContain("kubectl uncordon w-0");
    expect(fs.existsSync(path.join(dir, "mark"))).toBe(false);
  });

  it("leaves a worker at the version alone, and never uncordons a node it did not drain", () => {
    fs.writeFileSync(path.join(dir, "version"), "v1.37.0");
    expect(run("drain").stdout).toContain("w-0: kubelet at v1.37.0: no drain");
    expect(run("uncordon").stdout).toContain("w-0: not drained for an upgrade: left as it is");
    expect(calls()).not.toMatch(/drain w-0|uncordon|annotate/);
  });

  it("does nothing for a node that has not joined", () => {
    expect(run("drain").status).toBe(0);
    expect(run("uncordon").status).toBe(0);
    expect(calls()).not.toMatch(/kubectl (drain|uncordon|annotate)/);
  });
});

describe("k8s-kubelet-serving.sh: approves only the node's own serving certificate requests", () => {
  let dir: string;
  let bin: string;
  beforeEach(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), "dare-csr-"));
    // The API server reaches the kubelet (nodes/proxy) once a request was approved; CSRs are files.
    bin = kubectlStub(
      dir,
      `
case "$*" in
  "get --raw /api/v1/nodes/w-1/proxy/healthz") [ -s $D/approved ] ;;
  "get csr -o jsonpath="*) cat $D/csrs 2>/dev/null || true ;;
  "get csr "*" -o jsonpath={.spec.request}") cat "$D/csr-$3" ;;
  "certificate approve "*) echo "$3" >> $D/approved ;;
  *) exit 1 ;;
esac`,
    );
  });
  afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

  /** A real PKCS#10 request made by openssl, as the kubelet makes it (EC P-256 key, O=system:nodes). */
  function request(name: string, cn: string, sans: string, signer = "kubernetes.io/kubelet-serving", user = cn, conditions = "") {
    fs.writeFileSync(path.join(dir, `csr-${name}`), kubeletServingRequest(cn, sans));
    fs.appendFileSync(path.join(dir, "csrs"), `${name} ${signer} ${user} ${conditions}\n`);
  }
  const approved = () =>
    fs.existsSync(path.join(dir, "approved")) ? fs.readFileSync(path.join(dir, "approved"), "utf8").trim().split("\n") : [];
  // The records of the nodes' addresses go to the test's directory, not to this machine's /etc.
  const run = (timeout = "6") =>
    runScript("k8s-kubelet-serving.sh", bin, {
      NODE_NAME: "w-1",
      NODE_ADDRESSES: "10.0.0.5 203.0.113.5",
      CSR_TIMEOUT: timeout,
      KUBELET_SERVING_RECORDS: path.join(dir, "records"),
    });

  it("approves the pending request of system:node:w-1 for its name and its addresses, and nothing else", () => {
    request("other-address", "system:node:w-1", "DNS:w-1,IP:10.0.0.5,IP:10.0.0.99");
    request("other-name", "system:node:w-1", "DNS:w-1,DNS:kubernetes.default,IP:10.0.0.5");
    request("other-node", "system:node:w-2", "DNS:w-1,IP:10.0.0.5");
    request("other-subject", "system:node:w-2", "DNS:w-1,IP:10.0.0.5", "kubernetes.io/kubelet-serving", "system:node:w-1");
    request("client-signer", "system:node:w-1", "DNS:w-1,IP:10.0.0.5", "kubernetes.io/kube-apiserver-client-kubelet");
    request("denied", "system:node:w-1", "DNS:w-1,IP:10.0.0.5", "kubernetes.io/kubelet-serving", "system:node:w-1", "Denied");
    request("good", "system:node:w-1", "DNS:w-1,IP:10.0.0.5,IP:203.0.113.5");
    const result = run();
    expect(result.stdout).toContain("w-1: kubelet serving certificate approved and served");
    expect(result.status).toBe(0);
    expect(approved()).toEqual(["good"]);
    expect(result.stderr).toMatch(/not approving other-address: address 10\.0\.0\.99 is not the host's/);
    expect(result.stderr).toMatch(/not approving other-name: DNS:kubernetes\.default is not the node's name/);
    expect(result.stderr).toMatch(/not approving other-subject: subject 'CN=system:node:w-2,O=system:nodes'/);
  });

  it("fails, naming what to look at, when no acceptable request comes", () => {
    request("other-address", "system:node:w-1", "DNS:w-1,IP:192.0.2.1");
    const result = run("1");
    expect(result.status).not.toBe(0);
    expect(approved()).toEqual([]);
    expect(result.stderr).toMatch(/w-1: no kubelet serving certificate within 1s \(approved 0 request\(s\)\); look at 'kubectl get csr'/);
  });

  it("does nothing when the API server already reaches the kubelet through its verified certificate", () => {
    fs.writeFileSync(path.join(dir, "approved"), "earlier\n");
    request("good", "system:node:w-1", "DNS:w-1,IP:10.0.0.5");
    const result = run();
    expect(result.status).toBe(0);
    expect(result.stdout).toContain("nothing to do");
    expect(approved()).toEqual(["earlier"]);
    // Even so it records the node's addresses, which the renewals are checked against.
    expect(fs.readFileSync(path.join(dir, "records", "w-1"), "utf8")).toBe("10.0.0.5 203.0.113.5\n");
  });
});
