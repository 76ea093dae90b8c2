/**
 * Registry mirrors as containerd reads them: the prepare step runs on a test host (tests/hosts/harness.ts, as the
 * host tests run it) with dare:mirrors, then containerd v2.3.6's own loader of registry hosts files
 * (core/remotes/docker/config.ConfigureHosts, the code the CRI plugin pulls through; tests/engine/containerd-hosts,
 * built by tools/engine/build.sh) resolves each registry from the config_path the step wrote into config.toml:
 * the mirror first, at its API root, trusted with the mirror CA and nothing else, the registry itself after it.
 */
import { spawnSync } from "child_process";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { HostMirrors } from "../../components/cluster";
import { engineDir } from "../../tools/engine/pulumi";
import { startHosts, stopHosts, TestHost } from "../hosts/harness";
import { program, runStep, sshKeyOf, Step } from "../hosts/program";
import { bootstrapStubs } from "../hosts/stubs";

jest.setTimeout(240_000);

const CLUSTER = "ch";
const checker = path.join(engineDir(), "bin", "containerd-hosts");

/** A CA, a certificate it signed for the mirror, and one another CA signed for the same name. */
function certificates(): { ca: string; leaf: string; stranger: string } {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "mirror-ca-"));
  const openssl = (args: string) => {
    const r = spawnSync("bash", ["-c", `openssl ${args}`], { cwd: dir, encoding: "utf8" });
    if (r.status !== 0) throw new Error(`openssl ${args}: ${r.stderr}`);
  };
  for (const ca of ["ca", "other-ca"]) {
    openssl(
      `req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -keyout ${ca}.key -out ${ca}.pem -days 1 -subj "/CN=${ca}" -addext basicConstraints=critical,CA:TRUE`,
    );
    openssl(
      `req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -keyout ${ca}-leaf.key -out ${ca}-leaf.csr -subj /CN=harbor.example.org`,
    );
    openssl(
      `x509 -req -in ${ca}-leaf.csr -CA ${ca}.pem -CAkey ${ca}.key -CAcreateserial -out ${ca}-leaf.pem -days 1 -extfile <(printf 'subjectAltName=DNS:harbor.example.org\\nbasicConstraints=CA:FALSE')`,
    );
  }
  const read = (f: string) => fs.readFileSync(path.join(dir, f), "utf8");
  const result = { ca: read("ca.pem"), leaf: read("ca-leaf.pem"), stranger: read("other-ca-leaf.pem") };
  fs.rmSync(dir, { recursive: true, force: true });
  return result;
}

const certs = certificates();
const MIRRORS: HostMirrors = {
  registries: {
    "docker.io": "https://harbor.example.org/v2/dockerhub-proxy",
    "registry.k8s.io": "https://harbor.example.org",
    "registry.example.org:5000": "http://10.213.0.250:5000",
  },
  apt: {},
  caCertificate: certs.ca,
};

let host: TestHost;
let steps: { plain: Step[]; mirrored: Step[] };

async function prepare(which: keyof typeof steps) {
  const result = await runStep(
    CLUSTER,
    [host],
    steps[which].find((s) => s.name === `k8s-${host.name}-prepare`)!,
  );
  if (result.code !== 0) throw new Error(`prepare failed with ${result.code}:\n${result.stdout}\n${result.stderr}`);
}

/** How containerd resolves `registry` on the host, from the config_path in its config.toml; `leaf`: a certificate to check against each host's CAs. */
async function resolve(registry: string, leaf?: "leaf" | "stranger") {
  const toml = await host.readFile("/etc/containerd/config.toml");
  const configPath = /^\[plugins\.'io\.containerd\.cri\.v1\.images'\.registry\]\n {2}config_path = '([^']+)'$/m.exec(toml)![1];
  const r = await host.exec(`containerd-hosts '${configPath}' '${registry}'${leaf ? ` /tmp/${leaf}.pem` : ""}`);
  if (r.code !== 0) throw new Error(`containerd-hosts ${registry}: ${r.stderr}`);
  return JSON.parse(r.stdout);
}

beforeAll(async () => {
  if (!fs.existsSync(checker))
    throw new Error(`no containerd-hosts at ${checker}: run tools/engine/build.sh first (npm run test:engine does)`);
  [host] = await startHosts(["ch-0"], { authorizedKey: sshKeyOf(CLUSTER).publicKeyOpenssh, stubs: bootstrapStubs(["ch-0"]) });
  // The checker runs inside the host (its hosts files name the CA by the host's paths).
  fs.copyFileSync(checker, path.join(host.root, "usr/local/bin/containerd-hosts"));
  fs.chmodSync(path.join(host.root, "usr/local/bin/containerd-hosts"), 0o755);
  await host.writeFile("/tmp/leaf.pem", certs.leaf);
  await host.writeFile("/tmp/stranger.pem", certs.stranger);
  const spec = [{ name: "ch-0", controlPlane: true }];
  steps = { plain: await program(CLUSTER, [host], spec), mirrored: await program(CLUSTER, [host], spec, "1.36.4", { mirrors: MIRRORS }) };
});
afterAll(async () => {
  if (host) await stopHosts([host]);
});

it("pulls a mirrored registry from its mirror first, at the mirror's API root, trusting the mirror CA there only", async () => {
  await prepare("mirrored");
  expect(await resolve("docker.io", "leaf")).toEqual([
    { scheme: "https", host: "harbor.example.org", path: "/v2/dockerhub-proxy", capabilities: ["pull", "resolve"], leafTrusted: true },
    // containerd's fallback, the registry itself (docker.io's API host), never trusts the mirror CA.
    { scheme: "https", host: "registry-1.docker.io", path: "/v2", capabilities: ["pull", "resolve", "push"], leafTrusted: false },
  ]);
  expect(await resolve("registry.k8s.io", "leaf")).toEqual([
    { scheme: "https", host: "harbor.example.org", path: "/v2", capabilities: ["pull", "resolve"], leafTrusted: true },
    { scheme: "https", host: "registry.k8s.io", path: "/v2", capabilities: ["pull", "resolve", "push"], leafTrusted: false },
  ]);
  // A certificate another CA signed for the mirror's name is refused.
  expect((await resolve("docker.io", "stranger"))[0].leafTrusted).toBe(false);
});

it("finds a registry with a port in its host:port directory, and a plain-http mirror", async () => {
  expect(await resolve("registry.example.org:5000")).toEqual([
    { scheme: "http", host: "10.213.0.250:5000", path: "/v2", capabilities: ["pull", "resolve"] },
    { scheme: "https", host: "registry.example.org:5000", path: "/v2", capabilities: ["pull", "resolve", "push"] },
  ]);
});

it("leaves registries without a mirror, and every registry once the mirrors are removed, to the registry itself", async () => {
  expect(await resolve("quay.io")).toEqual([{ scheme: "https", host: "quay.io", path: "/v2", capabilities: ["pull", "resolve", "push"] }]);
  await prepare("plain");
  expect(await resolve("docker.io")).toEqual([
    { scheme: "https", host: "registry-1.docker.io", path: "/v2", capabilities: ["pull", "resolve", "push"] },
  ]);
});
