/**
 * The MPIJob conversion webhook (components/dare-services/mpijob-conversion/webhook.js), run as it runs in the cluster:
 * the real script under local Node over HTTPS (a test CA and certificate made with openssl), answering
 * ConversionReviews (apiextensions.k8s.io/v1) as the API server sends them, with the exact MPIJob body
 * DARE's exec-api creates at kubeflow.org/v1alpha1. Results are checked against the v2beta1 schema of
 * the upstream v0.8.2 CRD (../shared/crds/mpi-operator/v0.8.2) and against what operator v0.8.2 needs.
 */
import { ChildProcess } from "child_process";
import * as fs from "fs";
import * as https from "https";
import * as os from "os";
import * as path from "path";
import * as YAML from "yaml";
import { SHARED_FS_CLAIM } from "../../../components/dare-services/workloads";
import { WEBHOOK_SCRIPT_FILE, withV1alpha1Conversion } from "../../../components/dare-services/mpijob-conversion";
import { sharedDir } from "../../../tools/validate";
import {
  execApiBody,
  expectExecApiPods,
  makeTestCertificates,
  startWebhook,
  stopWebhook,
  V1ALPHA1,
  V2BETA1,
} from "../../support/mpijob-webhook";

jest.setTimeout(60_000);
// The webhook is the plain JavaScript file its ConfigMap ships: loaded as it runs there.
// eslint-disable-next-line @typescript-eslint/no-require-imports
const webhook = require(WEBHOOK_SCRIPT_FILE);

function asStored(obj: any): any {
  return {
    ...obj,
    metadata: {
      ...obj.metadata,
      uid: "5d4b3f5e-8a56-4b0f-9d2c-5c0f8a1e2b3c",
      resourceVersion: "4711",
      generation: 1,
      creationTimestamp: "2026-08-20T10:00:00Z",
      managedFields: [
        {
          manager: "OpenAPI-Generator",
          operation: "Update",
          apiVersion: obj.apiVersion,
          time: "2026-08-20T10:00:00Z",
          fieldsType: "FieldsV1",
          fieldsV1: { "f:spec": {} },
        },
      ],
    },
  };
}

function reviewOf(desiredAPIVersion: string, objects: unknown[], uid = "0f8a1e2b-1111-2222-3333-444455556666"): any {
  return { kind: "ConversionReview", apiVersion: "apiextensions.k8s.io/v1", request: { uid, desiredAPIVersion, objects } };
}

/** v0.8.2's own checks (pkg/apis/kubeflow/validation/validation.go) on a converted spec. */
function operatorValidation(spec: any): string[] {
  const errors: string[] = [];
  if (!Number.isInteger(spec.slotsPerWorker) || spec.slotsPerWorker < 0) errors.push("slotsPerWorker");
  if (!["None", "Running", "All"].includes(spec.runPolicy?.cleanPodPolicy)) errors.push("runPolicy.cleanPodPolicy");
  if (!spec.sshAuthMountPath) errors.push("sshAuthMountPath");
  if (!["OpenMPI", "Intel", "MPICH"].includes(spec.mpiImplementation)) errors.push("mpiImplementation");
  for (const [type, r] of Object.entries<any>(spec.mpiReplicaSpecs ?? {})) {
    if (!Number.isInteger(r.replicas)) errors.push(`${type}.replicas`);
    if (!["Never", "OnFailure"].includes(r.restartPolicy)) errors.push(`${type}.restartPolicy`);
    if (!(r.template?.spec?.containers?.length > 0)) errors.push(`${type}.containers`);
  }
  if (spec.mpiReplicaSpecs?.Launcher?.replicas !== 1) errors.push("Launcher.replicas must be 1");
  if (!(spec.mpiReplicaSpecs?.Worker?.replicas >= 1)) errors.push("Worker.replicas must be >= 1");
  return errors;
}

let dir: string;
let ca: string;
let server: ChildProcess;
let port: number;
let output = "";

function post(body: string | object, urlPath = "/convert"): Promise<{ status: number; body: any }> {
  const data = typeof body === "string" ? body : JSON.stringify(body);
  return new Promise((resolve, reject) => {
    const req = https.request(
      {
        host: "127.0.0.1",
        port,
        path: urlPath,
        method: "POST",
        ca,
        headers: { "Content-Type": "application/json", "Content-Length": Buffer.byteLength(data) },
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on("data", (c: Buffer) => chunks.push(c));
        res.on("end", () => {
          const text = Buffer.concat(chunks).toString("utf8");
          try {
            resolve({ status: res.statusCode!, body: JSON.parse(text) });
          } catch {
            resolve({ status: res.statusCode!, body: text });
          }
        });
      },
    );
    req.on("error", reject);
    req.end(data);
  });
}

function get(urlPath: string): Promise<number> {
  return new Promise((resolve, reject) => {
    https
      .get({ host: "127.0.0.1", port, path: urlPath, ca }, (res) => {
        res.resume();
        res.on("end", () => resolve(res.statusCode!));
      })
      .on("error", reject);
  });
}

async function convert(desired: string, obj: any): Promise<any> {
  const { status, body } = await post(reviewOf(desired, [obj]));
  expect(status).toBe(200);
  expect(body.response.result).toEqual({ status: "Success" });
  return body.response.convertedObjects[0];
}

beforeAll(async () => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), "mpijob-conversion-"));
  const files = makeTestCertificates(dir);
  ca = fs.readFileSync(files.caFile, "utf8");
  const started = await startWebhook(files, (s) => {
    output += s;
  });
  server = started.child;
  port = started.port;
});

afterAll(async () => {
  await stopWebhook(server);
  fs.rmSync(dir, { recursive: true, force: true });
});

describe("v1alpha1 -> v2beta1: exec-api's job, as operator v0.8.2 runs it", () => {
  let job: any;
  beforeAll(async () => {
    job = await convert(V2BETA1, asStored(execApiBody(3)));
  });

  it("is a kubeflow.org/v2beta1 MPIJob the operator's own validation accepts (the CRD schema: tests/engine/mpijob-conversion.test.ts)", () => {
    expect(job.apiVersion).toBe(V2BETA1);
    expect(job.kind).toBe("MPIJob");
    expect(operatorValidation(job.spec)).toEqual([]);
  });

  it("keeps the metadata the API server set (only annotations may change)", () => {
    const { annotations, ...rest } = job.metadata;
    expect(rest).toEqual(asStored(execApiBody(3)).metadata);
    expect(Object.keys(annotations)).toEqual([webhook.ANNOTATION_V1ALPHA1_SPEC]);
    expect(JSON.parse(annotations[webhook.ANNOTATION_V1ALPHA1_SPEC])).toEqual(execApiBody(3).spec);
  });

  it("has one launcher and `replicas` workers from the one template", () => {
    const { Launcher, Worker } = job.spec.mpiReplicaSpecs;
    expect(Launcher.replicas).toBe(1);
    expect(Worker.replicas).toBe(3);
    expect(Launcher.restartPolicy).toBe("OnFailure");
    expect(Worker.restartPolicy).toBe("Never");
    expect(job.spec.slotsPerWorker).toBe(1);
    expect(job.spec.runPolicy).toEqual({ cleanPodPolicy: "Running" });
    expect(job.spec.sshAuthMountPath).toBe("/home/mpiuser/.ssh");
    expect(job.spec.mpiImplementation).toBe("OpenMPI");
    expect(job.spec.launcherCreationPolicy).toBe("WaitForWorkersReady");
  });

  it("passes exec-api's environment and image to both, runs the image's own command in the launcher and sshd in the workers", () => {
    expectExecApiPods(job.spec);
  });

  it("mounts the shared CephFS claim instead of the Rook flexVolume, at the same path", () => {
    for (const r of Object.values<any>(job.spec.mpiReplicaSpecs)) {
      expect(r.template.spec.volumes).toEqual([{ name: "sfs", persistentVolumeClaim: { claimName: SHARED_FS_CLAIM } }]);
      expect(r.template.spec.containers[0].volumeMounts).toEqual([{ name: "sfs", mountPath: "/home/mpiuser/sfs" }]);
    }
    expect(JSON.stringify(job.spec)).not.toMatch(/flexVolume|ceph\.rook\.io/);
  });

  it("converts back to exactly exec-api's object, also once the API server defaulted it and the operator set its status", async () => {
    const stored = JSON.parse(JSON.stringify(job));
    // What the API server and the operator add: the schema's defaults, a status.
    stored.spec.runPolicy.suspend = false;
    stored.status = {
      conditions: [
        {
          type: "Created",
          status: "True",
          reason: "MPIJobCreated",
          lastTransitionTime: "2026-08-20T10:00:01Z",
          lastUpdateTime: "2026-08-20T10:00:01Z",
        },
        {
          type: "Running",
          status: "False",
          reason: "MPIJobRunning",
          lastTransitionTime: "2026-08-20T10:05:00Z",
          lastUpdateTime: "2026-08-20T10:05:00Z",
        },
        {
          type: "Succeeded",
          status: "True",
          reason: "MPIJobSucceeded",
          lastTransitionTime: "2026-08-20T10:05:00Z",
          lastUpdateTime: "2026-08-20T10:05:00Z",
        },
      ],
      replicaStatuses: { Launcher: { succeeded: 1 }, Worker: {} },
      startTime: "2026-08-20T10:00:01Z",
      completionTime: "2026-08-20T10:05:00Z",
    };
    const back = await convert(V1ALPHA1, stored);
    const { annotations, ...metadata } = back.metadata;
    expect({ ...back, metadata, status: undefined }).toEqual({ ...asStored(execApiBody(3)), status: undefined });
    expect(back.status).toEqual({ launcherStatus: "Succeeded" });
    // Written back at v1alpha1 (an update, or a delete with finalizers): the v2beta1 status survives.
    const again = await convert(V2BETA1, back);
    expect(again.status).toEqual(stored.status);
    expect(again.spec).toEqual(job.spec);
    expect(again.metadata.annotations).toEqual(job.metadata.annotations);
    expect(annotations[webhook.ANNOTATION_V1ALPHA1_SPEC]).toBeUndefined();
  });

  it("shows a v1alpha1 client what changed when the job was edited at v2beta1", async () => {
    const edited = JSON.parse(JSON.stringify(job));
    edited.spec.mpiReplicaSpecs.Worker.replicas = 5;
    const back = await convert(V1ALPHA1, edited);
    expect(back.spec.replicas).toBe(5);
    expect(back.spec.template.spec.containers[0].env).toEqual(execApiBody().spec.template.spec.containers[0].env);
    // and the v2beta1 spec comes back unchanged when that view is written back
    expect((await convert(V2BETA1, back)).spec).toEqual(edited.spec);
  });

  it("maps gpus (one worker per GPU, as 0.1.0 with --gpus-per-node=1), launcherOnMaster, backoffLimit and a Never template", async () => {
    const body = execApiBody();
    body.spec = { ...body.spec, replicas: undefined, gpus: 2, launcherOnMaster: true, backoffLimit: 2 };
    delete body.spec.replicas;
    body.spec.template.spec.restartPolicy = "Never";
    const out = await convert(V2BETA1, asStored(body));
    expect(operatorValidation(out.spec)).toEqual([]);
    const { Launcher, Worker } = out.spec.mpiReplicaSpecs;
    expect(Worker.replicas).toBe(2);
    expect(Worker.template.spec.containers[0].resources.limits["nvidia.com/gpu"]).toBe(1);
    expect(Launcher.restartPolicy).toBe("Never");
    expect(Launcher.template.spec.restartPolicy).toBeUndefined();
    expect(Launcher.template.spec.tolerations).toEqual([
      { key: "node-role.kubernetes.io/control-plane", operator: "Exists", effect: "NoSchedule" },
    ]);
    expect(out.spec.runPolicy.backoffLimit).toBe(2);
  });
});

describe("v2beta1 -> v1alpha1", () => {
  const native = {
    apiVersion: V2BETA1,
    kind: "MPIJob",
    metadata: { name: "pi", namespace: "dare", uid: "1", resourceVersion: "9", generation: 1, creationTimestamp: "2026-08-20T10:00:00Z" },
    spec: {
      slotsPerWorker: 2,
      runPolicy: { cleanPodPolicy: "All", ttlSecondsAfterFinished: 60, suspend: false },
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
    status: { conditions: [{ type: "Running", status: "True" }], replicaStatuses: { Launcher: { active: 1 }, Worker: { active: 2 } } },
  };

  it("converts a job created at v2beta1 to a best-effort v1alpha1 one, and back without loss", async () => {
    const old = await convert(V1ALPHA1, native);
    expect(old.apiVersion).toBe(V1ALPHA1);
    expect(old.spec).toEqual({ replicas: 2, template: native.spec.mpiReplicaSpecs.Launcher.template });
    expect(old.status).toEqual({ launcherStatus: "Active", workerReplicas: 2 });
    const again = await convert(V2BETA1, old);
    expect(again).toEqual(native);
  });

  it("maps the v2beta1 status to the launcherStatus v1alpha1 clients read", () => {
    const s = webhook.toV1alpha1Status;
    expect(s(undefined)).toBeUndefined();
    expect(s({})).toBeUndefined();
    expect(s({ replicaStatuses: { Launcher: { active: 1 } } })).toEqual({ launcherStatus: "Active" });
    expect(s({ conditions: [{ type: "Failed", status: "True" }], replicaStatuses: { Launcher: { failed: 1 } } })).toEqual({
      launcherStatus: "Failed",
    });
    expect(s({ conditions: [{ type: "Succeeded", status: "True" }], replicaStatuses: { Launcher: { succeeded: 1 }, Worker: {} } })).toEqual(
      { launcherStatus: "Succeeded" },
    );
    expect(s({ conditions: [{ type: "Succeeded", status: "False" }], replicaStatuses: { Launcher: { failed: 1 } } })).toEqual({
      launcherStatus: "Failed",
    });
  });

  it("converts every object of a list in one review, and leaves objects already at the desired version alone", async () => {
    const { body } = await post(reviewOf(V1ALPHA1, [native, asStored(execApiBody())]));
    expect(body.response.result.status).toBe("Success");
    expect(body.response.convertedObjects.map((o: any) => o.apiVersion)).toEqual([V1ALPHA1, V1ALPHA1]);
    expect(body.response.convertedObjects[1]).toEqual(asStored(execApiBody()));
  });
});

describe("failures", () => {
  it("answers a job it cannot convert with a ConversionReview of status Failure and a message", async () => {
    const noContainers = execApiBody();
    noContainers.spec.template.spec.containers = [];
    const both = execApiBody();
    both.spec.gpus = 2;
    const badName = { ...execApiBody(12), metadata: { name: "D4P_openmpi", namespace: "dare" } };
    for (const [obj, message] of [
      [noContainers, /dare\/d4p-openmpi: spec.template.spec.containers: at least one container/],
      [both, /exactly one of replicas and gpus/],
      [badName, /DNS-1035/],
    ] as Array<[any, RegExp]>) {
      const { status, body } = await post(reviewOf(V2BETA1, [asStored(obj)], "uid-1"));
      expect(status).toBe(200);
      expect(body).toEqual({
        apiVersion: "apiextensions.k8s.io/v1",
        kind: "ConversionReview",
        response: { uid: "uid-1", convertedObjects: [], result: { status: "Failure", message: expect.stringMatching(message) } },
      });
    }
  });

  it("answers what is not a ConversionReview, or not JSON, with Failure, and keeps serving", async () => {
    const notReview = await post({ kind: "AdmissionReview", apiVersion: "admission.k8s.io/v1", request: { uid: "x" } });
    expect(notReview.body.response).toEqual({
      uid: "x",
      convertedObjects: [],
      result: { status: "Failure", message: expect.stringMatching(/ConversionReview/) },
    });
    const garbage = await post("{not json");
    expect(garbage.status).toBe(400);
    expect(garbage.body.response.result).toEqual({ status: "Failure", message: expect.stringMatching(/not JSON/) });
    const otherKind = await post(reviewOf(V2BETA1, [{ apiVersion: "kubeflow.org/v1", kind: "TFJob", metadata: { name: "t" } }]));
    expect(otherKind.body.response.result.status).toBe("Failure");
    const otherVersion = await post(reviewOf("kubeflow.org/v1", [asStored(execApiBody())]));
    expect(otherVersion.body.response.result.message).toMatch(/cannot convert "kubeflow.org\/v1alpha1" to "kubeflow.org\/v1"/);
    expect(await get("/healthz")).toBe(200);
    expect(server.exitCode).toBeNull();
    expect(output).toMatch(/"result":"Failure"/);
  });

  it("never fails to show a stored v2beta1 object at v1alpha1, however odd", async () => {
    for (const odd of [
      { apiVersion: V2BETA1, kind: "MPIJob", metadata: { name: "a" } },
      {
        apiVersion: V2BETA1,
        kind: "MPIJob",
        metadata: { name: "b", annotations: { [webhook.ANNOTATION_V1ALPHA1_SPEC]: "{broken" } },
        spec: { mpiReplicaSpecs: {} },
      },
      {
        apiVersion: V2BETA1,
        kind: "MPIJob",
        metadata: { name: "c", annotations: { [webhook.ANNOTATION_V1ALPHA1_SPEC]: "{}" } },
        spec: { mpiReplicaSpecs: { Worker: { replicas: 0 } } },
        status: { conditions: "x" },
      },
    ]) {
      const out = await convert(V1ALPHA1, odd);
      expect(out.apiVersion).toBe(V1ALPHA1);
    }
  });
});

describe("the CRD's v1alpha1 version", () => {
  it("gives every key of a map-list a default or makes it required, as kube-apiserver demands of a structural schema", () => {
    const upstream = YAML.parseAllDocuments(
      fs.readFileSync(path.join(sharedDir(), "crds/mpi-operator/v0.8.2/kubeflow.org_mpijobs.yaml"), "utf8"),
    )
      .map((d) => d.toJS())
      .find((d) => d?.kind === "CustomResourceDefinition");
    const crd = withV1alpha1Conversion(upstream, {
      service: { namespace: "mpi-operator", name: "mpijob-conversion", port: 443, path: "/convert" },
    });
    const schema = crd.spec.versions.find((v: any) => v.name === "v1alpha1").schema.openAPIV3Schema;
    const missing: string[] = [];
    const walk = (node: any, at: string): void => {
      if (!node || typeof node !== "object") return;
      for (const key of node["x-kubernetes-list-map-keys"] ?? []) {
        const item = node.items ?? {};
        if (item.properties?.[key]?.default === undefined && !(item.required ?? []).includes(key)) missing.push(`${at}[].${key}`);
      }
      for (const [name, sub] of Object.entries<any>(node.properties ?? {})) walk(sub, `${at}.${name}`);
      walk(node.items, at);
      walk(node.additionalProperties, at);
    };
    walk(schema, "");
    // The real API server refused the CRD for these (ports[].protocol, imagePullSecrets[].name) before the fix.
    expect(missing).toEqual([]);
  });
});
