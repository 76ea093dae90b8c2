/** Each rule of the policy pack against a violating and a compliant resource. */
import {
  containerResources,
  noNodePortServices,
  noWorldOpenSecurityGroupRules,
  pinnedHelmReleases,
  pinnedImages,
  secretsMarkedSecret,
  unpinnedImageReason,
} from "../../policy/rules";

const GOOD_RESOURCES = { requests: { cpu: "100m", memory: "128Mi" }, limits: { memory: "256Mi" } };

function deployment(container: Record<string, unknown>) {
  return { metadata: { name: "api", namespace: "dare" }, spec: { template: { spec: { containers: [{ name: "api", ...container }] } } } };
}

function release(values: Record<string, unknown>, version: unknown = "1.2.3") {
  return { chart: "grafana", version, repositoryOpts: { repo: "https://grafana.github.io/helm-charts" }, values };
}

describe("no-nodeport-services", () => {
  it("rejects a NodePort Service and accepts ClusterIP and LoadBalancer", () => {
    expect(noNodePortServices("kubernetes:core/v1:Service", { metadata: { name: "web" }, spec: { type: "NodePort" } })).toHaveLength(1);
    expect(noNodePortServices("kubernetes:core/v1:Service", { spec: { type: "ClusterIP" } })).toEqual([]);
    expect(noNodePortServices("kubernetes:core/v1:Service", { spec: { type: "LoadBalancer" } })).toEqual([]);
  });

  it("finds service.type NodePort anywhere in a Helm release's values", () => {
    const problems = noNodePortServices("kubernetes:helm.sh/v3:Release", release({ controller: { service: { type: "NodePort" } } }));
    expect(problems).toEqual([expect.stringContaining("controller.service.type")]);
    expect(noNodePortServices("kubernetes:helm.sh/v3:Release", release({ service: { type: "ClusterIP" } }))).toEqual([]);
  });
});

describe("container-resources", () => {
  it("rejects a container without requests or memory limit, naming what is missing", () => {
    const [problem] = containerResources(
      "kubernetes:apps/v1:Deployment",
      deployment({ image: "x:1", resources: { requests: { cpu: "1" } } }),
    );
    expect(problem).toContain("requests.memory");
    expect(problem).toContain("limits.memory");
    expect(problem).not.toContain("requests.cpu");
  });

  it("checks init containers and every workload kind's pod spec", () => {
    const cronJob = {
      spec: {
        jobTemplate: {
          spec: {
            template: {
              spec: {
                initContainers: [{ name: "wait", image: "busybox:1.37" }],
                containers: [{ name: "backup", image: "borg:1.4", resources: GOOD_RESOURCES }],
              },
            },
          },
        },
      },
    };
    expect(containerResources("kubernetes:batch/v1:CronJob", cronJob)).toEqual([expect.stringContaining("initContainers[0] (wait)")]);
    const pod = { spec: { containers: [{ name: "p", image: "x:1" }] } };
    expect(containerResources("kubernetes:core/v1:Pod", pod)).toHaveLength(1);
    for (const kind of ["apps/v1:StatefulSet", "apps/v1:DaemonSet", "batch/v1:Job"]) {
      expect(containerResources(`kubernetes:${kind}`, deployment({ image: "x:1" }))).toHaveLength(1);
    }
  });

  it("accepts requests plus a memory limit", () => {
    expect(containerResources("kubernetes:apps/v1:Deployment", deployment({ image: "x:1", resources: GOOD_RESOURCES }))).toEqual([]);
  });
});

describe("pinned-images", () => {
  it("tells tagless, latest and empty tags from pinned ones, a registry port not being a tag", () => {
    expect(unpinnedImageReason("nginx")).toMatch(/no tag/);
    expect(unpinnedImageReason("harbor.example.org:5000/dare/api")).toMatch(/no tag/);
    expect(unpinnedImageReason("ghcr.io/dare/api:latest")).toMatch(/latest/);
    expect(unpinnedImageReason("ghcr.io/dare/api:")).toMatch(/empty/);
    expect(unpinnedImageReason("harbor.example.org:5000/dare/api:2.1.0")).toBeUndefined();
    expect(unpinnedImageReason(`ghcr.io/dare/api@sha256:${"a".repeat(64)}`)).toBeUndefined();
  });

  it("rejects a workload with a latest image and accepts a pinned one", () => {
    expect(pinnedImages("kubernetes:apps/v1:Deployment", deployment({ image: "dare/api:latest" }))).toHaveLength(1);
    expect(pinnedImages("kubernetes:apps/v1:Deployment", deployment({ image: "dare/api:2.1.0" }))).toEqual([]);
  });

  it("rejects tag latest and a tagless image string in Helm values", () => {
    const problems = pinnedImages(
      "kubernetes:helm.sh/v3:Release",
      release({ image: { tag: "latest" }, sidecar: { image: "kiwigrid/k8s-sidecar" } }),
    );
    expect(problems).toEqual([expect.stringContaining("image.tag"), expect.stringContaining("sidecar.image")]);
    expect(pinnedImages("kubernetes:helm.sh/v3:Release", release({ image: { repository: "grafana/grafana", tag: "12.1.0" } }))).toEqual([]);
  });
});

describe("no-world-open-security-group-rules", () => {
  const rule = (over: Record<string, unknown>) => ({ direction: "ingress", protocol: "tcp", securityGroupId: "sg", ...over });
  const check = (props: Record<string, unknown>) => noWorldOpenSecurityGroupRules("openstack:networking/secGroupRule:SecGroupRule", props);

  it("rejects SSH, a port range and any protocol open to 0.0.0.0/0 or ::/0", () => {
    expect(check(rule({ remoteIpPrefix: "0.0.0.0/0", portRangeMin: 22, portRangeMax: 22 }))).toHaveLength(1);
    expect(check(rule({ remoteIpPrefix: "::/0", portRangeMin: 6443, portRangeMax: 6443 }))).toHaveLength(1);
    expect(check(rule({ remoteIpPrefix: "0.0.0.0/0", portRangeMin: 80, portRangeMax: 443 }))).toHaveLength(1);
    expect(check({ direction: "ingress", remoteIpPrefix: "0.0.0.0/0" })).toHaveLength(1);
  });

  it("treats a rule with neither remote prefix nor remote group as open to the world", () => {
    expect(check(rule({ portRangeMin: 22, portRangeMax: 22 }))).toHaveLength(1);
  });

  it("accepts 80 and 443 from the world, anything from an admin CIDR or a group, and egress", () => {
    expect(check(rule({ remoteIpPrefix: "0.0.0.0/0", portRangeMin: 443, portRangeMax: 443 }))).toEqual([]);
    expect(check(rule({ remoteIpPrefix: "::/0", portRangeMin: 80, portRangeMax: 80 }))).toEqual([]);
    expect(check(rule({ remoteIpPrefix: "192.0.2.0/24", portRangeMin: 22, portRangeMax: 22 }))).toEqual([]);
    expect(check(rule({ remoteGroupId: "sg-nodes", portRangeMin: 10250, portRangeMax: 10250 }))).toEqual([]);
    expect(check({ direction: "egress", remoteIpPrefix: "0.0.0.0/0" })).toEqual([]);
  });

  it("checks the inline rules of a compute security group", () => {
    const group = {
      rules: [
        { cidr: "0.0.0.0/0", ipProtocol: "tcp", fromPort: 443, toPort: 443 },
        { cidr: "0.0.0.0/0", ipProtocol: "tcp", fromPort: 22, toPort: 22 },
      ],
    };
    expect(noWorldOpenSecurityGroupRules("openstack:compute/secGroup:SecGroup", group)).toEqual([expect.stringContaining("rules[1]")]);
  });
});

describe("pinned-helm-releases", () => {
  const check = (version: unknown) => pinnedHelmReleases("kubernetes:helm.sh/v3:Release", { ...release({}), version });
  it("rejects a missing version and version ranges", () => {
    for (const version of [undefined, "", "^1.2.0", "~1.2", "1.x", ">=1.0.0", "*"]) expect(check(version)).toHaveLength(1);
  });
  it("accepts an exact version, with or without v and pre-release", () => {
    for (const version of ["1.2.3", "v1.17.2", "0.1.0-rc.1"]) expect(check(version)).toEqual([]);
  });
  it("ignores resources that are not Helm releases", () => {
    expect(pinnedHelmReleases("kubernetes:core/v1:Service", {})).toEqual([]);
  });
});

describe("secrets-marked-secret", () => {
  it("rejects credentials in a ConfigMap and accepts ordinary settings", () => {
    const configMap = { data: { "admin-password": "hunter2", "tls.key": "-----BEGIN RSA PRIVATE KEY-----\nabc", "log-level": "info" } };
    const problems = secretsMarkedSecret("kubernetes:core/v1:ConfigMap", configMap);
    expect(problems).toEqual([expect.stringContaining("admin-password"), expect.stringContaining("tls.key")]);
    expect(secretsMarkedSecret("kubernetes:core/v1:ConfigMap", { data: { "log-level": "info" } })).toEqual([]);
  });

  it("rejects a literal password env var and accepts secretKeyRef and references to a Secret's name", () => {
    const literal = deployment({
      env: [
        { name: "DB_PASSWORD", value: "hunter2" },
        { name: "LOG_LEVEL", value: "info" },
      ],
    });
    expect(secretsMarkedSecret("kubernetes:apps/v1:Deployment", literal)).toEqual([expect.stringContaining("DB_PASSWORD")]);
    const fromSecret = deployment({
      env: [
        { name: "DB_PASSWORD", valueFrom: { secretKeyRef: { name: "db", key: "password" } } },
        { name: "PASSWORD_FILE", value: "/run/secrets/pw" },
      ],
    });
    expect(secretsMarkedSecret("kubernetes:apps/v1:Deployment", fromSecret)).toEqual([]);
  });

  describe("with secretness visible (a render dir)", () => {
    const isSecret = (v: unknown) => v === "[secret]";
    it("rejects a Kubernetes Secret whose value is plain text", () => {
      const secret = { metadata: { name: "db" }, stringData: { password: "hunter2", user: "[secret]" } };
      expect(secretsMarkedSecret("kubernetes:core/v1:Secret", secret, isSecret)).toEqual([expect.stringContaining("stringData.password")]);
      expect(secretsMarkedSecret("kubernetes:core/v1:Secret", { data: { password: "[secret]" } }, isSecret)).toEqual([]);
      // the whole map made secret at once
      expect(secretsMarkedSecret("kubernetes:core/v1:Secret", { stringData: "[secret]" }, isSecret)).toEqual([]);
    });
    it("rejects a plain-text credential in Helm values but not existingSecret (a Secret's name)", () => {
      const plain = release({ adminPassword: "hunter2", admin: { existingSecret: "grafana-admin" } });
      expect(secretsMarkedSecret("kubernetes:helm.sh/v3:Release", plain, isSecret)).toEqual([expect.stringContaining("adminPassword")]);
      expect(secretsMarkedSecret("kubernetes:helm.sh/v3:Release", release({ adminPassword: "[secret]" }), isSecret)).toEqual([]);
    });
    it("rejects a plain application credential secret", () => {
      const type = "openstack:identity/applicationCredential:ApplicationCredential";
      expect(secretsMarkedSecret(type, { name: "ccm", secret: "plain" }, isSecret)).toHaveLength(1);
      expect(secretsMarkedSecret(type, { name: "ccm", secret: "[secret]" }, isSecret)).toEqual([]);
    });
    it("does not check values when the caller cannot see secretness (the pack)", () => {
      expect(secretsMarkedSecret("kubernetes:core/v1:Secret", { stringData: { password: "hunter2" } })).toEqual([]);
    });
  });
});
