/**
 * The production render, as an operator reads it: every DARE service with its image and tag, and the
 * objects of this layer (DARE, MPI operator, backups) valid for the cluster.
 */
import * as fs from "fs";
import * as path from "path";
import * as YAML from "yaml";
import { validateRenderDir } from "../../../tools/validate";
import { render, RenderResult } from "../../support/render";

jest.setTimeout(180_000);

let production: RenderResult;
beforeAll(() => {
  production = render("production");
});

const objectsIn = (ns: string): any[] => {
  const dir = path.join(production.dir, "kubernetes", ns);
  return fs.readdirSync(dir).map((f) => YAML.parse(fs.readFileSync(path.join(dir, f), "utf8")));
};

test("shows every DARE service with its image and tag", () => {
  expect(production.status).toBe(0);
  const workloads = objectsIn("dare").filter((o) => ["Deployment", "StatefulSet", "CronJob"].includes(o.kind));
  const images = Object.fromEntries(
    workloads.map((o) => {
      const pod = o.kind === "CronJob" ? o.spec.jobTemplate.spec.template.spec : o.spec.template.spec;
      return [o.metadata.name, pod.containers[0].image];
    }),
  );
  expect(Object.keys(images).sort()).toEqual([
    "d4p-registry",
    "d4p-registry-db",
    "dare-login",
    "exec-api",
    "exec-registry",
    "playground",
    "semantic-data",
    "sprov",
    "sprov-cronjob",
    "sprov-db",
    "sprov-view",
    "workflow-registry",
  ]);
  for (const [name, image] of Object.entries(images)) {
    expect({ name, image }).toEqual({ name, image: expect.stringMatching(/^[a-z0-9./-]+:[A-Za-z0-9_][\w.-]*$/) });
  }
  expect(images["dare-login"]).toBe("registry.gitlab.com/project-dare/dare-platform/dare-login:v1.1");
  expect(images["d4p-registry-db"]).toMatch(/^mysql:8\./);
  expect(images["sprov-db"]).toMatch(/^mongo:/);
  const operator = objectsIn("mpi-operator").find((o) => o.kind === "Deployment");
  expect(operator.spec.template.spec.containers[0].image).toBe("mpioperator/mpi-operator:0.8.2");
  // Production runs the front services twice, each behind a disruption budget.
  expect(
    objectsIn("dare")
      .filter((o) => o.kind === "PodDisruptionBudget")
      .map((o) => o.metadata.name)
      .sort(),
  ).toEqual(["dare-login", "playground", "sprov-view"]);
});

test("the DARE, MPI operator and backup objects pass the project's validation", async () => {
  const errors = await validateRenderDir(production.dir);
  const mine = errors.filter((e) => /^kubernetes\/(dare|dare-backups|mpi-operator|jupyterhub)\//.test(e) || /mpi-operator/.test(e));
  expect(mine).toEqual([]);
});
