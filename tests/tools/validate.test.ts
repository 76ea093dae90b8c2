/**
 * What is left of the validation library (tools/validate) must be able to FAIL as well as pass: each
 * check is exercised with a valid and an invalid fixture. Objects themselves are judged by the real API
 * server and values by the real `helm template` in the engine tier (tests/engine/helm-template.test.ts).
 */
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import * as YAML from "yaml";
import { chartVersions, crdVersions, validateHelmValues, validateRenderDir } from "../../tools/validate";

const deployment = {
  apiVersion: "apps/v1",
  kind: "Deployment",
  metadata: { name: "web", namespace: "demo", labels: { "app.kubernetes.io/name": "web" } },
  spec: {
    replicas: 2,
    strategy: { type: "RollingUpdate", rollingUpdate: { maxSurge: "25%", maxUnavailable: 0 } },
    selector: { matchLabels: { app: "web" } },
    template: {
      metadata: { labels: { app: "web" }, annotations: { "example.com/x": "y" } },
      spec: {
        containers: [
          {
            name: "web",
            image: "nginx:1.27",
            ports: [{ name: "http", containerPort: 80 }],
            resources: { limits: { cpu: "500m", memory: "256Mi" } },
            readinessProbe: { httpGet: { path: "/", port: "http" } },
            env: [{ name: "PASSWORD", valueFrom: { secretKeyRef: { name: "web", key: "password" } } }],
          },
        ],
      },
    },
  },
};

const secret = {
  apiVersion: "v1",
  kind: "Secret",
  metadata: { name: "web", namespace: "demo" },
  type: "Opaque",
  data: { password: "[secret]" },
};

describe("shared CRDs", () => {
  it("crdVersions() reads the folder names", () => {
    expect(crdVersions()).toMatchObject({ rook: "v1.20.6", "cert-manager": "v1.21.1", "prometheus-operator": "v0.93.1" });
  });
});

describe("Helm values (shared chart defaults)", () => {
  it("accepts known keys, rejects a typo with its full path", () => {
    expect(validateHelmValues({ chart: "traefik", version: "41.3.0", values: { deployment: { replicas: 2 } } })).toEqual([]);
    const errors = validateHelmValues({ chart: "traefik", version: "41.3.0", values: { deployment: { replcas: 2 } } });
    expect(errors).toEqual([expect.stringContaining('"deployment.replcas"')]);
  });

  it("accepts keys below empty maps and commented-out keys", () => {
    const values = {
      deployment: { podAnnotations: { "example.com/anything": "x" } }, // podAnnotations: {}
      ports: { web: { hostPort: 8000 } }, // "# hostPort: 8000"
      metrics: { datadog: { address: "127.0.0.1:8125" } }, // "#  datadog:" block
    };
    expect(validateHelmValues({ chart: "traefik", version: "41.3.0", values })).toEqual([]);
  });

  it("checks subchart values against the subchart (kube-prometheus-stack -> grafana)", () => {
    const ok = validateHelmValues({
      chart: "kube-prometheus-stack",
      version: "88.5.3",
      values: { grafana: { adminPassword: "[secret]", persistence: { enabled: true } }, global: { imageRegistry: "r" } },
    });
    expect(ok).toEqual([]);
    const bad = validateHelmValues({ chart: "kube-prometheus-stack", version: "88.5.3", values: { grafana: { adminPasword: "x" } } });
    expect(bad).toEqual([expect.stringContaining('"grafana.adminPasword"')]);
  });

  it("rejects a chart version that is not in shared/charts", () => {
    expect(validateHelmValues({ chart: "traefik", version: "41.2.0", values: {} })).toEqual([
      expect.stringContaining("traefik version 41.2.0 is not in shared/charts"),
    ]);
    expect(validateHelmValues({ chart: "no-such-chart", version: "1.0.0", values: {} })).toHaveLength(1);
  });

  it("chartVersions() lists the shared charts", () => {
    expect(chartVersions()).toMatchObject({ traefik: ["41.3.0"], "rook-ceph": ["v1.20.6"] });
  });
});

describe("validateRenderDir", () => {
  let dir: string;
  beforeAll(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), "dare-validate-"));
    const write = (rel: string, obj: unknown): void => {
      fs.mkdirSync(path.dirname(path.join(dir, rel)), { recursive: true });
      fs.writeFileSync(path.join(dir, rel), YAML.stringify(obj));
    };
    write("kubernetes/demo/Deployment-web.yaml", deployment);
    write("kubernetes/demo/Secret-web.yaml", secret);
    write("kubernetes/demo/Thing-bad.yaml", { metadata: { name: "bad" } });
    // Judged by the API server in the engine tier, not here: an unknown field, a kind no CRD defines.
    write("kubernetes/demo/Deployment-typo.yaml", { ...deployment, spec: { ...deployment.spec, replica: 3 } });
    write("kubernetes/demo/Widget-w.yaml", { apiVersion: "example.com/v1", kind: "Widget", metadata: { name: "w" } });
    write("helm/traefik.yaml", {
      chart: "traefik",
      version: "41.3.0",
      repository: "https://traefik.github.io/charts",
      namespace: "traefik",
      values: { deployment: { replcas: 2 } },
    });
    write("helm/grafana.yaml", { chart: "grafana", version: "1.0.0", namespace: "monitoring", values: {} });
    write("helm/cert-manager.yaml", {
      chart: "cert-manager",
      version: "v1.21.1",
      repository: "https://charts.jetstack.io",
      namespace: "cert-manager",
      values: { crds: { enabled: true } },
    });
  });
  afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

  it("reports exactly the bad files", async () => {
    const errors = await validateRenderDir(dir);
    expect(errors).toHaveLength(3);
    expect(errors).toEqual(
      expect.arrayContaining([
        expect.stringMatching(/^kubernetes\/demo\/Thing-bad\.yaml: not a Kubernetes object/),
        expect.stringMatching(/^helm\/traefik\.yaml: .*"deployment\.replcas"/),
        expect.stringMatching(/^helm\/grafana\.yaml: .*grafana version 1\.0\.0 is not in shared\/charts/),
      ]),
    );
  });
});

describe("DARE_SHARED_DIR override", () => {
  const saved = process.env.DARE_SHARED_DIR;
  let shared: string;
  beforeAll(() => {
    shared = fs.mkdtempSync(path.join(os.tmpdir(), "dare-shared-"));
    fs.mkdirSync(path.join(shared, "crds", "widgets", "v9.9.9"), { recursive: true });
    fs.writeFileSync(
      path.join(shared, "crds", "widgets", "v9.9.9", "crd.yaml"),
      YAML.stringify({
        apiVersion: "apiextensions.k8s.io/v1",
        kind: "CustomResourceDefinition",
        metadata: { name: "widgets.example.com" },
        spec: {
          group: "example.com",
          names: { kind: "Widget", plural: "widgets" },
          scope: "Namespaced",
          versions: [
            {
              name: "v1",
              served: true,
              storage: true,
              schema: {
                openAPIV3Schema: {
                  type: "object",
                  properties: {
                    spec: {
                      type: "object",
                      properties: {
                        size: { "x-kubernetes-int-or-string": true },
                        note: { type: "string", nullable: true },
                        extra: { type: "object", "x-kubernetes-preserve-unknown-fields": true },
                      },
                    },
                  },
                },
              },
            },
          ],
        },
      }),
    );
    fs.mkdirSync(path.join(shared, "charts", "mini", "1.0.0"), { recursive: true });
    fs.writeFileSync(path.join(shared, "charts", "mini", "1.0.0", "Chart.yaml"), "apiVersion: v2\nname: mini\nversion: 1.0.0\n");
    fs.writeFileSync(
      path.join(shared, "charts", "mini", "1.0.0", "values.yaml"),
      [
        "service:",
        "  type: ClusterIP",
        '  # loadBalancerIP: ""',
        "  config: |",
        "    # notAKey: inside a block scalar",
        "    text: here",
        "podAnnotations: {}",
        "# topLevel:",
        "#   nested: 1",
        "",
      ].join("\n"),
    );
    process.env.DARE_SHARED_DIR = shared;
  });
  afterAll(() => {
    if (saved === undefined) delete process.env.DARE_SHARED_DIR;
    else process.env.DARE_SHARED_DIR = saved;
    fs.rmSync(shared, { recursive: true, force: true });
  });

  it("reads CRD versions from the override", () => {
    expect(crdVersions()).toEqual({ widgets: "v9.9.9" });
  });

  it("reads charts from the override, with the commented-key rule", () => {
    const v = (values: unknown): string[] => validateHelmValues({ chart: "mini", version: "1.0.0", values });
    expect(v({ service: { loadBalancerIP: "10.0.0.1" }, topLevel: { nested: 2 }, podAnnotations: { a: "b" } })).toEqual([]);
    expect(v({ service: { notAKey: 1 } })).toEqual([expect.stringContaining('"service.notAKey"')]);
    expect(v({ nested: 1 })).toEqual([expect.stringContaining('"nested"')]);
  });
});
