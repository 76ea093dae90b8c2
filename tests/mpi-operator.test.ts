/**
 * The MPI operator: pinned to one release for both its image and its CRD, runnable under the
 * "restricted" Pod Security level, and able to run the jobs exec-api starts (checked against the
 * upstream v0.8.2 CRD schema in ../shared/crds).
 */
import * as k8s from "@pulumi/kubernetes";
import { MpiOperator } from "../components/mpi-operator";
import { installMocks } from "../tools/mocks";
import { validateCustomResource } from "../tools/validate";
import { Built, buildDareLayer, configFrom } from "./dare-fixture";

jest.setTimeout(120_000);

let built: Built;
beforeAll(async () => {
  built = await buildDareLayer(configFrom({}));
});

/** The job exec-api starts for a dispel4py run (older releases' shape, on today's API). */
function execApiJob(workers: number): Record<string, unknown> {
  const container = (name: string) => ({
    name,
    image: "registry.gitlab.com/project-dare/dare-api/d4p-openmpi-cwl:v3.6",
    env: [{ name: "D4P_RUN_DATA", value: JSON.stringify({ user: "alice", pe: "wordcount" }) }],
    volumeMounts: [{ name: "sfs", mountPath: "/home/mpiuser/sfs" }],
  });
  const volumes = [{ name: "sfs", persistentVolumeClaim: { claimName: "dare-sfs" } }];
  return {
    apiVersion: "kubeflow.org/v2beta1",
    kind: "MPIJob",
    metadata: { name: "d4p-openmpi-alice-1", namespace: "dare" },
    spec: {
      slotsPerWorker: 1,
      runPolicy: { cleanPodPolicy: "Running", ttlSecondsAfterFinished: 600 },
      mpiReplicaSpecs: {
        Launcher: { replicas: 1, template: { spec: { containers: [{ ...container("launcher"), command: ["mpirun", "-n", String(workers), "dispel4py"] }], volumes } } },
        Worker: { replicas: workers, template: { spec: { containers: [container("worker")], volumes } } },
      },
    },
  };
}

describe("MPI operator", () => {
  it("pins the CRD to the same upstream release as the operator image", () => {
    const crd = built.resources.find((r) => r.type === "kubernetes:yaml/v2:ConfigFile")!;
    const url = (crd.inputs as any).file as string;
    const deployment = built.objects.find((o) => o.kind === "Deployment" && o.metadata.namespace === "mpi-operator");
    const tag = deployment.spec.template.spec.containers[0].image.split(":").pop();
    expect(url).toBe(`https://raw.githubusercontent.com/kubeflow/mpi-operator/v${tag}/manifests/base/kubeflow.org_mpijobs.yaml`);
    expect(tag).toBe("0.8.2");
    // The CRD is applied before the operator starts watching it.
    const operator = built.resources.find((r) => r.type === "kubernetes:apps/v1:Deployment" && r.name === "mpi-deployment")!;
    expect(operator.dependencies).toContain(crd.urn);
  });

  it("refuses an operator image from another release than its CRD", () => {
    installMocks("test");
    const provider = new k8s.Provider("test", { kubeconfig: "{}" });
    expect(() => new MpiOperator("old", { provider, image: "mpioperator/mpi-operator:0.1.0" })).toThrow(/does not match the CRD's release v0.8.2/);
    expect(() => new MpiOperator("newer", { provider, image: "mpioperator/mpi-operator:0.9.0" })).toThrow(/v0.8.2/);
  });

  it("runs under the restricted Pod Security level of its namespace", () => {
    const ns = built.objects.find((o) => o.kind === "Namespace" && o.metadata.name === "mpi-operator");
    expect(ns.metadata.labels["pod-security.kubernetes.io/enforce"]).toBe("restricted");
    const pod = built.objects.find((o) => o.kind === "Deployment" && o.metadata.namespace === "mpi-operator").spec.template.spec;
    const [c] = pod.containers;
    expect(pod.securityContext.runAsNonRoot).toBe(true);
    expect(pod.securityContext.seccompProfile.type).toBe("RuntimeDefault");
    expect(c.securityContext.allowPrivilegeEscalation).toBe(false);
    expect(c.securityContext.capabilities.drop).toEqual(["ALL"]);
    expect(pod.volumes.every((v: any) => !v.hostPath)).toBe(true);
    expect(c.livenessProbe.httpGet.path).toBe("/healthz");
    expect(c.resources.limits.memory).toBeDefined();
  });

  it("is bound cluster-wide only to its own ServiceAccount", () => {
    const bindings = built.objects.filter((o) => o.kind === "ClusterRoleBinding" && o.roleRef.name === "mpi-operator");
    expect(bindings).toHaveLength(1);
    expect(bindings[0].subjects).toEqual([{ kind: "ServiceAccount", name: "mpi-operator", namespace: "mpi-operator" }]);
  });

  it("accepts the jobs exec-api starts on kubeflow.org/v2beta1, and the seed's v1alpha1 API is gone", () => {
    expect(validateCustomResource(execApiJob(4))).toEqual([]);
    const typo = execApiJob(2) as any;
    typo.spec.mpiReplicaSpecs.Worker.replica = 2;
    expect(validateCustomResource(typo)?.join("\n")).toMatch(/replica/);
    expect(validateCustomResource({ ...execApiJob(2), apiVersion: "kubeflow.org/v1alpha1" })).toEqual([expect.stringMatching(/no version "v1alpha1"/)]);
  });
});
