/**
 * The DARE layer (services, MPI operator, backups) built under mocks from a configuration, with
 * placeholder A/A outputs: what tests/dare*.test.ts, mpi*.test.ts and backups*.test.ts inspect.
 */
import * as k8s from "@pulumi/kubernetes";
import * as pulumi from "@pulumi/pulumi";
import * as random from "@pulumi/random";
import { Backups } from "../../components/backups";
import { DareConfig, loadConfig } from "../../lib/config";
import { DareServices } from "../../components/dare-services";
import { withSite } from "./site";
import { MpiOperator } from "../../components/dare-services/mpi-operator";
import { RecordedResource } from "../../tools/mocks";
import { redacted, runMocked } from "./mocked";

export const BASE_CONFIG: Record<string, unknown> = {
  domain: "dare.example.org",
  adminCidrs: ["192.0.2.0/24"],
  nodes: {
    controlPlane: { count: 1, flavor: "m1.medium" },
    pools: [{ name: "workers", count: 3, flavor: "m1.large", disks: { count: 1, sizeGb: 50 } }],
  },
  acmeEmail: "ops@example.org",
};

export function configFrom(values: Record<string, unknown>, secretKeys: string[] = []): DareConfig {
  const all: Record<string, unknown> = { ...BASE_CONFIG, ...withSite(values) };
  return loadConfig({
    stack: "test",
    get: (key) => (all[key] === undefined ? undefined : typeof all[key] === "string" ? (all[key] as string) : JSON.stringify(all[key])),
    isSecret: (key) => secretKeys.includes(key),
  });
}

/** Stands in for the Monitoring component: one child, so that waiting for it is visible in dependencies. */
export function monitoringStandIn(): pulumi.ComponentResource {
  const monitoring = new pulumi.ComponentResource("test:monitoring:Monitoring", "monitoring");
  new random.RandomString("monitoring-crds", { length: 8 }, { parent: monitoring });
  return monitoring;
}

export interface Built {
  resources: RecordedResource[];
  /** Kubernetes objects as rendered (secrets "[secret]") */
  objects: any[];
}

export async function buildDareLayer(config: DareConfig): Promise<Built> {
  const resources = await runMocked(() => {
    const provider = new k8s.Provider("test", { kubeconfig: "{}" });
    const dare = config.dare;
    new MpiOperator("mpi", { provider, image: dare.images["mpi-operator"] });
    const services = new DareServices("dare", {
      provider,
      domain: config.domain,
      images: dare.images,
      services: dare.services,
      sharedFilesystemSize: dare.sharedFilesystemSize,
      jupyterhub: dare.jupyterhub,
      workflowInternetAccess: dare.workflowInternetAccess,
      apiServerCidrs: ["10.10.0.10/32"],
      keycloak: {
        url: "https://dare.example.org/auth",
        realm: "dare",
        clientId: "dare-login",
        clientSecret: pulumi.secret("placeholder-client-secret"),
        adminUsername: "dare-admin",
        adminPassword: pulumi.secret("placeholder-admin-password"),
      },
    });
    new Backups("backups", {
      provider,
      policy: dare.backup,
      images: {
        etcd: dare.images.etcd,
        postgres: dare.images["postgres-client"],
        busybox: dare.images.busybox,
      },
      databases: services.databaseDumps,
      postgres: {
        host: "keycloak-db-rw.keycloak.svc",
        port: 5432,
        username: "keycloak",
        database: "keycloak",
        password: pulumi.secret("placeholder-pg-password"),
      },
    });
  });
  const objects = resources
    .filter((r) => r.custom && r.type.startsWith("kubernetes:") && !r.type.startsWith("kubernetes:helm.sh/"))
    .map((r) => redacted(r));
  return { resources, objects };
}
