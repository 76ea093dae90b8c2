/** dare:skipAwait (lib/await.ts): the one switch that turns readiness awaits off, CRDs excepted. */
import * as k8s from "@pulumi/kubernetes";
import { installSkipAwait, SKIP_AWAIT_ANNOTATION } from "../../lib/await";
import { ConfigError, loadConfig } from "../../lib/config";
import { runMocked, unsecret } from "../support/mocked";
import { SITE_CONFIG } from "../support/site";

const declare = () => {
  new k8s.helm.v3.Release("chart", { chart: "traefik", version: "1.0.0", namespace: "networking", values: {} });
  new k8s.apps.v1.Deployment("app", {
    metadata: { name: "app", namespace: "dare", annotations: { keep: "me" } },
    spec: {
      selector: { matchLabels: { app: "a" } },
      template: { metadata: { labels: { app: "a" } }, spec: { containers: [{ name: "a", image: "a:1" }] } },
    },
  });
  new k8s.core.v1.Service("svc", { metadata: { name: "svc" }, spec: { ports: [{ port: 80 }] } });
  new k8s.apiextensions.v1.CustomResourceDefinition("crd", {
    metadata: { name: "things.example.org" },
    spec: { group: "example.org", names: { kind: "Thing", plural: "things" }, scope: "Namespaced", versions: [] },
  });
};

describe("dare:skipAwait", () => {
  it("installs Helm releases without waiting or hooks and annotates every object but CRDs", async () => {
    const resources = await runMocked(() => {
      installSkipAwait();
      declare();
    });
    const inputs = (name: string) => unsecret(resources.find((r) => r.name === name)!.inputs);
    expect(inputs("chart").skipAwait).toBe(true);
    // Helm waits for hook Jobs whatever --wait says: no hooks either.
    expect(inputs("chart").disableWebhooks).toBe(true);
    expect(inputs("app").metadata.annotations).toEqual({ keep: "me", [SKIP_AWAIT_ANNOTATION]: "true" });
    expect(inputs("svc").metadata.annotations).toEqual({ [SKIP_AWAIT_ANNOTATION]: "true" });
    // The provider then still waits for Established before the CRD's custom resources.
    expect(inputs("crd").metadata.annotations).toBeUndefined();
  });

  it("leaves every await in place when off", async () => {
    const resources = await runMocked(declare);
    const inputs = (name: string) => unsecret(resources.find((r) => r.name === name)!.inputs);
    expect(inputs("chart").skipAwait).toBeUndefined();
    expect(inputs("chart").disableWebhooks).toBeUndefined();
    expect(inputs("app").metadata.annotations).toEqual({ keep: "me" });
  });

  it("is read as a boolean, off by default; anything else is refused with an example", () => {
    const load = (skipAwait?: unknown) =>
      loadConfig({
        stack: "test",
        get: (key) => {
          const values: Record<string, unknown> = { domain: "dare.example.org", adminCidrs: ["192.0.2.0/24"], ...SITE_CONFIG, skipAwait };
          const v = values[key];
          return v === undefined ? undefined : typeof v === "string" ? v : JSON.stringify(v);
        },
      });
    expect(load().skipAwait).toBe(false);
    expect(load(true).skipAwait).toBe(true);
    try {
      load("yes");
      throw new Error("expected a refusal");
    } catch (e) {
      expect(e).toBeInstanceOf(ConfigError);
      expect((e as ConfigError).problems).toContainEqual(
        expect.objectContaining({ key: "skipAwait", why: "must be true or false", example: "true" }),
      );
    }
  });
});
