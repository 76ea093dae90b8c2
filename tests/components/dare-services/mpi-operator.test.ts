/**
 * The MPI operator: pinned to one release for both its image and its CRD, runnable under the
 * "restricted" Pod Security level, and able to run the jobs exec-api starts (checked against the
 * upstream v0.8.2 CRD schema in ../shared/crds).
 */
import { createHash } from "crypto";
import * as fs from "fs";
import * as path from "path";
import * as k8s from "@pulumi/kubernetes";
import * as YAML from "yaml";
import { SHARED_FS_CLAIM } from "../../../components/dare-services";
import {
  MPI_OPERATOR_CRD_FILE,
  MPI_OPERATOR_CRD_SHA256,
  MPI_OPERATOR_CRD_SOURCE,
  MpiOperator,
} from "../../../components/dare-services/mpi-operator";
import { DEPRECATION_WARNING, MPIJOB_CONVERSION_IMAGE, WEBHOOK_SCRIPT_FILE } from "../../../components/dare-services/mpijob-conversion";
import { runMocked } from "../../support/mocked";
import { sharedDir } from "../../../tools/validate";
import { Built, buildDareLayer, configFrom } from "../../support/dare-fixture";

jest.setTimeout(120_000);

let built: Built;
beforeAll(async () => {
  built = await buildDareLayer(configFrom({}));
});

describe("MPI operator", () => {
  it("applies the CRD shipped with the program, of the same upstream release as the operator image", () => {
    const crd = built.resources.find((r) => r.type === "kubernetes:yaml/v2:ConfigFile")!;
    const file = (crd.inputs as any).file as string;
    // A path inside the project, relative to it (no URL fetched at deploy time, no checkout path in the state).
    expect(file).toBe("components/dare-services/crds/kubeflow.org_mpijobs.yaml");
    expect(file).toBe(MPI_OPERATOR_CRD_SOURCE);
    expect(path.join(__dirname, "..", "..", "..", file)).toBe(MPI_OPERATOR_CRD_FILE);
    const deployment = built.objects.find((o) => o.kind === "Deployment" && o.metadata.name === "mpi-operator");
    const tag = deployment.spec.template.spec.containers[0].image.split(":").pop();
    expect(tag).toBe("0.8.2");
    expect(fs.readFileSync(MPI_OPERATOR_CRD_FILE, "utf8")).toContain(`manifests/base/kubeflow.org_mpijobs.yaml at tag v${tag}\n`);
    // The CRD is applied before the operator starts watching it.
    const operator = built.resources.find((r) => r.type === "kubernetes:apps/v1:Deployment" && r.name === "mpi-deployment")!;
    expect(operator.dependencies).toContain(crd.urn);
  });

  it("ships the upstream CRD file unchanged below its header: the sha256 ../shared/crds records, the same bytes", () => {
    const shipped = fs.readFileSync(MPI_OPERATOR_CRD_FILE, "utf8");
    const marker = "# ---- upstream file below, unchanged ----\n";
    expect(shipped.indexOf(marker)).toBeGreaterThan(0);
    const header = shipped.slice(0, shipped.indexOf(marker));
    for (const line of header.split("\n").filter((l) => l !== "")) expect(line).toMatch(/^#/); // only comments above
    const upstream = Buffer.from(shipped.slice(shipped.indexOf(marker) + marker.length), "utf8");
    const index = JSON.parse(fs.readFileSync(path.join(sharedDir(), "crds", "index.json"), "utf8")) as Array<{
      path: string;
      sha256: string;
      upstream_commit: string;
      upstream_path: string;
    }>;
    const entry = index.find((e) => e.path === "mpi-operator/v0.8.2/kubeflow.org_mpijobs.yaml")!;
    expect(entry.upstream_path).toBe("manifests/base/kubeflow.org_mpijobs.yaml");
    expect(createHash("sha256").update(upstream).digest("hex")).toBe(entry.sha256);
    expect(MPI_OPERATOR_CRD_SHA256).toBe(entry.sha256);
    expect(header).toContain(entry.sha256);
    expect(header).toContain(entry.upstream_commit);
    expect(upstream.equals(fs.readFileSync(path.join(sharedDir(), "crds", entry.path)))).toBe(true);
    // One document: the CRD itself.
    expect(YAML.parseAllDocuments(shipped).map((d) => d.toJS()?.metadata?.name)).toEqual(["mpijobs.kubeflow.org"]);
  });

  it("runs under the restricted Pod Security level of its namespace", () => {
    const ns = built.objects.find((o) => o.kind === "Namespace" && o.metadata.name === "mpi-operator");
    expect(ns.metadata.labels["pod-security.kubernetes.io/enforce"]).toBe("restricted");
    const deployments = built.objects.filter((o) => o.kind === "Deployment" && o.metadata.namespace === "mpi-operator");
    expect(deployments.map((d) => d.metadata.name).sort()).toEqual(["mpi-operator", "mpijob-conversion"]);
    for (const deployment of deployments) {
      const pod = deployment.spec.template.spec;
      const [c] = pod.containers;
      expect(pod.securityContext.runAsNonRoot).toBe(true);
      expect(pod.securityContext.seccompProfile.type).toBe("RuntimeDefault");
      expect(c.securityContext.allowPrivilegeEscalation).toBe(false);
      expect(c.securityContext.readOnlyRootFilesystem).toBe(true);
      expect(c.securityContext.capabilities.drop).toEqual(["ALL"]);
      expect(pod.volumes.every((v: any) => !v.hostPath)).toBe(true);
      expect(c.livenessProbe.httpGet.path).toBe("/healthz");
      expect(c.readinessProbe.httpGet.path).toBe("/healthz");
      expect(c.resources.limits.memory).toBeDefined();
    }
  });

  it("is bound cluster-wide only to its own ServiceAccount", () => {
    const bindings = built.objects.filter((o) => o.kind === "ClusterRoleBinding" && o.roleRef.name === "mpi-operator");
    expect(bindings).toHaveLength(1);
    expect(bindings[0].subjects).toEqual([{ kind: "ServiceAccount", name: "mpi-operator", namespace: "mpi-operator" }]);
  });

  it("may not exec into pods, touch CRDs or endpoints anywhere: v0.8.2's controller calls none of them", () => {
    const role = built.objects.find((o) => o.kind === "ClusterRole" && o.metadata.name === "mpi-operator");
    const grants = (resource: string, verb: string) =>
      role.rules.some(
        (r: any) => (r.resources.includes(resource) || r.resources.includes("*")) && (r.verbs.includes(verb) || r.verbs.includes("*")),
      );
    expect(grants("pods/exec", "create")).toBe(false);
    expect(grants("customresourcedefinitions", "create")).toBe(false);
    expect(grants("endpoints", "update")).toBe(false);
    // What the controller does use (pkg/controller/mpi_job_controller.go, cmd/mpi-operator/app/server.go).
    for (const [resource, verb] of [
      ["pods", "create"],
      ["secrets", "create"],
      ["services", "create"],
      ["configmaps", "update"],
      ["jobs", "create"],
      ["mpijobs", "update"],
      ["mpijobs/status", "update"],
      ["leases", "update"],
      ["priorityclasses", "list"],
      ["events", "create"],
    ]) {
      expect({ resource, verb, granted: grants(resource, verb) }).toEqual({ resource, verb, granted: true });
    }
  });

  it("runs the v1alpha1 conversion webhook: the script from components/, pinned node image, cert-manager certificate, Service", () => {
    const ns = "mpi-operator";
    const of = (kind: string, name: string) =>
      built.objects.find((o) => o.kind === kind && o.metadata.namespace === ns && o.metadata.name === name);
    const script = of("ConfigMap", "mpijob-conversion-script");
    expect(script.data["webhook.js"]).toBe(fs.readFileSync(WEBHOOK_SCRIPT_FILE, "utf8"));
    const deployment = of("Deployment", "mpijob-conversion");
    const pod = deployment.spec.template.spec;
    const [c] = pod.containers;
    expect(c.image).toBe(MPIJOB_CONVERSION_IMAGE);
    expect(MPIJOB_CONVERSION_IMAGE).toMatch(/^node:\d+\.\d+\.\d+-alpine\d+\.\d+$/);
    expect(c.command).toEqual(["node", "/opt/mpijob-conversion/webhook.js"]);
    expect(c.env).toContainEqual({ name: "SHARED_FS_CLAIM", value: SHARED_FS_CLAIM });
    expect(pod.automountServiceAccountToken).toBe(false);
    expect(deployment.spec.replicas).toBe(2);
    const certificate = of("Certificate", "mpijob-conversion");
    expect(certificate.spec.dnsNames).toContain("mpijob-conversion.mpi-operator.svc");
    expect(certificate.spec.issuerRef).toEqual({ group: "cert-manager.io", kind: "Issuer", name: "mpijob-conversion-selfsigned" });
    expect(of("Issuer", "mpijob-conversion-selfsigned").spec).toEqual({ selfSigned: {} });
    expect(pod.volumes).toContainEqual({ name: "tls", secret: { secretName: certificate.spec.secretName } });
    const service = of("Service", "mpijob-conversion");
    expect(service.spec.ports).toEqual([{ name: "https", port: 443, targetPort: "https", protocol: "TCP" }]);
    expect(c.ports).toEqual([{ name: "https", containerPort: 8443 }]);
    expect(service.spec.selector).toEqual(deployment.spec.selector.matchLabels);
  });

  it("transforms the pinned upstream CRD: v1alpha1 served (deprecated, not stored), v2beta1 stored, conversion by the webhook's Service", async () => {
    let operator: MpiOperator | undefined;
    const resources = await runMocked(() => {
      const provider = new k8s.Provider("test", { kubeconfig: "{}" });
      operator = new MpiOperator("mpi", { provider, image: "mpioperator/mpi-operator:0.8.2" });
    });
    // The file the program ships (what the ConfigFile applies).
    const upstream = YAML.parseAllDocuments(fs.readFileSync(MPI_OPERATOR_CRD_FILE, "utf8"))
      .map((d) => d.toJS())
      .find((d) => d?.kind === "CustomResourceDefinition");
    const before = JSON.stringify(upstream);
    const type = "kubernetes:apiextensions.k8s.io/v1:CustomResourceDefinition";
    const result = await operator!.crdTransform({ type, name: "mpi-crd:mpijobs.kubeflow.org", custom: true, props: upstream, opts: {} });
    expect(JSON.stringify(upstream)).toBe(before); // pure: the input is left alone
    const crd = (result as any).props;
    const versions = Object.fromEntries(crd.spec.versions.map((v: any) => [v.name, v]));
    expect(Object.keys(versions)).toEqual(["v2beta1", "v1alpha1"]);
    expect(versions.v2beta1).toEqual(upstream.spec.versions[0]);
    expect(versions.v2beta1).toMatchObject({ served: true, storage: true });
    expect(versions.v1alpha1).toMatchObject({
      served: true,
      storage: false,
      deprecated: true,
      deprecationWarning: DEPRECATION_WARNING,
      subresources: { status: {} },
    });
    expect(Object.keys(versions.v1alpha1.schema.openAPIV3Schema.properties.spec.properties).sort()).toEqual([
      "backoffLimit",
      "gpus",
      "launcherOnMaster",
      "replicas",
      "template",
    ]);
    // No defaults (a v1alpha1 object reads back as written) but those the API server requires of map-list keys.
    const defaults = [...JSON.stringify(versions.v1alpha1.schema).matchAll(/"(\w+)":\{[^{}]*"default":("[^"]*")/g)].map(
      (m) => `${m[1]}=${m[2]}`,
    );
    expect(new Set(defaults)).toEqual(new Set(['protocol="TCP"', 'name=""']));
    const service = built.objects.find((o) => o.kind === "Service" && o.metadata.name === "mpijob-conversion");
    expect(crd.spec.conversion).toEqual({
      strategy: "Webhook",
      webhook: {
        conversionReviewVersions: ["v1"],
        clientConfig: {
          service: {
            namespace: service.metadata.namespace,
            name: service.metadata.name,
            port: service.spec.ports[0].port,
            path: "/convert",
          },
        },
      },
    });
    expect(crd.metadata.annotations["cert-manager.io/inject-ca-from"]).toBe("mpi-operator/mpijob-conversion");
    // Other resources pass through untouched; the ConfigFile names the shipped file, with the transform.
    expect(
      await operator!.crdTransform({
        type: "kubernetes:core/v1:Namespace",
        name: "x",
        custom: true,
        props: { metadata: { name: "x" } },
        opts: {},
      }),
    ).toBeUndefined();
    expect((resources.find((r) => r.type === "kubernetes:yaml/v2:ConfigFile")!.inputs as any).file).toBe(MPI_OPERATOR_CRD_SOURCE);
  });
});
