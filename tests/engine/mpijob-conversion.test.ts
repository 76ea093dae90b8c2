/**
 * The MPIJob conversion webhook against a REAL kube-apiserver (tests/engine/apiserver.ts): the MPIJob CRD of
 * mpi-operator v0.8.2 (../shared/crds/mpi-operator/v0.8.2) transformed by `withV1alpha1Conversion` exactly as
 * the program renders it, except that the API server calls the real webhook script
 * (components/dare-services/mpijob-conversion/webhook.js) running under local Node over HTTPS on 127.0.0.1, and DARE's
 * exec-api's exact kubeflow.org/v1alpha1 body is created, read, listed and deleted the way exec-api does
 * (CustomObjectsApi, group kubeflow.org, version v1alpha1). What the operator v0.8.2 will see is read back
 * at kubeflow.org/v2beta1, the storage version.
 *
 * tests/components/dare-services/mpijob-conversion.test.ts checks the script's ConversionReviews on their own; this file checks what
 * only a real API server shows: that it calls the webhook at all, which version's schema validates a write,
 * the defaults it applies on read, pruning, metadata rules, LIST and DELETE through conversion, and that it
 * fails closed without the webhook.
 */
import { ChildProcess } from "child_process";
import * as fs from "fs";
import * as https from "https";
import * as os from "os";
import * as path from "path";
import * as YAML from "yaml";
import {
  DEPRECATION_WARNING,
  MPIJOB_CRD_NAME,
  WEBHOOK_SCRIPT_FILE,
  withV1alpha1Conversion,
} from "../../components/dare-services/mpijob-conversion";
import { sharedDir } from "../../tools/validate/shared";
import { ApiServer, startApiServer, waitFor } from "./apiserver";
import {
  execApiBody,
  expectExecApiPods,
  makeTestCertificates,
  startWebhook,
  stopWebhook,
  V1ALPHA1,
  V2BETA1,
} from "../support/mpijob-webhook";

jest.setTimeout(180_000);
// The webhook is the plain JavaScript file its ConfigMap ships: loaded as it runs there.
// eslint-disable-next-line @typescript-eslint/no-require-imports
const webhook = require(WEBHOOK_SCRIPT_FILE);

const NS = "dare";
const at = (version: "v1alpha1" | "v2beta1", name?: string) =>
  `/apis/kubeflow.org/${version}/namespaces/${NS}/mpijobs${name ? `/${name}` : ""}`;

const nativeJob = {
  apiVersion: V2BETA1,
  kind: "MPIJob",
  metadata: { name: "pi" },
  spec: {
    slotsPerWorker: 2,
    runPolicy: { cleanPodPolicy: "All", ttlSecondsAfterFinished: 60 },
    sshAuthMountPath: "/home/mpiuser/.ssh",
    mpiImplementation: "OpenMPI",
    launcherCreationPolicy: "AtStartup",
    mpiReplicaSpecs: {
      Launcher: {
        replicas: 1,
        restartPolicy: "OnFailure",
        template: {
          spec: { containers: [{ name: "l", image: "mpioperator/mpi-pi:openmpi", command: ["mpirun", "-n", "4", "/home/mpiuser/pi"] }] },
        },
      },
      Worker: {
        replicas: 2,
        restartPolicy: "Never",
        template: { spec: { containers: [{ name: "w", image: "mpioperator/mpi-pi:openmpi", command: ["/usr/sbin/sshd", "-De"] }] } },
      },
    },
  },
};

// ---- processes ----
let server: ApiServer;
let dir: string;
let caPem: string;
let hook: ChildProcess | undefined;
let hookPort: number;
let hookOutput = "";
const timings: string[] = [];

/** The ConversionReviews the webhook answered so far (its JSON log lines with a uid). */
function reviewsLogged(): { desiredAPIVersion: string; objects: number; result: string; message?: string }[] {
  return hookOutput
    .split("\n")
    .filter((l) => l.startsWith("{"))
    .map((l) => JSON.parse(l))
    .filter((l) => "uid" in l);
}

async function ok(method: string, p: string, body?: unknown): Promise<any> {
  const res = await server.request(method, p, body);
  if (res.status >= 300) throw new Error(`${method} ${p}: ${res.status} ${JSON.stringify(res.json)}`);
  return res.json;
}

/** A request as the admin that also returns the response headers (ApiServer.request does not). */
function requestWithHeaders(
  method: string,
  p: string,
  body?: unknown,
): Promise<{ status: number; headers: Record<string, string | string[] | undefined>; json: any }> {
  const data = body === undefined ? undefined : Buffer.from(JSON.stringify(body));
  return new Promise((resolve, reject) => {
    const req = https.request(
      `${server.url}${p}`,
      {
        method,
        ca: fs.readFileSync(server.caFile),
        cert: fs.readFileSync(server.certFile),
        key: fs.readFileSync(server.keyFile),
        agent: false,
        headers: { accept: "application/json", ...(data ? { "content-type": "application/json", "content-length": data.length } : {}) },
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on("data", (c: Buffer) => chunks.push(c));
        res.on("end", () => {
          const text = Buffer.concat(chunks).toString("utf8");
          let json: any = text;
          try {
            json = JSON.parse(text);
          } catch {
            /* keep the text */
          }
          resolve({ status: res.statusCode ?? 0, headers: res.headers, json });
        });
      },
    );
    req.on("error", reject);
    req.end(data);
  });
}

/**
 * The CRD as the program renders it (the upstream CRD through `withV1alpha1Conversion` with the webhook
 * reference MpiJobConversion gives: the in-cluster Service and the cert-manager Certificate), with ONE
 * difference: `spec.conversion.webhook.clientConfig` is the local webhook's URL and the test CA, because
 * the API server here cannot reach an in-cluster Service and no cainjector fills in `caBundle`.
 */
function renderedCrdForLocalWebhook(): any {
  const upstream = YAML.parse(
    fs.readFileSync(path.join(sharedDir(), "crds", "mpi-operator", "v0.8.2", "kubeflow.org_mpijobs.yaml"), "utf8"),
  );
  const crd = withV1alpha1Conversion(upstream, {
    service: { namespace: "mpi-operator", name: "mpijob-conversion", port: 443, path: "/convert" },
    certificate: "mpi-operator/mpijob-conversion",
  });
  expect(crd.spec.conversion.webhook.clientConfig).toEqual({
    service: { namespace: "mpi-operator", name: "mpijob-conversion", port: 443, path: "/convert" },
  });
  crd.spec.conversion.webhook.clientConfig = {
    url: `https://127.0.0.1:${hookPort}/convert`,
    caBundle: Buffer.from(caPem).toString("base64"),
  };
  return crd;
}

/** The API server's refusal of the CRD exactly as rendered (undefined: it was accepted). */
let renderedRefusal: string | undefined;

beforeAll(async () => {
  const t0 = Date.now();
  dir = fs.mkdtempSync(path.join(os.tmpdir(), "mpijob-conversion-engine-"));
  const files = makeTestCertificates(dir);
  caPem = fs.readFileSync(files.caFile, "utf8");
  const [started, api] = await Promise.all([
    startWebhook(files, (out) => {
      hookOutput += out;
    }),
    startApiServer(),
  ]);
  hook = started.child;
  hookPort = started.port;
  server = api;
  timings.push(`webhook + kube-apiserver ${server.version} ready: ${Date.now() - t0} ms`);

  const t1 = Date.now();
  const rendered = renderedCrdForLocalWebhook();
  const dryRun = await server.request("POST", "/apis/apiextensions.k8s.io/v1/customresourcedefinitions?dryRun=All", rendered);
  renderedRefusal = dryRun.status === 201 ? undefined : `${dryRun.status} ${dryRun.json?.message ?? JSON.stringify(dryRun.json)}`;
  // The first test reports a refusal; the others need the CRD.
  if (!renderedRefusal) await ok("POST", "/apis/apiextensions.k8s.io/v1/customresourcedefinitions", rendered);
  await waitFor("the MPIJob CRD to be Established", async () => {
    const crd = await ok("GET", `/apis/apiextensions.k8s.io/v1/customresourcedefinitions/${MPIJOB_CRD_NAME}`);
    return (crd.status?.conditions ?? []).some((c: any) => c.type === "Established" && c.status === "True") ? true : undefined;
  });
  await ok("POST", "/api/v1/namespaces", { apiVersion: "v1", kind: "Namespace", metadata: { name: NS } });
  // Both versions are served once discovery lists them (Established comes a moment before the handlers).
  for (const v of ["v1alpha1", "v2beta1"]) {
    await waitFor(`kubeflow.org/${v} to be served`, async () =>
      (await server.request("GET", at(v as "v1alpha1"))).status === 200 ? true : undefined,
    );
  }
  timings.push(`CRD established and served at both versions: ${Date.now() - t1} ms`);
});

afterAll(async () => {
  await stopWebhook(hook);
  await server?.stop();
  if (dir) fs.rmSync(dir, { recursive: true, force: true });
  console.log(timings.join("\n"));
});

describe("the CRD as rendered (upstream v0.8.2 + withV1alpha1Conversion)", () => {
  it("is accepted by kube-apiserver as it is (only the webhook's clientConfig differs)", () => {
    expect(renderedRefusal).toBeUndefined();
  });

  it("is accepted with v1alpha1 served, deprecated, not stored, and webhook conversion", async () => {
    const crd = await ok("GET", `/apis/apiextensions.k8s.io/v1/customresourcedefinitions/${MPIJOB_CRD_NAME}`);
    const versions = Object.fromEntries(crd.spec.versions.map((v: any) => [v.name, v]));
    expect(versions.v2beta1).toMatchObject({ served: true, storage: true });
    expect(versions.v1alpha1).toMatchObject({ served: true, storage: false, deprecated: true, deprecationWarning: DEPRECATION_WARNING });
    expect(crd.spec.conversion.strategy).toBe("Webhook");
    expect(crd.spec.conversion.webhook.conversionReviewVersions).toEqual(["v1"]);
    expect(crd.metadata.annotations["cert-manager.io/inject-ca-from"]).toBe("mpi-operator/mpijob-conversion");
    // A structural schema: no NonStructuralSchema condition.
    expect((crd.status.conditions ?? []).filter((c: any) => c.type === "NonStructuralSchema")).toEqual([]);
    const discovery = await ok("GET", "/apis/kubeflow.org/v1alpha1");
    expect(discovery.resources.map((r: any) => r.name)).toEqual(expect.arrayContaining(["mpijobs", "mpijobs/status"]));
  });
});

describe("exec-api's v1alpha1 MPIJob through the real API server", () => {
  let created: { status: number; headers: Record<string, string | string[] | undefined>; json: any };
  let stored: any;

  beforeAll(async () => {
    const reviewsBefore = reviewsLogged().length;
    created = await requestWithHeaders("POST", at("v1alpha1"), execApiBody(3));
    stored = (await server.request("GET", at("v2beta1", "d4p-openmpi"))).json;
    timings.push(`create at v1alpha1: ${reviewsLogged().length - reviewsBefore} ConversionReview(s) answered by the webhook`);
  });

  it("creates it at v1alpha1 (201), with the deprecation warning, and answers at v1alpha1", () => {
    expect({ status: created.status, message: created.json?.message }).toEqual({ status: 201, message: undefined });
    expect(String(created.headers.warning)).toContain(DEPRECATION_WARNING);
    expect(created.json.apiVersion).toBe(V1ALPHA1);
    expect(created.json.spec).toEqual(execApiBody(3).spec);
  });

  it("went through the webhook: the API server sent it ConversionReviews to v2beta1 and back, all Success", () => {
    const reviews = reviewsLogged();
    expect(reviews.some((r) => r.desiredAPIVersion === V2BETA1)).toBe(true);
    expect(reviews.some((r) => r.desiredAPIVersion === V1ALPHA1)).toBe(true);
    expect(reviews.filter((r) => r.result !== "Success")).toEqual([]);
  });

  it("is stored as a kubeflow.org/v2beta1 MPIJob operator v0.8.2 can run: one launcher, `replicas` workers", () => {
    expect(stored.apiVersion).toBe(V2BETA1);
    expect(stored.kind).toBe("MPIJob");
    expect(stored.metadata.name).toBe("d4p-openmpi");
    expect(stored.metadata.namespace).toBe(NS);
    const { Launcher, Worker, ...others } = stored.spec.mpiReplicaSpecs;
    expect(others).toEqual({});
    expect(Launcher.replicas).toBe(1);
    expect(Worker.replicas).toBe(3);
    expect(Launcher.restartPolicy).toBe("OnFailure");
    expect(Worker.restartPolicy).toBe("Never");
    expect(stored.spec.slotsPerWorker).toBe(1);
    expect(stored.spec.sshAuthMountPath).toBe("/home/mpiuser/.ssh");
    expect(stored.spec.mpiImplementation).toBe("OpenMPI");
    expect(stored.spec.launcherCreationPolicy).toBe("WaitForWorkersReady");
    // cleanPodPolicy as converted; the API server's read (storage-version defaults) may add more to runPolicy.
    expect(stored.spec.runPolicy).toMatchObject({ cleanPodPolicy: "Running" });
    // The original v1alpha1 spec rides in the annotation.
    expect(JSON.parse(stored.metadata.annotations[webhook.ANNOTATION_V1ALPHA1_SPEC])).toEqual(execApiBody(3).spec);
  });

  it("passes exec-api's image and environment (D4P_RUN_DATA etc.) to both; the launcher keeps the image's command, the workers run sshd", () => {
    expectExecApiPods(stored.spec);
    expect(stored.spec.mpiReplicaSpecs.Worker.template.spec.containers[0].command).toEqual(webhook.WORKER_COMMAND);
  });

  it("mounts the dare-sfs claim at /home/mpiuser/sfs instead of the Rook flexVolume", () => {
    for (const r of Object.values<any>(stored.spec.mpiReplicaSpecs)) {
      expect(r.template.spec.volumes).toEqual([{ name: "sfs", persistentVolumeClaim: { claimName: "dare-sfs" } }]);
      expect(r.template.spec.containers[0].volumeMounts).toEqual([{ name: "sfs", mountPath: "/home/mpiuser/sfs" }]);
    }
    expect(JSON.stringify(stored.spec)).not.toMatch(/flexVolume|ceph\.rook\.io/);
  });

  it("passes the API server's own v2beta1 schema validation (a dry-run create of the stored spec at v2beta1)", async () => {
    // A write at v1alpha1 is validated against the v1alpha1 schema only: the converted object the server
    // stores is not validated against v2beta1. A create at v2beta1 is, so the stored spec is sent again as one.
    const res = await server.request("POST", `${at("v2beta1")}?dryRun=All`, {
      apiVersion: V2BETA1,
      kind: "MPIJob",
      metadata: { name: "d4p-openmpi-revalidated" },
      spec: stored.spec,
    });
    expect({ status: res.status, message: res.json?.message }).toEqual({ status: 201, message: undefined });
    expect(res.json.spec.mpiReplicaSpecs).toEqual(stored.spec.mpiReplicaSpecs);
  });

  it("reads back at v1alpha1 as exactly the spec exec-api sent", async () => {
    const got = await ok("GET", at("v1alpha1", "d4p-openmpi"));
    expect(got.apiVersion).toBe(V1ALPHA1);
    expect(got.kind).toBe("MPIJob");
    expect(got.spec).toEqual(execApiBody(3).spec);
    // The webhook's bookkeeping annotations are not shown to a v1alpha1 client.
    expect(got.metadata.annotations ?? {}).toEqual({});
    expect(got.metadata.uid).toBe(stored.metadata.uid);
    expect(got.metadata.resourceVersion).toBe(stored.metadata.resourceVersion);
    expect(got.status).toBeUndefined();
  });

  it("lists at v1alpha1 (and at v2beta1)", async () => {
    const list = await ok("GET", at("v1alpha1"));
    expect(list.apiVersion).toBe(V1ALPHA1);
    expect(list.kind).toBe("MPIJobList");
    const item = list.items.find((i: any) => i.metadata.name === "d4p-openmpi");
    expect(item.apiVersion).toBe(V1ALPHA1);
    expect(item.spec).toEqual(execApiBody(3).spec);
    const all = await ok("GET", "/apis/kubeflow.org/v1alpha1/mpijobs");
    expect(all.items.map((i: any) => `${i.metadata.namespace}/${i.metadata.name}`)).toContain("dare/d4p-openmpi");
    const v2 = await ok("GET", at("v2beta1"));
    expect(v2.items.find((i: any) => i.metadata.name === "d4p-openmpi").spec.mpiReplicaSpecs.Worker.replicas).toBe(3);
  });

  it("shows the operator's v2beta1 status to a v1alpha1 reader as launcherStatus", async () => {
    const current = await ok("GET", at("v2beta1", "d4p-openmpi"));
    const status = {
      conditions: [
        {
          type: "Created",
          status: "True",
          reason: "MPIJobCreated",
          message: "created",
          lastTransitionTime: "2026-08-20T10:00:01Z",
          lastUpdateTime: "2026-08-20T10:00:01Z",
        },
      ],
      replicaStatuses: { Launcher: { active: 1 }, Worker: { active: 3 } },
      startTime: "2026-08-20T10:00:01Z",
    };
    const updated = await ok("PUT", `${at("v2beta1", "d4p-openmpi")}/status`, { ...current, status });
    expect(updated.status).toMatchObject(status);
    const got = await ok("GET", at("v1alpha1", "d4p-openmpi"));
    expect(got.status).toEqual({ launcherStatus: "Active", workerReplicas: 3 });
    expect(got.spec).toEqual(execApiBody(3).spec);
    // The v2beta1 status is untouched by the read at v1alpha1.
    expect((await ok("GET", at("v2beta1", "d4p-openmpi"))).status).toMatchObject(status);
  });

  it("deletes at v1alpha1 (exec-api's call): 200, and it is gone at v2beta1", async () => {
    const res = await server.request("DELETE", at("v1alpha1", "d4p-openmpi"), {
      apiVersion: "v1",
      kind: "DeleteOptions",
      propagationPolicy: "Background",
    });
    expect({ status: res.status, message: res.json?.message }).toEqual({ status: 200, message: undefined });
    expect((await server.request("GET", at("v2beta1", "d4p-openmpi"))).status).toBe(404);
    expect((await server.request("GET", at("v1alpha1", "d4p-openmpi"))).status).toBe(404);
  });
});

describe("a job created at v2beta1", () => {
  it("is readable at v1alpha1 (best effort: workers and the launcher's template) and unchanged at v2beta1", async () => {
    const created = await ok("POST", at("v2beta1"), nativeJob);
    const old = await ok("GET", at("v1alpha1", "pi"));
    expect(old.apiVersion).toBe(V1ALPHA1);
    expect(old.spec.replicas).toBe(2);
    expect(old.spec.template.spec.containers[0]).toMatchObject(nativeJob.spec.mpiReplicaSpecs.Launcher.template.spec.containers[0]);
    // The v2beta1 spec rides along in an annotation so that a write at v1alpha1 can restore it.
    expect(JSON.parse(old.metadata.annotations[webhook.ANNOTATION_V2BETA1_STATE]).spec).toEqual(created.spec);
    const list = await ok("GET", at("v1alpha1"));
    expect(list.items.map((i: any) => i.metadata.name)).toContain("pi");
    expect((await ok("GET", at("v2beta1", "pi"))).spec).toEqual(created.spec);
  });

  it("survives an update written back at v1alpha1 unchanged (a label added, as kubectl label would)", async () => {
    const before = await ok("GET", at("v2beta1", "pi"));
    const old = await ok("GET", at("v1alpha1", "pi"));
    old.metadata.labels = { ...(old.metadata.labels ?? {}), touched: "v1alpha1" };
    await ok("PUT", at("v1alpha1", "pi"), old);
    const now = await ok("GET", at("v2beta1", "pi"));
    expect(now.metadata.labels).toEqual({ touched: "v1alpha1" });
    expect(now.spec).toEqual(before.spec);
    expect(now.spec.mpiReplicaSpecs).toMatchObject(nativeJob.spec.mpiReplicaSpecs);
    expect(now.spec.launcherCreationPolicy).toBe("AtStartup");
    expect(now.spec.slotsPerWorker).toBe(2);
    expect(now.metadata.annotations?.[webhook.ANNOTATION_V2BETA1_STATE]).toBeUndefined();
    await ok("DELETE", at("v2beta1", "pi"));
  });
});

describe("a v1alpha1 job the webhook cannot convert", () => {
  it("is refused by the API server with the webhook's message, and nothing is stored", async () => {
    const both = execApiBody(2);
    both.metadata.name = "both";
    both.spec.gpus = 2;
    const res = await server.request("POST", at("v1alpha1"), both);
    expect(res.status).toBeGreaterThanOrEqual(400);
    expect(res.json.message).toContain("exactly one of replicas and gpus");
    expect((await server.request("GET", at("v2beta1", "both"))).status).toBe(404);
  });
});

describe("the API server's own schemas at both versions (what the unit tests' CRD validator guessed at)", () => {
  it("refuses a v1alpha1 field 0.1.0 did not have (strict field validation)", async () => {
    const typo = execApiBody(2) as any;
    typo.metadata.name = "typo";
    typo.spec.replica = 3;
    const res = await server.request("POST", `${at("v1alpha1")}?dryRun=All&fieldValidation=Strict`, typo);
    expect({ status: res.status, message: res.json?.message }).toEqual({
      status: 400,
      message: expect.stringContaining('unknown field "spec.replica"'),
    });
  });

  it("stores a gpus job as valid v2beta1 (one worker per GPU), and refuses a typo in a v2beta1 replica spec", async () => {
    const gpus = execApiBody() as any;
    delete gpus.spec.replicas;
    gpus.metadata.name = "gpus";
    gpus.spec = { ...gpus.spec, gpus: 2, launcherOnMaster: true, backoffLimit: 2 };
    const res = await server.request("POST", `${at("v1alpha1")}?dryRun=All&fieldValidation=Strict`, gpus);
    expect({ status: res.status, message: res.json?.message }).toEqual({ status: 201, message: undefined });
    const typo = JSON.parse(JSON.stringify({ ...nativeJob, metadata: { name: "typo-v2" } }));
    typo.spec.mpiReplicaSpecs.Worker.replica = 2;
    const refused = await server.request("POST", `${at("v2beta1")}?dryRun=All&fieldValidation=Strict`, typo);
    expect({ status: refused.status, message: refused.json?.message }).toEqual({
      status: 400,
      message: expect.stringContaining('unknown field "spec.mpiReplicaSpecs.Worker.replica"'),
    });
  });
});

describe("without the webhook", () => {
  it("the API server fails closed: a v1alpha1 create is refused, v2beta1 keeps working", async () => {
    await stopWebhook(hook);
    const res = await server.request("POST", at("v1alpha1"), execApiBody(3));
    expect(res.status).toBeGreaterThanOrEqual(500);
    expect(res.json.message).toMatch(/conversion webhook/);
    const v2 = await server.request("POST", at("v2beta1"), { ...nativeJob, metadata: { name: "pi-without-webhook" } });
    expect(v2.status).toBe(201);
    expect((await server.request("GET", at("v2beta1", "d4p-openmpi"))).status).toBe(404);
    timings.push(`without the webhook: ${res.status} ${res.json.message}`);
  });
});
