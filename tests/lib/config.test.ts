import * as fs from "fs";
import * as path from "path";
import * as YAML from "yaml";
import { ConfigError, ConfigSource, EXAMPLE_HOST_KEY, loadConfig, Problem } from "../../lib/config";
import { CONFIG_KEYS, KeyDeclaration } from "../../lib/config-keys";
import { opensshPublicKey } from "../../lib/ssh-key";
import { REQUIRED_IMAGES } from "../../components/dare-services/workloads";
import { SITE_CONFIG } from "../support/site";
import { spawnSync } from "child_process";
import * as os from "os";

const ROOT = path.resolve(__dirname, "..", "..");

/** A config source from plain values, as `pulumi config set` would store them. */
function source(values: Record<string, unknown>, stack = "test"): ConfigSource {
  return {
    stack,
    get: (key) => {
      const v = values[key];
      return v === undefined ? undefined : typeof v === "string" ? v : JSON.stringify(v);
    },
  };
}

const valid = { domain: "dare.example.org", adminCidrs: ["192.0.2.0/24"], ...SITE_CONFIG };

function problemsOf(values: Record<string, unknown>): Problem[] {
  try {
    loadConfig(source({ ...valid, ...values }));
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigError);
    return (err as ConfigError).problems;
  }
  throw new Error("expected the configuration to be refused");
}

function expectProblem(values: Record<string, unknown>, key: string, why: RegExp): void {
  const problems = problemsOf(values);
  const match = problems.find((p) => p.key === key);
  expect(match).toBeDefined();
  expect(match!.why).toMatch(why);
  expect(match!.example.length).toBeGreaterThan(0);
}

const pool = (over: Record<string, unknown> = {}) => ({
  name: "workers",
  count: 2,
  flavor: "m1.large",
  disks: { count: 1, sizeGb: 50 },
  ...over,
});
const host = (over: Record<string, unknown> = {}) => ({
  name: "cp-0",
  role: "control-plane",
  address: "203.0.113.10",
  privateAddress: "10.0.0.10",
  user: "ubuntu",
  port: 22,
  disks: [],
  hostKey: EXAMPLE_HOST_KEY,
  ...over,
});

describe("stack files", () => {
  it.each(["testbed", "production"])("%s loads with the project defaults", (stack) => {
    const project = YAML.parse(fs.readFileSync(path.join(ROOT, "Pulumi.yaml"), "utf8"));
    const stackFile = YAML.parse(fs.readFileSync(path.join(ROOT, `Pulumi.${stack}.yaml`), "utf8")).config;
    const values: Record<string, unknown> = {};
    for (const [k, d] of Object.entries<any>(project.config)) if (d && "default" in d) values[k] = d.default;
    for (const [k, v] of Object.entries(stackFile))
      if (!(v && typeof v === "object" && "secure" in (v as object))) values[k.replace(/^dare:/, "")] = v;
    const config = loadConfig(source(values, stack));
    expect(config.clusterName).toBe(`dare-${stack}`);
    if (stack === "production") {
      expect(config.nodes.controlPlane.count).toBe(3);
      const workers = config.nodes.pools.reduce((n, p) => n + p.count, 0);
      expect(workers).toBeGreaterThanOrEqual(3);
      expect(config.nodes.pools.every((p) => p.disks.count >= 1)).toBe(true);
    } else {
      expect(config.nodes.controlPlane.count).toBe(1);
      expect(config.nodes.pools.map((p) => p.count)).toEqual([2]);
    }
  });

  it("declares every key the loader reads in Pulumi.yaml, with a description", () => {
    const project = YAML.parse(fs.readFileSync(path.join(ROOT, "Pulumi.yaml"), "utf8"));
    const loaderSource = fs
      .readdirSync(path.join(ROOT, "lib"))
      .filter((f) => f.endsWith(".ts"))
      .map((f) => fs.readFileSync(path.join(ROOT, "lib", f), "utf8"))
      .join("\n");
    const read = [...loaderSource.matchAll(/r\.(?:raw|oneOf)\("([A-Za-z]+)"/g)].map((m) => m[1]);
    expect(read.length).toBeGreaterThan(5);
    for (const key of new Set(read)) {
      expect(project.config[key]).toBeDefined();
      expect(String(project.config[key].description ?? "")).not.toBe("");
    }
  });
});

describe("config loader", () => {
  it("accepts a minimal valid configuration with documented defaults", () => {
    const config = loadConfig(source(valid));
    expect(config.provider).toBe("openstack");
    expect(config.nodes.controlPlane.count % 2).toBe(1);
    expect(config.kubernetesVersion).toMatch(/^1\.3[5-7]\.\d+$/);
  });

  it("lists every problem in one message, with key, value, reason and example", () => {
    let error: ConfigError | undefined;
    try {
      loadConfig(source({ provider: "aws", domain: "dare.example.org", adminCidrs: ["nonsense"], kubernetesVersion: "v1.36" }));
    } catch (err) {
      error = err as ConfigError;
    }
    expect(error).toBeInstanceOf(ConfigError);
    const keys = error!.problems.map((p) => p.key);
    expect(keys).toEqual(expect.arrayContaining(["provider", "adminCidrs[0]", "kubernetesVersion"]));
    expect(error!.message).toContain('dare:provider = "aws"');
    expect(error!.message).toContain('dare:adminCidrs[0] = "nonsense"');
    expect(error!.message).toMatch(/example: /);
    expect(error!.message.split("\n")[0]).toMatch(/^Invalid stack configuration \(\d+ problems\):$/);
  });

  it.each([
    [
      "negative count",
      { nodes: { controlPlane: { count: 1, flavor: "m" }, pools: [pool({ count: -1 })] } },
      "nodes.pools[0].count",
      /whole number/,
    ],
    [
      "fractional count",
      { nodes: { controlPlane: { count: 1, flavor: "m" }, pools: [pool({ count: 1.5 })] } },
      "nodes.pools[0].count",
      /whole number/,
    ],
    [
      "count as text",
      { nodes: { controlPlane: { count: "three", flavor: "m" }, pools: [pool()] } },
      "nodes.controlPlane.count",
      /whole number/,
    ],
    ["even control planes", { nodes: { controlPlane: { count: 2, flavor: "m" }, pools: [pool()] } }, "nodes.controlPlane.count", /odd/],
    ["zero control planes", { nodes: { controlPlane: { count: 0, flavor: "m" }, pools: [pool()] } }, "nodes.controlPlane.count", /odd/],
    [
      "duplicate pools",
      { nodes: { controlPlane: { count: 1, flavor: "m" }, pools: [pool(), pool()] } },
      "nodes.pools[1].name",
      /duplicate/,
    ],
    [
      "disk of size 0",
      { nodes: { controlPlane: { count: 1, flavor: "m" }, pools: [pool({ disks: { count: 1, sizeGb: 0 } })] } },
      "nodes.pools[0].disks.sizeGb",
      /≥ 1/,
    ],
    [
      "misspelt pool key",
      { nodes: { controlPlane: { count: 1, flavor: "m" }, pools: [pool({ cuont: 3 })] } },
      "nodes.pools[0].cuont",
      /unknown key/,
    ],
    ["node CIDR that does not parse", { network: { cidr: "10.0.0.0/33" } }, "network.cidr", /CIDR/],
    ["pod range overlapping the nodes", { network: { cidr: "10.244.1.0/24" } }, "network.podCidr", /overlaps dare:network.cidr/],
    ["service range overlapping pods", { network: { podCidr: "10.96.0.0/16" } }, "network.serviceCidr", /overlaps dare:network.podCidr/],
    ["admin CIDR that does not parse", { adminCidrs: ["192.0.2.0"] }, "adminCidrs[0]", /CIDR/],
    ["no admin CIDR", { adminCidrs: [] }, "adminCidrs", /at least one/],
    ["unknown provider", { provider: "aws" }, "provider", /must be one of "openstack", "existing"/],
    [
      "ingress load balancer neither auto nor a boolean",
      { ingressLoadBalancer: "yes" },
      "ingressLoadBalancer",
      /must be one of "auto", true, false/,
    ],
    ["existing without hosts", { provider: "existing" }, "hosts", /at least one host/],
    [
      "host with an unknown role",
      { provider: "existing", hosts: [host(), host({ name: "w-0", role: "gpu" })] },
      "hosts[1].role",
      /unknown role/,
    ],
    ["duplicate host names", { provider: "existing", hosts: [host(), host({ role: "workers" })] }, "hosts[1].name", /duplicate/],
    ["even control planes among hosts", { provider: "existing", hosts: [host(), host({ name: "cp-1" })] }, "hosts", /odd/],
    ["hosts without existing provider", { hosts: [host()] }, "hosts", /only used with dare:provider = existing/],
    ["host without a host key", { provider: "existing", hosts: [host({ hostKey: undefined })] }, "hosts[0].hostKey", /is missing/],
    [
      "host key of another type",
      { provider: "existing", hosts: [host({ hostKey: "ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAABAQC7" })] },
      "hosts[0].hostKey",
      /ssh-ed25519 public key/,
    ],
    [
      "host key whose data names another type",
      { provider: "existing", hosts: [host({ hostKey: `ssh-ed25519 ${Buffer.from("\0\0\0\x07ssh-rsa\0\0\0\x01x").toString("base64")}` })] },
      "hosts[0].hostKey",
      /does not hold an ssh-ed25519 key/,
    ],
    [
      "host key fingerprint instead of the key",
      { provider: "existing", hosts: [host({ hostKey: "SHA256:GClVtXWnAeqk+2Zhrf8/bum4KSpniOyXIkfRn13Qekk" })] },
      "hosts[0].hostKey",
      /ssh-ed25519 public key/,
    ],
    ["version with a v", { kubernetesVersion: "v1.36.4" }, "kubernetesVersion", /MAJOR\.MINOR\.PATCH/],
    ["version without patch", { kubernetesVersion: "1.36" }, "kubernetesVersion", /MAJOR\.MINOR\.PATCH/],
    ["unsupported minor", { kubernetesVersion: "1.29.0" }, "kubernetesVersion", /supported minors/],
    ["missing domain", { domain: undefined }, "domain", /required/],
    ["no Secret encryption key", { secretsEncryptionKeys: [] }, "secretsEncryptionKeys", /at least one key/],
    ["a Secret encryption key named twice", { secretsEncryptionKeys: ["key2", "key2"] }, "secretsEncryptionKeys", /names key2 twice/],
    [
      "a Secret encryption key name with capitals",
      { secretsEncryptionKeys: ["Key1"] },
      "secretsEncryptionKeys[0]",
      /lower-case letters, digits and dashes/,
    ],
    [
      "certificates renewed only after the 30-day warning",
      { certificateRenewalDays: 30 },
      "certificateRenewalDays",
      /whole number of days from 45 \(above the 30-day expiry warning/,
    ],
    [
      "certificates renewed more than twice a year",
      { certificateRenewalDays: 200 },
      "certificateRenewalDays",
      /to 180 \(half of the one-year certificate lifetime\)/,
    ],
    ["a fractional renewal window", { certificateRenewalDays: 90.5 }, "certificateRenewalDays", /whole number of days/],
    ["a renewal window in words", { certificateRenewalDays: "three months" }, "certificateRenewalDays", /whole number of days/],
  ])("refuses %s", (_label, values, key, why) => {
    expectProblem(values as Record<string, unknown>, key, why);
  });

  it("reads the certificate renewal window, 90 days when unset", () => {
    expect(loadConfig(source(valid)).certificateRenewalDays).toBe(90);
    expect(loadConfig(source({ ...valid, certificateRenewalDays: 120 })).certificateRenewalDays).toBe(120);
    // `pulumi config set certificateRenewalDays 120` stores the text "120".
    expect(loadConfig(source({ ...valid, certificateRenewalDays: "120" })).certificateRenewalDays).toBe(120);
  });

  it('reads the Secret encryption keys in order, ["key1"] when unset', () => {
    expect(loadConfig(source(valid)).secretsEncryptionKeys).toEqual(["key1"]);
    expect(loadConfig(source({ ...valid, secretsEncryptionKeys: ["key2", "key1"] })).secretsEncryptionKeys).toEqual(["key2", "key1"]);
  });

  it("reads the declared 'unset' defaults as unset: the CLI applies them to every key a stack leaves out", () => {
    const defaults = Object.fromEntries(
      Object.entries(CONFIG_KEYS).flatMap(([k, d]: [string, KeyDeclaration]) => (d.default === undefined ? [] : [[k, d.default]])),
    );
    const config = loadConfig(source({ ...defaults, ...valid }, "lab"));
    expect(config.clusterName).toBe("dare-lab");
    expect(config.hosts).toEqual([]);
    expect(config.ingressLoadBalancer).toBe(true);
    expect(config.acmeEmail).toBe("");
    expect(config.alerting).toBeUndefined();
    expect(config.dare.backup.repository).toBeUndefined();
    expect(config.dare.backup.passphrase).toBeUndefined();
    expect(
      loadConfig(source({ ...defaults, ...valid, apiLoadBalancer: false, nodes: { pools: [{ publicIp: true }] } })).ingressLoadBalancer,
    ).toBe(false);
    expect(
      loadConfig(source({ ...defaults, ...valid, ingressLoadBalancer: "false", nodes: { pools: [{ publicIp: true }] } }))
        .ingressLoadBalancer,
    ).toBe(false);
  });

  it("fills the fields a stack leaves out of a structured key from its default, as --path on an unset key needs", () => {
    // What `pulumi config set --path 'nodes.pools[0].count' 4` writes into a stack that did not set dare:nodes.
    const config = loadConfig(source({ ...valid, nodes: { pools: [{ count: 4 }] }, harbor: { enabled: true } }));
    expect(config.nodes.controlPlane).toEqual(CONFIG_KEYS.nodes.default.controlPlane);
    expect(config.nodes.pools).toEqual([{ ...CONFIG_KEYS.nodes.default.pools[0], count: 4 }]);
    expect(config.harbor).toEqual({ enabled: true, registrySizeGb: CONFIG_KEYS.harbor.default.registrySizeGb });
    // A list of plain values is the stack's own, never mixed with the default's.
    expect(loadConfig(source({ ...valid, network: { dnsNameservers: ["192.0.2.53"] } })).network.dnsNameservers).toEqual(["192.0.2.53"]);
  });

  it("takes a quantity that --path stored as an integer", () => {
    const config = loadConfig(source({ ...valid, services: { "exec-api": { limits: { cpu: 2 } } } }));
    expect(config.dare.services["exec-api"].limits.cpu).toBe("2");
  });

  it("takes each existing host's SSH host key as ssh-keygen writes it or ssh-keyscan prints it, and says how to read a missing one", () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "dare-hostkey-"));
    spawnSync("ssh-keygen", ["-q", "-t", "ed25519", "-N", "", "-C", "root@cp-0", "-f", path.join(dir, "h")]);
    const line = fs.readFileSync(path.join(dir, "h.pub"), "utf8");
    fs.rmSync(dir, { recursive: true, force: true });
    const [type, blob] = line.split(" ");
    const hostsWith = (hostKey: unknown) => ({ ...valid, provider: "existing", hosts: [host({ hostKey, disks: ["/dev/sdb"] })] });
    // The .pub file (with its comment) and ssh-keyscan's "<address> <type> <key>" both become "<type> <key>".
    expect(loadConfig(source(hostsWith(line))).hosts[0].hostKey).toBe(`${type} ${blob}`);
    expect(loadConfig(source(hostsWith(`203.0.113.10 ${type} ${blob}`))).hosts[0].hostKey).toBe(`${type} ${blob}`);
    const missing = problemsOf(hostsWith(undefined)).find((p) => p.key === "hosts[0].hostKey")!;
    expect(missing.why).toContain("cat /etc/ssh/ssh_host_ed25519_key.pub");
    expect(missing.why).toContain("ssh-keyscan -t ed25519 203.0.113.10");
    expect(missing.why).toContain("ssh-keygen -lf /etc/ssh/ssh_host_ed25519_key.pub");
    expect(missing.example).toBe(`"${EXAMPLE_HOST_KEY}"`);
    const wrong = problemsOf(hostsWith(`${type} ${blob.slice(0, -8)}`)).find((p) => p.key === "hosts[0].hostKey")!;
    expect(wrong.why).toMatch(/^(is not valid base64|does not hold an ssh-ed25519 key)/);
  });

  it("takes an operator's own SSH key only as an unencrypted OpenSSH key set with --secret, never showing it", () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "dare-key-"));
    spawnSync("ssh-keygen", ["-q", "-t", "ed25519", "-N", "", "-C", "op", "-f", path.join(dir, "k")]);
    spawnSync("ssh-keygen", ["-q", "-t", "ed25519", "-N", "a passphrase", "-f", path.join(dir, "locked")]);
    const key = fs.readFileSync(path.join(dir, "k"), "utf8");
    const secretSource = (values: Record<string, unknown>) => ({
      ...source({ ...valid, ...values }),
      isSecret: (k: string) => k === "sshPrivateKey",
    });
    expect(loadConfig(secretSource({ sshPrivateKey: key })).sshPrivateKey).toBeDefined();
    expect(opensshPublicKey(key)).toBe(fs.readFileSync(path.join(dir, "k.pub"), "utf8").replace(/ op\n$/, ""));
    const problem = (values: Record<string, unknown>, secret = true) => {
      try {
        loadConfig(secret ? secretSource(values) : { ...source({ ...valid, ...values }), isSecret: () => false });
      } catch (err) {
        return (err as ConfigError).problems.find((p) => p.key === "sshPrivateKey");
      }
      return undefined;
    };
    expect(problem({ sshPrivateKey: "-----BEGIN RSA PRIVATE KEY-----\nabc\n-----END RSA PRIVATE KEY-----" })).toMatchObject({
      value: "[secret]",
      why: expect.stringMatching(/OpenSSH format/),
    });
    expect(problem({ sshPrivateKey: fs.readFileSync(path.join(dir, "locked"), "utf8") })?.why).toMatch(/is encrypted/);
    expect(problem({ sshPrivateKey: key }, false)).toMatchObject({
      value: "[not shown]",
      why: expect.stringMatching(/must be set with --secret/),
    });
    expect(JSON.stringify(problem({ sshPrivateKey: key }, false))).not.toContain(key.split("\n")[1]);
    expect(loadConfig(source(valid)).sshPrivateKey).toBeUndefined();
  });

  it("requires each DARE image that has no published default, naming the GitLab project that builds it", () => {
    const problems = problemsOf({ images: {} });
    const missing = problems.filter((p) => /^images\./.test(p.key));
    expect(missing.map((p) => p.key).sort()).toEqual(REQUIRED_IMAGES.map(([name]) => `images.${name}`).sort());
    for (const [name, project] of REQUIRED_IMAGES) {
      const problem = missing.find((p) => p.key === `images.${name}`)!;
      expect(problem.why).toContain(project);
      expect(problem.example).toBe(`pulumi config set --path 'images.${name}' harbor.dare.example.org/dare/${name}:v3.6`);
    }
    // dare-login's image is published (D5.4): it keeps its default.
    expect(missing.some((p) => p.key === "images.dare-login")).toBe(false);
  });

  describe("image references", () => {
    const digest = "sha256:" + "3f1a9c".repeat(10) + "0b2d";
    const load = (images: Record<string, unknown>) => loadConfig(source({ ...valid, images: { ...valid.images, ...images } })).dare.images;

    it.each([
      ["a tag", "harbor.dare.example.org/dare/exec-api:v3.6"],
      ["a digest alone", `harbor.dare.example.org/dare/exec-api@${digest}`],
      ["a tag and a digest", `harbor.dare.example.org/dare/exec-api:v3.6@${digest}`],
      ["a registry port, a tag and a digest", `harbor.dare.example.org:5000/dare/exec-api:v3.6@${digest}`],
      ["a digest on an official image", `mysql:8.4.6@${digest}`],
    ])("takes %s", (_, ref) => {
      expect(
        load({ "exec-api": ref, "d4p-registry-db": ref.startsWith("mysql") ? ref : "mysql:8.4.6" })[
          ref.startsWith("mysql") ? "d4p-registry-db" : "exec-api"
        ],
      ).toBe(ref);
    });

    it("takes the MPI operator pinned by digest behind its release tag, and refuses it without that tag", () => {
      expect(load({ "mpi-operator": `mpioperator/mpi-operator:0.8.2@${digest}` })["mpi-operator"]).toBe(
        `mpioperator/mpi-operator:0.8.2@${digest}`,
      );
      for (const ref of [`mpioperator/mpi-operator@${digest}`, "mpioperator/mpi-operator:0.9.0"]) {
        const p = problemsOf({ images: { ...valid.images, "mpi-operator": ref } }).find((x) => x.key === "images.mpi-operator")!;
        expect(p.why).toBe("must keep the tag 0.8.2, the release of the MPIJob CRD the program ships (pin it further with its digest)");
        expect(p.example).toBe('"mpioperator/mpi-operator:0.8.2@sha256:<64 hex digits>"');
      }
    });

    const FORMS = "write repository:tag, repository@sha256:<64 hex digits> or repository:tag@sha256:<64 hex digits>";
    it.each([
      ["no tag and no digest", "harbor.dare.example.org/dare/exec-api", "has neither a tag nor a digest (that means latest): pin one"],
      ["latest", "harbor.dare.example.org/dare/exec-api:latest", "`latest` is not a pinned tag: use a version tag or add the digest"],
      ["a short digest", "harbor.dare.example.org/dare/exec-api@sha256:3f1a9c", "has a digest of 6 hex digits: a sha256 digest has 64"],
      [
        "a digest with uppercase hex",
        `harbor.dare.example.org/dare/exec-api:v3.6@${digest.toUpperCase().replace("SHA256", "sha256")}`,
        /^has the digest "sha256:3F1A9C.*": only sha256:<64 lowercase hex digits> is accepted$/,
      ],
      [
        "another algorithm",
        `harbor.dare.example.org/dare/exec-api@sha512:${"ab".repeat(64)}`,
        /^has the digest "sha512:abab.*": only sha256:<64 lowercase hex digits> is accepted$/,
      ],
      [
        "an empty digest",
        "harbor.dare.example.org/dare/exec-api:v3.6@",
        'has the digest "": only sha256:<64 lowercase hex digits> is accepted',
      ],
      ["a digest before the tag", `harbor.dare.example.org/dare/exec-api@${digest}:v3.6`, /^has the digest "sha256:.*:v3\.6": only sha256/],
      [
        "an uppercase repository",
        "Harbor.example.org/dare/exec-api:v3.6",
        'has the repository "Harbor.example.org/dare/exec-api", which is not an image name (lowercase registry/path)',
      ],
      [
        "an empty tag",
        "harbor.dare.example.org/dare/exec-api:",
        'has the tag "", which is not a tag (letters, digits, _ . -, at most 128 characters)',
      ],
    ])("refuses %s, saying why, with the forms and an example", (_, ref, why) => {
      const problems = problemsOf({ images: { ...valid.images, "exec-api": ref } });
      const p = problems.find((x) => x.key === "images.exec-api")!;
      expect(p.value).toBe(ref);
      const [reason, forms] = p.why.split("; ");
      if (typeof why === "string") expect(reason).toBe(why);
      else expect(reason).toMatch(why);
      expect(forms).toBe(FORMS);
      expect(p.example).toBe('"harbor.dare.example.org/dare/exec-api:v3.6"');
    });

    it("refuses a non-string image with the accepted forms", () => {
      const p = problemsOf({ images: { ...valid.images, "sprov-db": 5 } }).find((x) => x.key === "images.sprov-db")!;
      expect(p.why).toBe(
        "must be an image reference: repository:tag, repository@sha256:<64 hex digits> or repository:tag@sha256:<64 hex digits>",
      );
      expect(p.example).toBe('"mongo:5.0.33"');
    });
  });

  it("gives services with a local DB one replica on a volume at a configurable path", () => {
    const config = loadConfig(source({ ...valid, services: { "exec-api": { dataPath: "/var/lib/exec-api" } } }));
    expect(config.dare.services["exec-api"].dataPath).toBe("/var/lib/exec-api");
    expect(config.dare.services["workflow-registry"].dataPath).toBe("/data");
    expect(config.dare.services["dare-login"].dataPath).toBeUndefined();
    expectProblem(
      { services: { "workflow-registry": { replicas: 2 } } },
      "services.workflow-registry.replicas",
      /local state on one volume/,
    );
    expectProblem({ services: { "exec-api": { dataPath: "data" } } }, "services.exec-api.dataPath", /absolute path/);
    // Only services with local state have a data path.
    expectProblem({ services: { "dare-login": { dataPath: "/data" } } }, "services.dare-login.dataPath", /unknown key/);
  });

  it("refuses a Service range too small for the fixed Service addresses (Traefik's in-cluster Service is the 12th)", () => {
    expectProblem({ network: { serviceCidr: "10.96.0.0/29" } }, "network.serviceCidr", /at least 16 addresses/);
    expect(loadConfig(source({ ...valid, network: { serviceCidr: "10.96.0.0/28" } })).network.serviceCidr).toBe("10.96.0.0/28");
  });

  it("accepts existing hosts whose roles name declared pools", () => {
    const config = loadConfig(
      source({
        ...valid,
        provider: "existing",
        hosts: [host({ name: "w-0", role: "workers", disks: ["/dev/sdb"] }), host(), host({ name: "cp-1" }), host({ name: "cp-2" })],
      }),
    );
    expect(config.hosts.map((h) => h.role)).toEqual(["workers", "control-plane", "control-plane", "control-plane"]);
    expect(config.hosts[0].disks).toEqual(["/dev/sdb"]);
  });
});

describe("dare:bastion: a jump host for existing hosts", () => {
  const worker = host({ name: "w-0", role: "workers", address: "10.0.0.11", privateAddress: "10.0.0.11", disks: ["/dev/sdb"] });
  const jump = { address: "203.0.113.5", hostKey: EXAMPLE_HOST_KEY };
  const existing = (values: Record<string, unknown> = {}) => ({ provider: "existing", hosts: [host(), worker], ...values });

  it("reaches every host through it unless a host says viaBastion: false; port 22 and dare:sshUser by default; the hosts' key", () => {
    const config = loadConfig(
      source({ ...valid, ...existing({ sshUser: "admin", bastion: jump, hosts: [host({ viaBastion: false }), worker] }) }),
    );
    expect(config.bastion).toEqual({
      address: "203.0.113.5",
      privateAddress: "203.0.113.5",
      port: 22,
      user: "admin",
      hostKey: EXAMPLE_HOST_KEY,
    });
    expect(
      loadConfig(source({ ...valid, ...existing({ bastion: { ...jump, privateAddress: "10.0.0.5" } }) })).bastion!.privateAddress,
    ).toBe("10.0.0.5");
    expect(config.hosts.map((h) => [h.name, h.viaBastion])).toEqual([
      ["cp-0", false],
      ["w-0", true],
    ]);
    // Without a jump host, every host is reached directly.
    const direct = loadConfig(source({ ...valid, ...existing() }));
    expect(direct.bastion).toBeUndefined();
    expect(direct.hosts.map((h) => h.viaBastion)).toEqual([false, false]);
  });

  it("requires its host key, pinned as every host's, and says how to read it", () => {
    const missing = problemsOf(existing({ bastion: { address: "203.0.113.5" } })).find((p) => p.key === "bastion.hostKey")!;
    expect(missing.why).toMatch(/^is missing: every SSH connection/);
    expect(missing.why).toContain("ssh-keyscan -t ed25519 203.0.113.5");
    expect(missing.example).toBe(`"${EXAMPLE_HOST_KEY}"`);
    expectProblem(
      existing({ bastion: { ...jump, hostKey: "ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAABAQC7" } }),
      "bastion.hostKey",
      /ssh-ed25519 public key/,
    );
  });

  it("refuses a missing address, bad fields, unknown keys, OpenStack, and a host sent through a jump host that is not set", () => {
    expectProblem(existing({ bastion: { hostKey: EXAMPLE_HOST_KEY } }), "bastion.address", /non-empty string/);
    expectProblem(existing({ bastion: { ...jump, port: 0 } }), "bastion.port", /whole number ≥ 1/);
    expectProblem(existing({ bastion: { ...jump, user: "Not A User" } }), "bastion.user", /Unix user name/);
    expectProblem(
      existing({ bastion: { ...jump, key: "x" } }),
      "bastion.key",
      /unknown key \(known: address, privateAddress, port, user, hostKey\)/,
    );
    expectProblem(
      existing({ bastion: { ...jump, address: "jump.example.org" } }),
      "bastion.privateAddress",
      /must be an IPv4 address: the one the hosts see/,
    );
    expectProblem(existing({ bastion: "203.0.113.5" }), "bastion", /must be an object/);
    expectProblem(
      { bastion: jump },
      "bastion",
      /only used with dare:provider = existing: on OpenStack the first control plane is the jump host/,
    );
    const stranded = problemsOf(existing({ hosts: [host(), { ...worker, viaBastion: true }] })).find(
      (p) => p.key === "hosts[1].viaBastion",
    )!;
    expect(stranded.why).toMatch(/dare:bastion is not set/);
    expect(stranded.example).toContain("bastion.address");
    expectProblem(existing({ bastion: jump, hosts: [host({ viaBastion: "yes" }), worker] }), "hosts[0].viaBastion", /true or false/);
  });

  it("takes its own key only as an OpenSSH key set with --secret, never showing it, and only with a jump host", () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "dare-key-"));
    spawnSync("ssh-keygen", ["-q", "-t", "ed25519", "-N", "", "-C", "jump", "-f", path.join(dir, "k")]);
    const key = fs.readFileSync(path.join(dir, "k"), "utf8");
    fs.rmSync(dir, { recursive: true, force: true });
    const load = (values: Record<string, unknown>, secret: boolean) =>
      loadConfig({ ...source({ ...valid, ...existing(values) }), isSecret: (k: string) => secret && k === "bastionPrivateKey" });
    const problem = (values: Record<string, unknown>, secret: boolean) => {
      try {
        load(values, secret);
      } catch (err) {
        return (err as ConfigError).problems.find((p) => p.key === "bastionPrivateKey");
      }
      return undefined;
    };
    expect(load({ bastion: jump, bastionPrivateKey: key }, true).bastion!.privateKey).toBeDefined();
    expect(load({ bastion: jump }, true).bastion!.privateKey).toBeUndefined();
    expect(problem({ bastion: jump, bastionPrivateKey: key }, false)).toMatchObject({
      value: "[not shown]",
      why: expect.stringMatching(/must be set with --secret/),
    });
    expect(
      problem({ bastion: jump, bastionPrivateKey: "-----BEGIN RSA PRIVATE KEY-----\nabc\n-----END RSA PRIVATE KEY-----" }, true),
    ).toMatchObject({ value: "[secret]", why: expect.stringMatching(/OpenSSH format/) });
    expect(problem({ bastionPrivateKey: key }, true)).toMatchObject({
      value: "[secret]",
      why: expect.stringMatching(/only used with dare:bastion/),
    });
    expect(JSON.stringify(problem({ bastion: jump, bastionPrivateKey: key }, false))).not.toContain(key.split("\n")[1]);
  });
});
