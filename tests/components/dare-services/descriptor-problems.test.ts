/**
 * The DARE layer checks its descriptors against each other and against itself before it declares anything:
 * a descriptor that contradicts itself is a programming error, reported all at once, never half a layer.
 */
import { descriptorProblems } from "../../../components/dare-services";
import { DareWorkload, WORKLOADS, WorkloadFacts } from "../../../components/dare-services/workloads";

/** The descriptors with one workload's entry changed. */
function withChange(workload: DareWorkload, change: Partial<WorkloadFacts>): Record<DareWorkload, WorkloadFacts> {
  return { ...WORKLOADS, [workload]: { ...WORKLOADS[workload], ...change } };
}

it("finds nothing wrong with the descriptors as they are", () => {
  expect(descriptorProblems()).toEqual([]);
});

it("refuses a workload that calls the Kubernetes API without a Role, and a Role without the call", () => {
  expect(descriptorProblems(withChange("exec-api", { kubernetesApi: undefined }))).toEqual([
    "exec-api calls the Kubernetes API if and only if its descriptor gives it a Role (kubernetesApi)",
  ]);
  expect(descriptorProblems(withChange("playground", { kubernetesApi: WORKLOADS["exec-api"].kubernetesApi }))).toEqual([
    "playground calls the Kubernetes API if and only if its descriptor gives it a Role (kubernetesApi)",
  ]);
});

it("refuses a database without its dump", () => {
  expect(descriptorProblems(withChange("sprov-db", { database: undefined }))).toEqual([
    "sprov-db is a StatefulSet (a database) without a database descriptor (data path, dump)",
  ]);
});

it("refuses environment and dump credentials that name a Secret the layer does not create", () => {
  const env = { ...WORKLOADS["dare-login"].env, CLIENT_SECRET: { secret: "dare-login", key: "CLIENT_SECRETS" } };
  expect(descriptorProblems(withChange("dare-login", { env }))).toEqual([
    "dare-login's CLIENT_SECRET names the Secret dare-login with key CLIENT_SECRETS, which this layer does not create",
  ]);
  const database = WORKLOADS["d4p-registry-db"].database!;
  const credentials = { ...database.dump.credentials!, secret: "mysql" };
  expect(descriptorProblems(withChange("d4p-registry-db", { database: { ...database, dump: { ...database.dump, credentials } } }))).toEqual(
    ["d4p-registry-db's dump names the Secret mysql with key MYSQL_ROOT_PASSWORD, which this layer does not create"],
  );
});
