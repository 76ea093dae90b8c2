/**
 * Test data and process handling shared by the conversion webhook's tests (tests/components/dare-services/mpijob-conversion.test.ts,
 * the script alone; tests/engine/mpijob-conversion.test.ts, behind a real kube-apiserver): exec-api's MPIJob
 * body, a throwaway CA, and the real script started with local Node.
 */
import { ChildProcess, execFileSync, spawn } from "child_process";
import * as fs from "fs";
import * as path from "path";
import { SHARED_FS_CLAIM, SHARED_FS_MOUNT } from "../../components/dare-services/workloads";
import { WEBHOOK_SCRIPT_FILE } from "../../components/dare-services/mpijob-conversion";

export const V1ALPHA1 = "kubeflow.org/v1alpha1";
export const V2BETA1 = "kubeflow.org/v2beta1";
export const RUN_DATA = JSON.stringify({ user: "alice", workflow: "wordcount", nodes: 3, input: [{ url: "https://example.org/a.txt" }] });

/**
 * exec-api's body, field for field as its public code builds it (CustomObjectsApi.create_namespaced_custom_object,
 * group kubeflow.org, version v1alpha1): job d4p-openmpi, `replicas` nodes, D4P_RUN_DATA, and the Rook
 * flexVolume of the shared file system.
 */
export function execApiBody(nodes = 3): any {
  return {
    apiVersion: V1ALPHA1,
    kind: "MPIJob",
    metadata: { name: "d4p-openmpi", namespace: "dare" },
    spec: {
      replicas: nodes,
      template: {
        spec: {
          containers: [
            {
              image: "registry.gitlab.com/project-dare/dare-api/d4p-openmpi-cwl:latest",
              imagePullPolicy: "Always",
              name: "d4p-openmpi",
              env: [
                { name: "NGINX_API_SERVICE_HOST", value: "10.96.12.34" },
                { name: "NGINX_API_SERVICE_PORT", value: "80" },
                { name: "D4P_RUN_DATA", value: RUN_DATA },
              ],
              volumeMounts: [{ name: "sfs", mountPath: SHARED_FS_MOUNT }],
            },
          ],
          volumes: [
            {
              name: "sfs",
              flexVolume: { driver: "ceph.rook.io/rook", fsType: "ceph", options: { fsName: "myfs", clusterNamespace: "rook-ceph" } },
            },
          ],
        },
      },
    },
  };
}

/** A test CA and a serving certificate for IP 127.0.0.1 signed by it. */
export function makeTestCertificates(into: string): { caFile: string; certFile: string; keyFile: string } {
  const f = (n: string) => path.join(into, n);
  const openssl = (...args: string[]) => execFileSync("openssl", args, { stdio: "pipe" });
  // The API server (Go crypto/x509) insists on a real CA: basicConstraints CA:TRUE and keyCertSign.
  openssl(
    "req",
    "-x509",
    "-newkey",
    "ec",
    "-pkeyopt",
    "ec_paramgen_curve:P-256",
    "-nodes",
    "-keyout",
    f("ca.key"),
    "-out",
    f("ca.crt"),
    "-days",
    "2",
    "-sha256",
    "-subj",
    "/CN=mpijob-conversion test CA",
    "-addext",
    "basicConstraints=critical,CA:TRUE",
    "-addext",
    "keyUsage=critical,keyCertSign,cRLSign",
  );
  openssl(
    "req",
    "-new",
    "-newkey",
    "ec",
    "-pkeyopt",
    "ec_paramgen_curve:P-256",
    "-nodes",
    "-keyout",
    f("tls.key"),
    "-out",
    f("tls.csr"),
    "-subj",
    "/CN=127.0.0.1",
  );
  fs.writeFileSync(
    f("ext.cnf"),
    "basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth\nsubjectAltName=IP:127.0.0.1,DNS:localhost\n",
  );
  openssl(
    "x509",
    "-req",
    "-in",
    f("tls.csr"),
    "-CA",
    f("ca.crt"),
    "-CAkey",
    f("ca.key"),
    "-CAcreateserial",
    "-out",
    f("tls.crt"),
    "-days",
    "2",
    "-sha256",
    "-extfile",
    f("ext.cnf"),
  );
  return { caFile: f("ca.crt"), certFile: f("tls.crt"), keyFile: f("tls.key") };
}

/** The real script under local Node, HTTPS on 127.0.0.1 (PORT=0: the OS picks a free port, the script logs it). */
export function startWebhook(
  tlsFiles: { certFile: string; keyFile: string },
  onOutput: (s: string) => void,
): Promise<{ child: ChildProcess; port: number }> {
  const child = spawn(process.execPath, [WEBHOOK_SCRIPT_FILE], {
    env: {
      PATH: process.env.PATH,
      PORT: "0",
      LISTEN_ADDRESS: "127.0.0.1",
      TLS_CERT_FILE: tlsFiles.certFile,
      TLS_KEY_FILE: tlsFiles.keyFile,
      SHARED_FS_CLAIM,
    },
    stdio: ["ignore", "pipe", "pipe"],
  });
  return new Promise((resolve, reject) => {
    let buffered = "";
    child.stdout!.on("data", (b: Buffer) => {
      const s = b.toString();
      onOutput(s);
      buffered += s;
      const m = /"msg":"listening","port":(\d+)/.exec(buffered);
      if (m) resolve({ child, port: Number(m[1]) });
    });
    child.stderr!.on("data", (b: Buffer) => onOutput(b.toString()));
    child.on("exit", (code) => reject(new Error(`webhook exited with ${code}: ${buffered}`)));
  });
}

/** Stops the script: SIGTERM, SIGKILL after 5 s. */
export function stopWebhook(child: ChildProcess | undefined): Promise<void> {
  if (!child || child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    const timer = setTimeout(() => child.kill("SIGKILL"), 5_000);
    child.once("exit", () => {
      clearTimeout(timer);
      resolve();
    });
    child.kill("SIGTERM");
  });
}

/**
 * What operator v0.8.2 must get from exec-api's job (its body above): the same container, image and
 * environment in launcher and workers; the image's own command in the launcher, sshd in the workers.
 */
export function expectExecApiPods(v2beta1Spec: any): void {
  const { Launcher, Worker } = v2beta1Spec.mpiReplicaSpecs;
  for (const containers of [Launcher.template.spec.containers, Worker.template.spec.containers]) {
    expect(containers).toHaveLength(1);
    const [c] = containers;
    expect(c.name).toBe("d4p-openmpi");
    expect(c.image).toBe("registry.gitlab.com/project-dare/dare-api/d4p-openmpi-cwl:latest");
    expect(c.imagePullPolicy).toBe("Always");
    expect(c.env).toEqual([
      { name: "NGINX_API_SERVICE_HOST", value: "10.96.12.34" },
      { name: "NGINX_API_SERVICE_PORT", value: "80" },
      { name: "D4P_RUN_DATA", value: RUN_DATA },
    ]);
  }
  expect(Launcher.template.spec.containers[0].command).toBeUndefined();
  expect(Worker.template.spec.containers[0].command).toEqual(["/usr/sbin/sshd", "-De", "-f", "/home/mpiuser/.sshd_config"]);
  expect(Worker.template.spec.containers[0].args).toBeUndefined();
}
