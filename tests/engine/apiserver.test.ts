/**
 * The real kube-apiserver and etcd of the engine tier (tests/engine/apiserver.ts): the pinned Kubernetes
 * version, an upstream CRD established and enforced, Pod Security admission, a kubeconfig that works.
 */
import * as fs from "fs";
import * as https from "https";
import * as path from "path";
import * as YAML from "yaml";
import { defaultOf } from "../../lib/config-keys";
import { sharedDir } from "../../tools/validate/shared";
import { ApiServer, startApiServer, waitFor } from "./apiserver";

jest.setTimeout(180_000);

let server: ApiServer;
beforeAll(async () => {
  server = await startApiServer();
});
afterAll(() => server?.stop());

async function ok(method: string, p: string, body?: unknown) {
  const res = await server.request(method, p, body);
  if (res.status >= 300) throw new Error(`${method} ${p}: ${res.status} ${JSON.stringify(res.json)}`);
  return res.json;
}

it("is the Kubernetes version the program pins", async () => {
  expect(server.version).toBe(`v${defaultOf("kubernetesVersion")}`);
  const version = await ok("GET", "/version");
  expect(version.gitVersion).toBe(server.version);
  expect(`${version.major}.${version.minor}`).toBe(defaultOf("kubernetesVersion").split(".").slice(0, 2).join("."));
});

it("admits the admin of its kubeconfig and nobody without a certificate", async () => {
  const config = YAML.parse(fs.readFileSync(server.kubeconfigPath, "utf8"));
  const context = config.contexts.find((c: { name: string }) => c.name === config["current-context"]).context;
  const cluster = config.clusters.find((c: { name: string }) => c.name === context.cluster).cluster;
  const user = config.users.find((u: { name: string }) => u.name === context.user).user;
  const b64 = (s: string) => Buffer.from(s, "base64");
  const get = (p: string, withCert: boolean) =>
    new Promise<{ status: number; body: string }>((resolve, reject) => {
      https
        .get(
          `${cluster.server}${p}`,
          {
            ca: b64(cluster["certificate-authority-data"]),
            ...(withCert ? { cert: b64(user["client-certificate-data"]), key: b64(user["client-key-data"]) } : {}),
            agent: false,
          },
          (res) => {
            let body = "";
            res.on("data", (d) => {
              body += d;
            });
            res.on("end", () => resolve({ status: res.statusCode ?? 0, body }));
          },
        )
        .on("error", reject);
    });
  expect(cluster.server).toBe(server.url);
  const admin = await get("/api/v1/namespaces/kube-system/secrets", true);
  expect(admin.status).toBe(200);
  // Anonymous requests are authenticated as system:anonymous, which RBAC allows nothing of this.
  const anonymous = await get("/api/v1/namespaces/kube-system/secrets", false);
  expect(anonymous.status).toBe(403);
  // The identity the server sees: the admin certificate's subject, in system:masters.
  const review = await ok("POST", "/apis/authentication.k8s.io/v1/selfsubjectreviews", {
    apiVersion: "authentication.k8s.io/v1",
    kind: "SelfSubjectReview",
  });
  expect(review.status.userInfo.username).toBe("dare-test-admin");
  expect(review.status.userInfo.groups).toContain("system:masters");
});

describe("an upstream CRD (mpi-operator v0.8.2 MPIJob)", () => {
  const crdFile = path.join(sharedDir(), "crds", "mpi-operator", "v0.8.2", "kubeflow.org_mpijobs.yaml");
  const mpiJobs = "/apis/kubeflow.org/v2beta1/namespaces/default/mpijobs";
  const launcher = { replicas: 1, template: { spec: { containers: [{ name: "launcher", image: "registry.example/mpi:1" }] } } };

  beforeAll(async () => {
    const crd = YAML.parse(fs.readFileSync(crdFile, "utf8"));
    await ok("POST", "/apis/apiextensions.k8s.io/v1/customresourcedefinitions", crd);
  });

  it("becomes Established", async () => {
    const conditions = await waitFor("mpijobs.kubeflow.org to be Established", async () => {
      const crd = await ok("GET", "/apis/apiextensions.k8s.io/v1/customresourcedefinitions/mpijobs.kubeflow.org");
      const cs: { type: string; status: string }[] = crd.status?.conditions ?? [];
      return cs.some((c) => c.type === "Established" && c.status === "True") ? cs : undefined;
    });
    expect(conditions).toEqual(expect.arrayContaining([expect.objectContaining({ type: "NamesAccepted", status: "True" })]));
    // Discovery is updated after the condition is set (the API server's discovery controller runs on its own).
    const discovery = await waitFor("kubeflow.org/v2beta1 in discovery", async () => {
      const res = await server.request("GET", "/apis/kubeflow.org/v2beta1");
      return res.status === 404 ? undefined : res;
    });
    expect(discovery.status).toBe(200);
    expect(discovery.json.resources.map((r: { name: string }) => r.name)).toContain("mpijobs");
  });

  it("serves MPIJobs with the CRD's schema: defaults applied, invalid ones refused", async () => {
    // The resource may take a moment to be served after Established.
    const created = await waitFor("an MPIJob to be created", async () => {
      const res = await server.request("POST", mpiJobs, {
        apiVersion: "kubeflow.org/v2beta1",
        kind: "MPIJob",
        metadata: { name: "valid" },
        spec: { mpiReplicaSpecs: { Launcher: launcher } },
      });
      if (res.status === 404 || res.status === 503) return undefined;
      return res;
    });
    expect(created.status).toBe(201);
    expect(created.json.spec.slotsPerWorker).toBe(1);

    const wrongType = await server.request("POST", mpiJobs, {
      apiVersion: "kubeflow.org/v2beta1",
      kind: "MPIJob",
      metadata: { name: "wrong-type" },
      spec: { slotsPerWorker: "two", mpiReplicaSpecs: { Launcher: launcher } },
    });
    expect(wrongType.status).toBe(422);
    expect(JSON.stringify(wrongType.json)).toContain("slotsPerWorker");

    const missing = await server.request("POST", mpiJobs, {
      apiVersion: "kubeflow.org/v2beta1",
      kind: "MPIJob",
      metadata: { name: "missing" },
      spec: {},
    });
    expect(missing.status).toBe(422);
    expect(JSON.stringify(missing.json)).toContain("mpiReplicaSpecs");
  });
});

describe("Pod Security admission", () => {
  const pod = (name: string, privileged: boolean) => ({
    apiVersion: "v1",
    kind: "Pod",
    metadata: { name },
    spec: privileged
      ? { containers: [{ name: "c", image: "registry.example/app:1", securityContext: { privileged: true } }] }
      : {
          securityContext: { runAsNonRoot: true, runAsUser: 1000, seccompProfile: { type: "RuntimeDefault" } },
          containers: [
            {
              name: "c",
              image: "registry.example/app:1",
              securityContext: { allowPrivilegeEscalation: false, capabilities: { drop: ["ALL"] } },
            },
          ],
        },
  });

  /** A namespace with these labels and its `default` ServiceAccount (no controller manager makes it here). */
  async function namespace(name: string, labels: Record<string, string>) {
    await ok("POST", "/api/v1/namespaces", { apiVersion: "v1", kind: "Namespace", metadata: { name, labels } });
    await ok("POST", `/api/v1/namespaces/${name}/serviceaccounts`, {
      apiVersion: "v1",
      kind: "ServiceAccount",
      metadata: { name: "default" },
    });
  }

  beforeAll(async () => {
    await namespace("psa-restricted", { "pod-security.kubernetes.io/enforce": "restricted" });
    await namespace("psa-unlabelled", {});
  });

  it("refuses a privileged Pod in a namespace that enforces restricted", async () => {
    const res = await server.request("POST", "/api/v1/namespaces/psa-restricted/pods", pod("privileged", true));
    expect(res.status).toBe(403);
    expect(res.json.message).toMatch(/violates PodSecurity "restricted:latest"/);
    expect(res.json.message).toMatch(/privileged/);
  });

  it("admits a Pod that meets restricted there", async () => {
    const res = await server.request("POST", "/api/v1/namespaces/psa-restricted/pods", pod("restricted", false));
    expect(res.status).toBe(201);
  });

  it("admits the same privileged Pod where no level is enforced (the refusal is Pod Security's)", async () => {
    const res = await server.request("POST", "/api/v1/namespaces/psa-unlabelled/pods", pod("privileged", true));
    expect(res.status).toBe(201);
  });
});
