/**
 * dare:mirrors (issue 18, air-gapped sites): the loader's checks, the prepare step's parameters as the render
 * writes them, and the dare-ca CA made before the cluster so that the hosts can trust it. What the hosts do
 * with the parameters: tests/hosts/mirrors.test.ts.
 */
import * as fs from "fs";
import * as path from "path";
import * as pulumi from "@pulumi/pulumi";
import { mirrorEnv } from "../../../components/cluster";
import { ConfigError, loadConfig, MirrorsSpec, Problem } from "../../../lib/config";
import { dareCertificateAuthority } from "../../../components/security";
import { runMocked } from "../../support/mocked";
import { render } from "../../support/render";
import { SITE_CONFIG } from "../../support/site";
import { selfSignedCertificate } from "../../support/test-certificates";

const valid = { domain: "dare.example.org", adminCidrs: ["192.0.2.0/24"], ...SITE_CONFIG };
const load = (mirrors: unknown) =>
  loadConfig({
    stack: "test",
    get: (k) => {
      const v = ({ ...valid, mirrors } as Record<string, unknown>)[k];
      return v === undefined ? undefined : JSON.stringify(v);
    },
  });
function problemsOf(mirrors: unknown): Problem[] {
  try {
    load(mirrors);
  } catch (e) {
    expect(e).toBeInstanceOf(ConfigError);
    return (e as ConfigError).problems;
  }
  throw new Error("expected the configuration to be refused");
}

describe("dare:mirrors, the loader", () => {
  const ca = selfSignedCertificate("mirror CA", { ca: true });
  const leaf = selfSignedCertificate("harbor.example.org", { ca: false });

  it("is empty when unset: no mirror, the hosts' trust store", () => {
    expect(load(undefined).mirrors).toEqual({ registries: {}, apt: {} });
    expect(load({}).mirrors).toEqual({ registries: {}, apt: {} });
  });

  it("reads registries, apt mirrors and the CA, dropping trailing slashes", () => {
    const mirrors = load({
      registries: {
        "docker.io": { endpoint: "https://harbor.example.org/v2/dockerhub-proxy/" },
        "registry.example.org:5000": { endpoint: "http://10.0.0.5:5000" },
      },
      apt: {
        ubuntu: "http://mirror.example.org/ubuntu/",
        kubernetes: "https://mirror.example.org/pkgs.k8s.io",
        docker: "https://mirror.example.org/download.docker.com/linux/ubuntu",
      },
      caCertificate: ca,
    }).mirrors;
    expect(mirrors).toEqual({
      registries: { "docker.io": "https://harbor.example.org/v2/dockerhub-proxy", "registry.example.org:5000": "http://10.0.0.5:5000" },
      apt: {
        ubuntu: "http://mirror.example.org/ubuntu",
        kubernetes: "https://mirror.example.org/pkgs.k8s.io",
        docker: "https://mirror.example.org/download.docker.com/linux/ubuntu",
      },
      caCertificate: ca,
    });
    expect(
      load({ registries: { "quay.io": { endpoint: "https://harbor.example.org/v2/quay-proxy" } }, caCertificate: "dare-ca" }).mirrors
        .caCertificate,
    ).toBe("dare-ca");
  });

  it("names every problem at once: key, value, why, a valid example", () => {
    const problems = problemsOf({
      registries: {
        "Docker.IO": { endpoint: "https://x.example.org" },
        "quay.io": { endpoint: "ftp://mirror" },
        "ghcr.io": {},
        "gcr.io": "https://x",
        "k8s.gcr.io": { endpoint: "https://x", insecure: true },
      },
      apt: { ubuntu: "mirror.example.org/ubuntu", debian: "http://x" },
      caCertificate: leaf,
      extra: 1,
    });
    const byKey = new Map(problems.map((p) => [p.key, p]));
    expect([...byKey.keys()].sort()).toEqual([
      "mirrors.apt.debian",
      "mirrors.apt.ubuntu",
      "mirrors.caCertificate",
      "mirrors.extra",
      'mirrors.registries["Docker.IO"]',
      'mirrors.registries["gcr.io"]',
      'mirrors.registries["ghcr.io"].endpoint',
      'mirrors.registries["k8s.gcr.io"].insecure',
      'mirrors.registries["quay.io"].endpoint',
    ]);
    expect(byKey.get('mirrors.registries["quay.io"]')).toBeUndefined();
    expect(byKey.get('mirrors.registries["quay.io"].endpoint')).toMatchObject({
      value: "ftp://mirror",
      why: expect.stringMatching(/must be an http:\/\/ or https:\/\/ URL/),
    });
    expect(byKey.get('mirrors.registries["quay.io"].endpoint')!.example).toBe(
      "pulumi config set --path 'mirrors.registries[\"quay.io\"].endpoint' https://harbor.example.org/v2/quay-io-proxy",
    );
    expect(byKey.get('mirrors.registries["Docker.IO"]')!.why).toMatch(/not a registry name/);
    expect(byKey.get('mirrors.registries["ghcr.io"].endpoint')!.why).toMatch(/is required/);
    expect(byKey.get('mirrors.registries["gcr.io"]')!.why).toBe("must be an object");
    expect(byKey.get("mirrors.apt.ubuntu")).toMatchObject({
      value: "mirror.example.org/ubuntu",
      example: "pulumi config set --path 'mirrors.apt.ubuntu' https://mirror.example.org/ubuntu",
    });
    expect(byKey.get("mirrors.caCertificate")!.why).toMatch(/not a CA's \(subject CN=harbor\.example\.org\)/);
    // The message an operator reads names them all, without a stack trace.
    let message = "";
    try {
      load({
        apt: { docker: "https://mirror.example.org/'docker'" },
        registries: { "quay.io": { endpoint: "https://h.example.org/v2/*" } },
      });
    } catch (e) {
      message = String((e as Error).message);
    }
    expect(message).toContain(`dare:mirrors.apt.docker = "https://mirror.example.org/'docker'": must be an http:// or https:// URL`);
    // Nothing the host script's shell would expand.
    expect(message).toContain(
      `dare:mirrors.registries["quay.io"].endpoint = "https://h.example.org/v2/*": must be an http:// or https:// URL`,
    );
    expect(message).not.toMatch(/\n\s+at /);
  });

  it("refuses a CA that is no certificate, and a CA no mirror uses", () => {
    expect(problemsOf({ registries: { "docker.io": { endpoint: "https://h.example.org" } }, caCertificate: "my-ca" })).toEqual([
      expect.objectContaining({
        key: "mirrors.caCertificate",
        value: "my-ca",
        why: expect.stringMatching(/must be a PEM certificate .* or dare-ca/),
      }),
    ]);
    const broken = "-----BEGIN CERTIFICATE-----\nbm90IGEgY2VydGlmaWNhdGU=\n-----END CERTIFICATE-----";
    expect(problemsOf({ apt: { ubuntu: "https://m.example.org/ubuntu" }, caCertificate: broken })[0].why).toMatch(/cannot be read/);
    expect(problemsOf({ caCertificate: "dare-ca" })).toEqual([
      expect.objectContaining({ key: "mirrors.caCertificate", why: expect.stringMatching(/no mirror is configured/) }),
    ]);
  });
});

describe("the prepare step's mirror parameters", () => {
  it("are absent without mirrors: hosts keep the upstream sources", () => {
    expect(mirrorEnv(undefined)).toEqual({});
    expect(mirrorEnv({ registries: {}, apt: {} })).toEqual({});
  });

  it("list registries sorted, with override_path for an endpoint with a path (the API root there, as Harbor's proxy projects)", () => {
    const mirrors: MirrorsSpec = {
      registries: {
        "registry.k8s.io": "https://harbor.example.org/v2/k8s-proxy",
        "docker.io": "https://harbor.example.org/v2/dockerhub-proxy",
        "quay.io": "http://10.0.0.5:5000",
      },
      apt: { kubernetes: "https://mirror.example.org/pkgs.k8s.io" },
      caCertificate: "PEM",
    };
    expect(mirrorEnv(mirrors)).toEqual({
      REGISTRY_MIRRORS:
        "docker.io https://harbor.example.org/v2/dockerhub-proxy true\nquay.io http://10.0.0.5:5000 false\nregistry.k8s.io https://harbor.example.org/v2/k8s-proxy true",
      KUBERNETES_APT_MIRROR: "https://mirror.example.org/pkgs.k8s.io",
      MIRROR_CA_CERT: "PEM",
    });
  });
});

describe("the render with dare:mirrors", () => {
  const harbor = "https://harbor.example.org/v2/dockerhub-proxy";
  let files: Map<string, string>;
  const envOf = (host: string, step: string) => {
    const dir = [...files.keys()].filter((f) => f.startsWith(`hosts/${host}/`) && f.endsWith(`-${step}.env`));
    expect(dir).toHaveLength(1);
    return files.get(dir[0])!;
  };
  beforeAll(() => {
    const result = render("testbed", [
      "--set",
      `mirrors.registries["docker.io"].endpoint=${harbor}`,
      "--set",
      'mirrors.registries["registry.k8s.io"].endpoint=https://harbor.example.org',
      "--set",
      "mirrors.apt.ubuntu=http://mirror.example.org/ubuntu/",
      "--set",
      "mirrors.apt.kubernetes=https://mirror.example.org/pkgs.k8s.io",
      "--set",
      "mirrors.apt.docker=https://mirror.example.org/download.docker.com/linux/ubuntu",
      "--set",
      "mirrors.caCertificate=dare-ca",
    ]);
    expect(result.stderr).toBe("");
    expect(result.status).toBe(0);
    files = new Map();
    const walk = (d: string) =>
      fs.readdirSync(d, { withFileTypes: true }).forEach((e) => {
        const p = path.join(d, e.name);
        if (e.isDirectory()) walk(p);
        else files.set(path.relative(result.dir, p), fs.readFileSync(p, "utf8"));
      });
    walk(result.dir);
  });

  it("gives every host's prepare step the mirrors; the dare-ca certificate as a secret, as the dare-ca Secret holds it", () => {
    for (const host of ["dare-testbed-cp-0", "dare-testbed-workers-0", "dare-testbed-workers-1"]) {
      const env = envOf(host, "prepare");
      expect(env).toContain(`REGISTRY_MIRRORS='docker.io ${harbor} true\nregistry.k8s.io https://harbor.example.org false'\n`);
      expect(env).toContain("UBUNTU_APT_MIRROR='http://mirror.example.org/ubuntu'\n");
      expect(env).toContain("KUBERNETES_APT_MIRROR='https://mirror.example.org/pkgs.k8s.io'\n");
      expect(env).toContain("DOCKER_APT_MIRROR='https://mirror.example.org/download.docker.com/linux/ubuntu'\n");
      expect(env).toContain("MIRROR_CA_CERT='[secret]'\n");
    }
    // Only the prepare step takes them.
    expect([...files.entries()].filter(([f, c]) => f.endsWith(".env") && !f.endsWith("-prepare.env") && c.includes("MIRROR"))).toEqual([]);
  });

  it("declares the dare-ca CA at the top level, and every prepare step depends on its certificate", () => {
    const resources = JSON.parse(files.get("resources.json")!);
    const ca = resources.filter((r: any) => r.name === "security-ca" && r.type.startsWith("tls:"));
    expect(ca.map((r: any) => r.parent)).toEqual([
      "urn:pulumi:testbed::dare::pulumi:pulumi:Stack::dare-testbed",
      "urn:pulumi:testbed::dare::pulumi:pulumi:Stack::dare-testbed",
    ]);
    const prepares = resources.filter((r: any) => r.type === "command:remote:Command" && r.name.endsWith("-prepare"));
    expect(prepares).toHaveLength(3);
    for (const prepare of prepares)
      expect(prepare.dependencies).toContain(ca.find((r: any) => r.type === "tls:index/selfSignedCert:SelfSignedCert").urn);
  });

  it("without dare:mirrors the prepare step gets no mirror parameter", () => {
    const plain = render("testbed");
    expect(plain.status).toBe(0);
    const dir = `${plain.dir}/hosts/dare-testbed-cp-0`;
    const env = fs.readFileSync(
      path.join(
        dir,
        fs.readdirSync(dir).find((f) => f.endsWith("-prepare.env"))!,
      ),
      "utf8",
    );
    expect(env).not.toMatch(/MIRROR/);
  });
});

describe("the dare-ca CA", () => {
  it("keeps the state of a stack made when it was the Security component's child (alias), so no new CA is made", async () => {
    let aliases: string[] = [];
    await runMocked(async () => {
      const ca = dareCertificateAuthority("dare-test");
      aliases = await Promise.all(
        [ca.key, ca.cert].map(
          (r) =>
            new Promise<string>((resolve) =>
              pulumi.output((r as any).__aliases[0]).apply((urn: string) => {
                resolve(urn);
                return urn;
              }),
            ),
        ),
      );
    });
    expect(aliases).toEqual([
      "urn:pulumi:test::dare::dare:platform:Security$tls:index/privateKey:PrivateKey::security-ca",
      "urn:pulumi:test::dare::dare:platform:Security$tls:index/selfSignedCert:SelfSignedCert::security-ca",
    ]);
  });
});
