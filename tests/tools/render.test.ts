import { spawnSync } from "child_process";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import * as YAML from "yaml";
import { EXAMPLE_HOST_KEY } from "../../lib/config";
import { parseConfigPath, setConfigPath, StackConfig } from "../../tools/program";
import { existingHostsStack } from "../engine/stacks";
import { readTree, render } from "../support/render";

describe("offline render", () => {
  let first: ReturnType<typeof render>;
  beforeAll(() => {
    first = render("testbed");
  });

  it("renders the testbed and names every resource of it", () => {
    expect(first.stderr).toBe("");
    expect(first.status).toBe(0);
    const resources = JSON.parse(fs.readFileSync(`${first.dir}/resources.json`, "utf8"));
    const urns = resources.map((r: { urn: string }) => r.urn);
    expect(urns).toEqual([...urns].sort());
    for (const r of resources) {
      // options only where a lifecycle option is set
      expect(Object.keys(r).filter((k) => k !== "options")).toEqual([
        "urn",
        "type",
        "name",
        "parent",
        "custom",
        "provider",
        "dependencies",
        "inputs",
      ]);
    }
    const instances = resources
      .filter((r: { type: string }) => r.type === "openstack:compute/instance:Instance")
      .map((r: any) => r.inputs.name);
    expect(instances.sort()).toEqual(["dare-testbed-cp-0", "dare-testbed-workers-0", "dare-testbed-workers-1"]);
    const outputs = JSON.parse(fs.readFileSync(`${first.dir}/outputs.json`, "utf8"));
    expect(outputs.hosts.map((h: { name: string }) => h.name)).toEqual(instances.sort());
    expect(outputs.sshPrivateKey).toBe("[secret]");
  });

  it("records the dependencies implied by inputs", () => {
    const resources = JSON.parse(fs.readFileSync(`${first.dir}/resources.json`, "utf8"));
    const attach = resources.find((r: any) => r.type === "openstack:compute/volumeAttach:VolumeAttach");
    const types = attach.dependencies.map((u: string) => u.split("::")[2].split("$").pop());
    expect(types).toEqual(expect.arrayContaining(["openstack:compute/instance:Instance", "openstack:blockstorage/volume:Volume"]));
  });

  it("is byte-identical when rendered again", () => {
    const second = render("testbed");
    expect(second.status).toBe(0);
    const a = readTree(first.dir);
    const b = readTree(second.dir);
    expect([...b.keys()].sort()).toEqual([...a.keys()].sort());
    for (const [file, content] of a) expect({ file, content: b.get(file) }).toEqual({ file, content });
  });

  it("writes each distinct content once: the workers' copies of a script are hard links to one file", () => {
    // A host's files are numbered in the order of its steps (a worker's disk step comes first).
    const hostFile = (host: string, file: string) => {
      const dir = `${first.dir}/hosts/dare-testbed-${host}`;
      const found = fs.readdirSync(dir).filter((f) => f.replace(/^\d+-/, "") === file);
      expect({ host, file, found: found.length }).toEqual({ host, file, found: 1 });
      return `${dir}/${found[0]}`;
    };
    const [a, b] = ["workers-0", "workers-1"].map((w) => fs.statSync(hostFile(w, "prepare.sh")));
    expect(b.ino).toBe(a.ino);
    expect(fs.readFileSync(hostFile("workers-1", "prepare.sh"), "utf8")).toBe(
      fs.readFileSync(`${__dirname}/../../lib/scripts/k8s-prepare.sh`, "utf8"),
    );
    // Each worker joins under its own name: separate files.
    const joins = ["workers-0", "workers-1"].map((w) => hostFile(w, "join.env"));
    expect(fs.statSync(joins[0]).ino).not.toBe(fs.statSync(joins[1]).ino);
    expect(fs.readFileSync(joins[0], "utf8")).toContain("NODE_NAME='dare-testbed-workers-0'");
    expect(fs.readFileSync(joins[1], "utf8")).toContain("NODE_NAME='dare-testbed-workers-1'");
  });

  it("writes no secret value anywhere, generated or configured", () => {
    // The generated SSH key: its private half must not appear, its public half may.
    const files = readTree(first.dir);
    for (const [file, content] of files) {
      expect({ file, leak: /PRIVATE KEY-----/.test(content) }).toEqual({ file, leak: false });
    }
  });
});

describe("render command line", () => {
  it("applies --set with the path syntax of pulumi config set --path", () => {
    const result = render("testbed", ["--set", "nodes.pools[0].count=3", "--set", "image=Debian 13"]);
    expect(result.status).toBe(0);
    const resources = JSON.parse(fs.readFileSync(`${result.dir}/resources.json`, "utf8"));
    const instances = resources.filter((r: any) => r.type === "openstack:compute/instance:Instance");
    expect(instances).toHaveLength(4);
    expect(new Set(instances.map((r: any) => r.inputs.imageName))).toEqual(new Set(["Debian 13"]));
  });

  it("pulls every chart from dare:chartMirror when it is set, and from upstream otherwise", () => {
    const mirrored = render("production", ["--set", "chartMirror=http://127.0.0.1:8879", "--set", "jupyterhub=true"]);
    expect(mirrored.status).toBe(0);
    const repositories = (dir: string) =>
      fs.readdirSync(`${dir}/helm`).map((f) => YAML.parse(fs.readFileSync(`${dir}/helm/${f}`, "utf8")).repository);
    const releases = repositories(mirrored.dir);
    expect(releases.length).toBeGreaterThanOrEqual(10);
    expect(new Set(releases)).toEqual(new Set(["http://127.0.0.1:8879"]));
    expect(repositories(render("testbed").dir)).not.toContain("http://127.0.0.1:8879");
    const bad = render("testbed", ["--set", "chartMirror=charts.example.org"]);
    expect(bad.stderr).toContain('dare:chartMirror = "charts.example.org": must be an http:// or https:// URL');
  });

  it("refuses bad config with the loader's message on stderr, exit status non-zero, nothing written", () => {
    const result = render("testbed", ["--set", "nodes.controlPlane.count=2", "--set", 'adminCidrs=["10.0.0.300/8"]']);
    expect(result.status).not.toBe(0);
    expect(result.stderr).toMatch(/^Invalid stack configuration \(2 problems\):/);
    expect(result.stderr).toContain("dare:nodes.controlPlane.count = 2");
    expect(result.stderr).toContain("dare:adminCidrs[0]");
    expect(result.stderr).not.toMatch(/\n\s+at /); // no stack trace
    expect(fs.existsSync(result.dir)).toBe(false);
  });

  it("writes a --set-secret value as [secret] wherever it is used, and nowhere in plain text", () => {
    const passphrase = "CorrectHorseBatteryStaple42";
    const smtpPassword = "SmtpPassw0rdSecret";
    const result = render("testbed", [
      "--set",
      "backup=borg@backup.example.org:/srv/borg",
      "--set",
      "backupOptOut=",
      "--set-secret",
      `backupPassphrase=${passphrase}`,
      "--set",
      "alerting.smtpHost=smtp.example.org:587",
      "--set",
      "alerting.from=dare@example.org",
      "--set",
      "alerting.user=alertmanager",
      "--set",
      'alerting.to=["ops@example.org"]',
      "--set-secret",
      `alerting.smtpPassword=${smtpPassword}`,
    ]);
    expect(result.stderr).toBe("");
    expect(result.status).toBe(0);
    const files = readTree(result.dir);
    for (const [file, content] of files) {
      expect({ file, leak: content.includes(passphrase) || content.includes(smtpPassword) }).toEqual({ file, leak: false });
    }
    // The values are used: each host's borg step gets the passphrase, Alertmanager a Secret with the password.
    const borgEnvs = [...files.entries()].filter(([f]) => /^hosts\/[^/]+\/\d+-borg-backup\.env$/.test(f));
    expect(borgEnvs.length).toBe(3);
    for (const [, env] of borgEnvs) expect(env).toContain("BORG_PASSPHRASE='[secret]'");
    expect(files.get("kubernetes/monitoring/secret-alertmanager-smtp.yaml")).toContain("[secret]");
  });

  it("refuses --set-secret on a key that is not a secret setting, rather than show it", () => {
    const result = render("testbed", ["--set-secret", "sshUser=hushhushuser"]);
    expect(result.status).not.toBe(0);
    expect(result.stderr).toContain("dare:sshUser");
    expect(result.stderr).not.toContain("hushhushuser");
    expect(fs.existsSync(result.dir)).toBe(false);
  });

  it("names the stacks when the stack does not exist", () => {
    const result = render("staging");
    expect(result.status).not.toBe(0);
    expect(result.stderr).toMatch(/no stack "staging".*stacks: .*production.*testbed/s);
  });
});

describe("config paths", () => {
  const empty = (): StackConfig => ({ values: {}, secretKeys: new Set(), secretValues: [] });

  it("parses keys, indexes and quoted segments", () => {
    expect(parseConfigPath("nodes.pools[0].count")).toEqual({ key: "dare:nodes", path: ["pools", 0, "count"] });
    expect(parseConfigPath('dare:hosts[1]["name"]')).toEqual({ key: "dare:hosts", path: [1, "name"] });
    expect(() => parseConfigPath("nodes..x")).not.toThrow();
    expect(() => parseConfigPath("[0]")).toThrow(/not a config path/);
  });

  it("sets JSON when it parses and a string otherwise, creating lists and objects on the way", () => {
    const config = empty();
    setConfigPath(config, "nodes.pools[0].count", "3", false);
    setConfigPath(config, "nodes.pools[0].name", "gpu", false);
    setConfigPath(config, "domain", "dare.example.org", false);
    setConfigPath(config, "smtp.password", "s3cr3t-value", true);
    expect(config.values["dare:nodes"]).toEqual({ pools: [{ count: 3, name: "gpu" }] });
    expect(config.values["dare:domain"]).toBe("dare.example.org");
    expect(config.secretKeys).toEqual(new Set(["dare:smtp"]));
    expect(config.secretValues).toEqual(["s3cr3t-value"]);
  });
});

describe("existing hosts behind a jump host (dare:bastion)", () => {
  it("reports the jump host and which hosts it fronts, and takes its own key only as a secret", () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "dare-bastion-"));
    const stackFile = path.join(dir, "Pulumi.bastion.yaml");
    const stack = YAML.parse(
      existingHostsStack({ hosts: ["10.213.0.20", "10.213.0.21", "10.213.0.22"], chartMirror: "", stopAfter: "bootstrap" }),
    );
    stack.config["dare:bastion"] = {
      address: "198.51.100.7",
      privateAddress: "10.213.0.9",
      port: 2222,
      user: "jump",
      hostKey: EXAMPLE_HOST_KEY,
    };
    fs.writeFileSync(stackFile, YAML.stringify(stack));
    spawnSync("ssh-keygen", ["-q", "-t", "ed25519", "-N", "", "-C", "jump", "-f", path.join(dir, "k")]);
    const key = fs.readFileSync(path.join(dir, "k"), "utf8");
    const result = render(
      "bastion",
      ["--stack-file", stackFile, "--set", "hosts[0].viaBastion=false", "--set-secret", `bastionPrivateKey=${key}`],
      dir,
    );
    expect(result.stderr).toBe("");
    expect(result.status).toBe(0);
    const outputs = JSON.parse(fs.readFileSync(`${result.dir}/outputs.json`, "utf8"));
    expect(outputs.bastion).toEqual({ address: "198.51.100.7", port: 2222, user: "jump", hostKey: EXAMPLE_HOST_KEY });
    expect(outputs.hosts.map((h: { name: string; viaBastion: boolean }) => [h.name, h.viaBastion])).toEqual([
      ["cp-0", false],
      ["w-0", true],
      ["w-1", true],
    ]);
    // Every host's firewall admits SSH from where the jump host's connections come from.
    const files = readTree(result.dir);
    const prepares = [...files.keys()].filter((f) => /^hosts\/[^/]+\/\d+-prepare\.env$/.test(f));
    expect(prepares).toHaveLength(3);
    for (const f of prepares)
      expect([f, files.get(f)!.includes(`ip saddr 10.213.0.9/32 tcp dport 22 accept comment "ssh from the jump host"`)]).toEqual([f, true]);
    // Every step's connection (which holds the keys) is a secret; the jump host's key appears nowhere.
    for (const [file, content] of files) expect([file, content.includes(key.split("\n")[1])]).toEqual([file, false]);
    fs.rmSync(dir, { recursive: true, force: true });
  }, 180000);
});
