#!/usr/bin/env node
/**
 * MPIJob conversion webhook: kubeflow.org/v1alpha1 (mpi-operator 0.1.0, what DARE's exec-api creates)
 * <-> kubeflow.org/v2beta1 (mpi-operator v0.8.2, the storage version). The API server calls it with a
 * ConversionReview (apiextensions.k8s.io/v1) whenever an MPIJob is read or written at the version it
 * is not stored in. One file, no dependencies, Node.js 20 or newer: the cluster runs it from a ConfigMap
 * in the official node image, the tests run this same file with local Node.
 *
 * v1alpha1 -> v2beta1 (writes at v1alpha1): the one pod template becomes
 *  - Launcher: 1 replica, the template as given (its command is the user's mpirun), without resources
 *    (0.1.0 ran the launcher without requests/limits), restartPolicy OnFailure (Never when the template
 *    asked for Never), tolerations/affinity for a control plane when launcherOnMaster;
 *  - Worker: `replicas` replicas (or one per GPU with `gpus`, 0.1.0's default --gpus-per-node=1), the same
 *    template with the command replaced by an SSH server (WORKER_COMMAND): v0.8.2 reaches workers over
 *    SSH where 0.1.0 ran `sleep 365d` and used `kubectl exec`;
 *  - slotsPerWorker 1, sshAuthMountPath /home/mpiuser/.ssh, OpenMPI, launcherCreationPolicy
 *    WaitForWorkersReady (0.1.0 started the launcher once the workers were ready), runPolicy
 *    cleanPodPolicy Running (0.1.0 scaled the workers to 0 when the launcher finished), backoffLimit kept;
 *  - a Rook flexVolume (driver ceph.rook.io/rook, gone from Rook) becomes the shared CephFS claim
 *    ($SHARED_FS_CLAIM) under the same volume name, so every mount path stays what the client asked.
 *  The original v1alpha1 spec is kept in the annotation ANNOTATION_V1ALPHA1_SPEC.
 * v2beta1 -> v1alpha1 (reads at v1alpha1, never fails): the spec from that annotation while the v2beta1
 * spec still holds everything converting it gives; otherwise a best-effort v1alpha1 spec, with the v2beta1
 * spec kept in ANNOTATION_V2BETA1_STATE so that writing the object back at v1alpha1 restores it. Status:
 * launcherStatus (Active/Succeeded/Failed) and workerReplicas from the v2beta1 conditions and
 * replicaStatuses; the v2beta1 status itself rides in ANNOTATION_V2BETA1_STATE for the way back.
 *
 * Environment: SHARED_FS_CLAIM (required), PORT (8443), TLS_CERT_FILE, TLS_KEY_FILE (PEM; re-read every
 * minute, so cert-manager's renewals are picked up without a restart). Serves POST /convert and GET /healthz.
 */
"use strict";
const fs = require("fs");
const https = require("https");

const V1ALPHA1 = "kubeflow.org/v1alpha1";
const V2BETA1 = "kubeflow.org/v2beta1";
const REVIEW_API_VERSION = "apiextensions.k8s.io/v1";
const ANNOTATION_V1ALPHA1_SPEC = "mpijob-conversion.dare.io/v1alpha1-spec";
const ANNOTATION_V2BETA1_STATE = "mpijob-conversion.dare.io/v2beta1-state";
/** The Rook flexVolume driver of Rook 0.8, which DARE's exec-api still names. */
const ROOK_FLEX_DRIVER = "ceph.rook.io/rook";
/** Where v0.8.2 mounts the job's SSH key pair: the home of mpiuser, the user DARE's execution pods run as. */
const SSH_AUTH_MOUNT_PATH = "/home/mpiuser/.ssh";
/**
 * What each worker runs: sshd as mpiuser with the configuration of mpi-operator's base image
 * (build/base/Dockerfile and sshd_config at v0.8.2: port 2222, host key in ~/.ssh, StrictModes no).
 */
const WORKER_COMMAND = ["/usr/sbin/sshd", "-De", "-f", "/home/mpiuser/.sshd_config"];
const CONTROL_PLANE_LABEL = "node-role.kubernetes.io/control-plane";
const MAX_BODY = 32 * 1024 * 1024;

class ConversionError extends Error {}

const clone = (v) => (v === undefined ? undefined : JSON.parse(JSON.stringify(v)));
const isObject = (v) => v !== null && typeof v === "object" && !Array.isArray(v);

function deepEqual(a, b) {
  if (a === b) return true;
  if (Array.isArray(a) || Array.isArray(b)) {
    return Array.isArray(a) && Array.isArray(b) && a.length === b.length && a.every((x, i) => deepEqual(x, b[i]));
  }
  if (!isObject(a) || !isObject(b)) return false;
  const ka = Object.keys(a);
  return ka.length === Object.keys(b).length && ka.every((k) => k in b && deepEqual(a[k], b[k]));
}

/** Every field of `expected` is in `actual` with the same value (`actual` may hold more: the API server's defaults). */
function isSubset(expected, actual) {
  if (Array.isArray(expected)) {
    return Array.isArray(actual) && expected.length === actual.length && expected.every((x, i) => isSubset(x, actual[i]));
  }
  if (isObject(expected)) return isObject(actual) && Object.entries(expected).every(([k, v]) => isSubset(v, actual[k]));
  return expected === actual;
}

function parseJson(text) {
  if (typeof text !== "string") return undefined;
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}

const DNS1035 = /^[a-z]([-a-z0-9]*[a-z0-9])?$/;

/** The v2beta1 spec of a v1alpha1 spec. Throws ConversionError when the spec cannot run. */
function toV2beta1Spec(spec, name, options) {
  if (!isObject(spec)) throw new ConversionError("spec: required");
  const template = clone(isObject(spec.template) ? spec.template : {});
  const pod = template.spec;
  if (!isObject(pod) || !Array.isArray(pod.containers) || pod.containers.length === 0) {
    throw new ConversionError("spec.template.spec.containers: at least one container is required");
  }
  const hasGpus = spec.gpus !== undefined && spec.gpus !== null;
  const hasReplicas = spec.replicas !== undefined && spec.replicas !== null;
  if (hasGpus === hasReplicas) {
    throw new ConversionError("spec: exactly one of replicas and gpus must be set (mpi-operator 0.1.0)");
  }
  const workers = hasReplicas ? spec.replicas : spec.gpus;
  if (!Number.isInteger(workers) || workers < 1) {
    throw new ConversionError(`spec.${hasReplicas ? "replicas" : "gpus"}: must be an integer of at least 1, got ${JSON.stringify(workers)}`);
  }
  if (typeof name === "string" && name) {
    const host = `${name}-worker-${workers - 1}`;
    if (host.length > 63 || !DNS1035.test(host)) {
      throw new ConversionError(`metadata.name: the workers' host names (${host}) must be DNS-1035 labels of at most 63 characters`);
    }
  }

  if (Array.isArray(pod.volumes)) {
    pod.volumes = pod.volumes.map((v) => (isObject(v) && isObject(v.flexVolume) && v.flexVolume.driver === ROOK_FLEX_DRIVER
      ? { name: v.name, persistentVolumeClaim: { claimName: options.sharedFsClaim } }
      : v));
  }
  // v2beta1 sets the restart policy per replica type; the operator warns about one in the template.
  const templateRestart = pod.restartPolicy;
  delete pod.restartPolicy;

  const launcher = clone(template);
  delete launcher.spec.containers[0].resources;
  if (spec.launcherOnMaster === true) {
    launcher.spec.tolerations = [...(launcher.spec.tolerations || []), { key: CONTROL_PLANE_LABEL, operator: "Exists", effect: "NoSchedule" }];
    launcher.spec.affinity = {
      ...(launcher.spec.affinity || {}),
      nodeAffinity: {
        requiredDuringSchedulingIgnoredDuringExecution: {
          nodeSelectorTerms: [{ matchExpressions: [{ key: CONTROL_PLANE_LABEL, operator: "Exists" }] }],
        },
      },
    };
  }

  const worker = clone(template);
  const main = worker.spec.containers[0];
  main.command = [...WORKER_COMMAND];
  delete main.args;
  if (hasGpus) {
    main.resources = { ...(main.resources || {}), limits: { ...((main.resources || {}).limits || {}), "nvidia.com/gpu": 1 } };
  }

  const runPolicy = { cleanPodPolicy: "Running" };
  if (Number.isInteger(spec.backoffLimit)) runPolicy.backoffLimit = spec.backoffLimit;
  return {
    slotsPerWorker: 1,
    runPolicy,
    sshAuthMountPath: SSH_AUTH_MOUNT_PATH,
    mpiImplementation: "OpenMPI",
    launcherCreationPolicy: "WaitForWorkersReady",
    mpiReplicaSpecs: {
      Launcher: { replicas: 1, restartPolicy: templateRestart === "Never" ? "Never" : "OnFailure", template: launcher },
      Worker: { replicas: workers, restartPolicy: "Never", template: worker },
    },
  };
}

/** A v1alpha1 spec for any v2beta1 spec (never throws): the launcher's template and the worker count. */
function toV1alpha1SpecBestEffort(spec) {
  const specs = isObject(spec) && isObject(spec.mpiReplicaSpecs) ? spec.mpiReplicaSpecs : {};
  const launcher = isObject(specs.Launcher) ? specs.Launcher : undefined;
  const worker = isObject(specs.Worker) ? specs.Worker : undefined;
  const out = {};
  if (worker && Number.isInteger(worker.replicas) && worker.replicas >= 1) out.replicas = worker.replicas;
  const source = (launcher && isObject(launcher.template) && launcher.template) || (worker && isObject(worker.template) && worker.template);
  if (source) {
    out.template = clone(source);
    if (launcher && launcher.restartPolicy === "Never" && isObject(out.template.spec)) out.template.spec.restartPolicy = "Never";
  }
  const backoffLimit = isObject(spec) && isObject(spec.runPolicy) ? spec.runPolicy.backoffLimit : undefined;
  if (Number.isInteger(backoffLimit)) out.backoffLimit = backoffLimit;
  return out;
}

/** What a v1alpha1 client could read: the launcher's state and the running workers. */
function toV1alpha1Status(status) {
  if (!isObject(status)) return undefined;
  const conditions = Array.isArray(status.conditions) ? status.conditions : [];
  const isTrue = (type) => conditions.some((c) => isObject(c) && c.type === type && c.status === "True");
  const replicas = isObject(status.replicaStatuses) ? status.replicaStatuses : {};
  const launcher = isObject(replicas.Launcher) ? replicas.Launcher : {};
  const worker = isObject(replicas.Worker) ? replicas.Worker : {};
  let launcherStatus;
  if (isTrue("Succeeded")) launcherStatus = "Succeeded";
  else if (isTrue("Failed")) launcherStatus = "Failed";
  else if (launcher.active > 0) launcherStatus = "Active";
  else if (launcher.succeeded > 0) launcherStatus = "Succeeded";
  else if (launcher.failed > 0) launcherStatus = "Failed";
  const out = {};
  if (launcherStatus) out.launcherStatus = launcherStatus;
  if (Number.isInteger(worker.active) && worker.active > 0) out.workerReplicas = worker.active;
  return Object.keys(out).length > 0 ? out : undefined;
}

function withAnnotations(obj, annotations) {
  obj.metadata = isObject(obj.metadata) ? obj.metadata : {};
  if (Object.keys(annotations).length > 0) obj.metadata.annotations = annotations;
  else delete obj.metadata.annotations;
  return obj;
}

function toV2beta1(obj, options) {
  const metadata = isObject(obj.metadata) ? obj.metadata : {};
  const annotations = { ...(isObject(metadata.annotations) ? metadata.annotations : {}) };
  const state = parseJson(annotations[ANNOTATION_V2BETA1_STATE]);
  delete annotations[ANNOTATION_V2BETA1_STATE];
  const out = clone(obj);
  out.apiVersion = V2BETA1;
  const given = isObject(obj.spec) ? obj.spec : {};
  if (isObject(state) && isObject(state.spec) && deepEqual(toV1alpha1SpecBestEffort(state.spec), given)) {
    // Created at v2beta1 and written back unchanged at v1alpha1: the v2beta1 spec as it was.
    out.spec = clone(state.spec);
    delete annotations[ANNOTATION_V1ALPHA1_SPEC];
  } else {
    out.spec = toV2beta1Spec(given, metadata.name, options);
    annotations[ANNOTATION_V1ALPHA1_SPEC] = JSON.stringify(given);
  }
  if (isObject(state) && isObject(state.status)) out.status = clone(state.status);
  else delete out.status;
  return withAnnotations(out, annotations);
}

function toV1alpha1(obj, options) {
  const metadata = isObject(obj.metadata) ? obj.metadata : {};
  const annotations = { ...(isObject(metadata.annotations) ? metadata.annotations : {}) };
  const original = parseJson(annotations[ANNOTATION_V1ALPHA1_SPEC]);
  delete annotations[ANNOTATION_V1ALPHA1_SPEC];
  const out = clone(obj);
  out.apiVersion = V1ALPHA1;
  let current = false;
  if (isObject(original)) {
    try {
      current = isSubset(toV2beta1Spec(original, metadata.name, options), obj.spec);
    } catch {
      current = false;
    }
  }
  const state = {};
  if (current) {
    out.spec = original;
  } else {
    out.spec = toV1alpha1SpecBestEffort(obj.spec);
    if (isObject(obj.spec)) state.spec = obj.spec;
  }
  if (isObject(obj.status) && Object.keys(obj.status).length > 0) state.status = obj.status;
  if (Object.keys(state).length > 0) annotations[ANNOTATION_V2BETA1_STATE] = JSON.stringify(state);
  else delete annotations[ANNOTATION_V2BETA1_STATE];
  const status = toV1alpha1Status(obj.status);
  if (status) out.status = status;
  else delete out.status;
  return withAnnotations(out, annotations);
}

function convertObject(obj, desiredAPIVersion, options) {
  if (!isObject(obj)) throw new ConversionError("object: not a JSON object");
  if (obj.kind !== "MPIJob") throw new ConversionError(`kind ${JSON.stringify(obj.kind)}: only MPIJob is converted`);
  if (obj.apiVersion === desiredAPIVersion) return clone(obj);
  if (obj.apiVersion === V1ALPHA1 && desiredAPIVersion === V2BETA1) return toV2beta1(obj, options);
  if (obj.apiVersion === V2BETA1 && desiredAPIVersion === V1ALPHA1) return toV1alpha1(obj, options);
  throw new ConversionError(`cannot convert ${JSON.stringify(obj.apiVersion)} to ${JSON.stringify(desiredAPIVersion)}`);
}

function review(uid, convertedObjects, failure) {
  return {
    apiVersion: REVIEW_API_VERSION,
    kind: "ConversionReview",
    response: {
      uid,
      convertedObjects,
      result: failure === undefined ? { status: "Success" } : { status: "Failure", message: failure },
    },
  };
}

/** Answers one ConversionReview (parsed JSON). Never throws: a failure is a ConversionReview with status Failure. */
function handleReview(body, options) {
  const request = isObject(body) && isObject(body.request) ? body.request : undefined;
  const uid = request && typeof request.uid === "string" ? request.uid : "";
  if (!isObject(body) || body.apiVersion !== REVIEW_API_VERSION || body.kind !== "ConversionReview" || !request) {
    return review(uid, [], `expected a ConversionReview of ${REVIEW_API_VERSION} with a request`);
  }
  if (typeof request.desiredAPIVersion !== "string" || !Array.isArray(request.objects)) {
    return review(uid, [], "request: desiredAPIVersion and objects are required");
  }
  const converted = [];
  for (const obj of request.objects) {
    try {
      converted.push(convertObject(obj, request.desiredAPIVersion, options));
    } catch (e) {
      const meta = isObject(obj) && isObject(obj.metadata) ? obj.metadata : {};
      const who = `MPIJob ${meta.namespace ? `${meta.namespace}/` : ""}${meta.name || "(unnamed)"}`;
      const message = e instanceof ConversionError ? e.message : `internal error: ${e && e.message}`;
      return review(uid, [], `${who}: ${message}`);
    }
  }
  return review(uid, converted);
}

function log(fields) {
  process.stdout.write(`${JSON.stringify({ time: new Date().toISOString(), ...fields })}\n`);
}

/** The HTTPS server. `tls` is { certFile, keyFile }; returns the https.Server (not yet listening). */
function createServer(options, tls) {
  const readTls = () => ({ cert: fs.readFileSync(tls.certFile, "utf8"), key: fs.readFileSync(tls.keyFile, "utf8") });
  let current = readTls();
  const server = https.createServer({ ...current, minVersion: "TLSv1.2" }, (req, res) => {
    const send = (code, body, type = "application/json") => {
      res.writeHead(code, { "Content-Type": type });
      res.end(type === "application/json" ? JSON.stringify(body) : body);
    };
    const path = (req.url || "").split("?")[0];
    if (req.method === "GET" && (path === "/healthz" || path === "/readyz")) return send(200, "ok\n", "text/plain");
    if (path !== "/convert") return send(404, "not found\n", "text/plain");
    if (req.method !== "POST") return send(405, "POST only\n", "text/plain");
    const chunks = [];
    let size = 0;
    let tooLarge = false;
    req.on("data", (chunk) => {
      size += chunk.length;
      if (size > MAX_BODY) tooLarge = true;
      else chunks.push(chunk);
    });
    req.on("end", () => {
      if (tooLarge) return send(413, review("", [], `request body larger than ${MAX_BODY} bytes`));
      let body;
      try {
        body = JSON.parse(Buffer.concat(chunks).toString("utf8"));
      } catch (e) {
        log({ level: "error", msg: "unparsable request", error: e.message });
        return send(400, review("", [], `request body is not JSON: ${e.message}`));
      }
      const answer = handleReview(body, options);
      const r = answer.response;
      log({
        level: r.result.status === "Success" ? "info" : "error",
        uid: r.uid,
        desiredAPIVersion: body && body.request && body.request.desiredAPIVersion,
        objects: body && body.request && Array.isArray(body.request.objects) ? body.request.objects.length : 0,
        result: r.result.status,
        ...(r.result.message ? { message: r.result.message } : {}),
      });
      return send(200, answer);
    });
    req.on("error", () => res.destroy());
  });
  server.requestTimeout = 30_000;
  // cert-manager renews the Secret; the kubelet swaps the mounted files: serve the new pair when it changes.
  const reload = setInterval(() => {
    try {
      const next = readTls();
      if (next.cert !== current.cert || next.key !== current.key) {
        server.setSecureContext({ ...next, minVersion: "TLSv1.2" });
        current = next;
        log({ level: "info", msg: "reloaded the serving certificate" });
      }
    } catch (e) {
      log({ level: "error", msg: "cannot read the serving certificate", error: e.message });
    }
  }, 60_000);
  reload.unref();
  server.on("close", () => clearInterval(reload));
  return server;
}

function main() {
  const sharedFsClaim = process.env.SHARED_FS_CLAIM;
  const certFile = process.env.TLS_CERT_FILE;
  const keyFile = process.env.TLS_KEY_FILE;
  if (!sharedFsClaim || !certFile || !keyFile) {
    process.stderr.write("mpijob-conversion: SHARED_FS_CLAIM, TLS_CERT_FILE and TLS_KEY_FILE are required\n");
    process.exit(2);
  }
  const port = Number(process.env.PORT || 8443);
  const server = createServer({ sharedFsClaim }, { certFile, keyFile });
  server.listen(port, process.env.LISTEN_ADDRESS || "0.0.0.0", () => log({ level: "info", msg: "listening", port: server.address().port }));
  const stop = () => {
    server.close(() => process.exit(0));
    setTimeout(() => process.exit(0), 10_000).unref();
  };
  process.on("SIGTERM", stop);
  process.on("SIGINT", stop);
}

module.exports = {
  V1ALPHA1, V2BETA1, ANNOTATION_V1ALPHA1_SPEC, ANNOTATION_V2BETA1_STATE, ROOK_FLEX_DRIVER, SSH_AUTH_MOUNT_PATH, WORKER_COMMAND,
  convertObject, handleReview, toV2beta1Spec, toV1alpha1SpecBestEffort, toV1alpha1Status, createServer,
};

if (require.main === module) main();
