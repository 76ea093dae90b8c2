/**
 * The alert rules as Prometheus itself reads them: promtool checks every rule group the render
 * writes, and promtool's unit tests (tests/components/monitoring/alerts/*.test.yaml) prove the DARE alerts fire for a
 * broken service and stay silent for a healthy one.
 */
import { execFileSync } from "child_process";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import * as k8s from "@pulumi/kubernetes";
import * as YAML from "yaml";
import { ALERT_SEVERITIES } from "../../../lib/config";
import { Monitoring, ruleFiles } from "../../../components/monitoring";
import { probeTargets } from "../../../components/dare-services";
import { DARE_WORKLOADS, WORKLOADS } from "../../../components/dare-services/workloads";
import { renderFiles, writeFiles } from "../../../tools/render-writer";
import { runMocked } from "../../support/mocked";

const UNIT_TESTS = path.join(__dirname, "alerts");

function run(cmd: string, args: string[], cwd?: string): { ok: boolean; output: string } {
  try {
    return { ok: true, output: execFileSync(cmd, args, { cwd, encoding: "utf8", stdio: "pipe" }) };
  } catch (err) {
    const e = err as { stdout?: string; stderr?: string };
    return { ok: false, output: `${e.stdout ?? ""}${e.stderr ?? ""}` };
  }
}

describe("rendered rule groups", () => {
  let dir: string;
  beforeAll(async () => {
    const resources = await runMocked(
      () =>
        new Monitoring("monitoring", {
          clusterName: "dare-test",
          domain: "dare.example.org",
          provider: new k8s.Provider("test", { kubeconfig: "{}" }),
        }),
    );
    dir = fs.mkdtempSync(path.join(os.tmpdir(), "alerts-render-"));
    writeFiles(dir, await renderFiles(resources, {}, []));
  });

  it("writes one rule file per rule group file", () => {
    const written = fs.readdirSync(path.join(dir, "monitoring/rules")).sort();
    expect(written).toEqual(
      ruleFiles()
        .map((f) => `${f.name}.yaml`)
        .sort(),
    );
  });

  it.each(ruleFiles().map((f) => f.name))("promtool check rules accepts %s", (name) => {
    const result = run("promtool", ["check", "rules", path.join(dir, "monitoring/rules", `${name}.yaml`)]);
    expect(result.output).toMatch(/SUCCESS/);
    expect(result.ok).toBe(true);
  });

  it("promtool check rules refuses a broken rule (the check can fail)", () => {
    const broken = path.join(dir, "broken.yaml");
    fs.writeFileSync(broken, YAML.stringify({ groups: [{ name: "x", rules: [{ alert: "X", expr: "sum(up" }] }] }));
    expect(run("promtool", ["check", "rules", broken]).ok).toBe(false);
  });
});

describe("alert rules", () => {
  const rules = (
    ruleFiles().flatMap((f) => f.groups.flatMap((g) => g.rules.map((r) => ({ file: f.name, ...r })))) as Array<Record<string, any>>
  ).filter((r) => r.alert !== undefined);

  it("cover what the operators asked for", () => {
    const names = new Set(rules.map((r) => r.alert));
    for (const name of [
      "DareServiceNoReadyReplicas",
      "DareServiceProbeFailed",
      "PodCrashLooping",
      "PersistentVolumeNearlyFull",
      "NodeDiskPressure",
      "NodeMemoryPressure",
      "CephHealthNotOK",
      "CertificateExpiringSoon",
      "KeycloakDown",
    ]) {
      expect(names).toContain(name);
    }
  });

  it("give every alert a known severity and a summary", () => {
    for (const r of rules) {
      expect(ALERT_SEVERITIES).toContain(r.labels?.severity);
      expect(r.annotations?.summary).toBeTruthy();
    }
  });

  it("label DARE and Keycloak alerts with the service the Alertmanager route matches", () => {
    for (const r of rules.filter((x) => x.file === "dare-services" || x.file === "keycloak")) {
      const labelled = r.labels?.service !== undefined || /group_left \(service\)/.test(r.expr) || /\b(up|probe_success)\{/.test(r.expr);
      expect({ alert: r.alert, labelled }).toEqual({ alert: r.alert, labelled: true });
    }
  });
});

describe("promtool unit tests of the DARE alerts", () => {
  const files = fs
    .readdirSync(UNIT_TESTS)
    .filter((f) => f.endsWith(".test.yaml"))
    .sort();

  it("exist for the DARE services, Keycloak and the shared volumes", () => {
    expect(files).toEqual(expect.arrayContaining(["dare-services.test.yaml", "keycloak.test.yaml", "workloads.test.yaml"]));
  });

  it.each(files)("promtool test rules %s", (file) => {
    const result = run("promtool", ["test", "rules", file], UNIT_TESTS);
    expect(result.output).toMatch(/SUCCESS/);
    expect(result.ok).toBe(true);
  });

  it("fail when an alert that should fire does not (the tests can fail)", () => {
    const scratch = fs.mkdtempSync(path.join(os.tmpdir(), "alerts-unit-"));
    const test = YAML.parse(fs.readFileSync(path.join(UNIT_TESTS, "keycloak.test.yaml"), "utf8"));
    test.rule_files = [path.join(__dirname, "..", "..", "..", "components", "monitoring", "alerts", "keycloak.yaml")];
    // Keycloak stays ready: the expected KeycloakDown alert must not appear, and promtool must say so.
    test.tests[0].input_series[0].values = "1x15";
    fs.writeFileSync(path.join(scratch, "t.yaml"), YAML.stringify(test));
    expect(run("promtool", ["test", "rules", "t.yaml"], scratch).ok).toBe(false);
  });
});

describe("the production stack's render, with an SMTP login set as a secret", () => {
  const password = "smtp-secret-from-config-0123456789";
  let dir: string;
  beforeAll(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), "alerts-production-"));
    execFileSync(
      process.execPath,
      [
        require.resolve("ts-node/dist/bin.js"),
        "--transpile-only",
        path.join(__dirname, "..", "..", "..", "tools", "render.ts"),
        "--stack",
        "production",
        "--out",
        dir,
        "--set",
        "alerting.user=alertmanager",
        "--set-secret",
        `alerting.smtpPassword=${password}`,
      ],
      { cwd: path.join(__dirname, "..", "..", ".."), stdio: "pipe" },
    );
  }, 120_000);

  it("writes an Alertmanager configuration amtool accepts, mailing the operators", () => {
    const file = path.join(dir, "monitoring/alertmanager.yaml");
    expect(run("amtool", ["check-config", file]).ok).toBe(true);
    const receiver = run("amtool", ["config", "routes", "test", `--config.file=${file}`, "service=dare-login", "severity=critical"]);
    expect(receiver.output.trim()).toBe("dare-operators");
    expect(YAML.parse(fs.readFileSync(file, "utf8")).global.smtp_auth_username).toBe("alertmanager");
  });

  it("routes the DARE probe alerts of the seed's services to the DARE operators, as the seed's route did", () => {
    const file = path.join(dir, "monitoring/alertmanager.yaml");
    const seedRoute = /^(dare-login|d4p-registry|dare-shared-volumes|keycloak|sprov|cwl)$/;
    const targets = probeTargets("dare", Object.fromEntries(DARE_WORKLOADS.map((w) => [w, WORKLOADS[w].port])) as any);
    const routed = targets.filter((t) => seedRoute.test(t.service));
    expect(new Set(routed.map((t) => t.service))).toEqual(new Set(["dare-login", "d4p-registry", "sprov", "cwl"]));
    for (const t of routed) {
      const receiver = run("amtool", [
        "config",
        "routes",
        "test",
        `--config.file=${file}`,
        "alertname=DareServiceProbeFailed",
        `service=${t.service}`,
        `workload=${t.workload}`,
        `via=${t.via}`,
        "severity=critical",
      ]);
      expect({ target: `${t.workload}/${t.via}`, receiver: receiver.output.trim() }).toEqual({
        target: `${t.workload}/${t.via}`,
        receiver: "dare-operators",
      });
    }
  });

  it("writes every rule group, each accepted by promtool", () => {
    const rulesDir = path.join(dir, "monitoring/rules");
    for (const f of fs.readdirSync(rulesDir)) expect(run("promtool", ["check", "rules", path.join(rulesDir, f)]).ok).toBe(true);
    expect(fs.readdirSync(rulesDir)).toHaveLength(ruleFiles().length);
  });

  it("shows the SMTP password nowhere", () => {
    const walk = (d: string): string[] =>
      fs.readdirSync(d, { withFileTypes: true }).flatMap((e) => (e.isDirectory() ? walk(path.join(d, e.name)) : [path.join(d, e.name)]));
    for (const f of walk(dir)) expect(fs.readFileSync(f, "utf8")).not.toContain(password);
  });
});
