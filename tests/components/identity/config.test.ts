/**
 * The A/A and monitoring configuration keys: dare:keycloak, dare:identityProviders, dare:alerting.
 * Wrong input is refused before anything is created, with the key, why and an example; secrets
 * never appear in the message and stay Pulumi secrets.
 */
import * as pulumi from "@pulumi/pulumi";
import { SITE_CONFIG } from "../../support/site";
import { ConfigError, ConfigSource, DareConfig, loadConfig, Problem } from "../../../lib/config";

const valid = { domain: "dare.example.org", adminCidrs: ["192.0.2.0/24"], ...SITE_CONFIG };
const CLIENT_SECRET = "egi-client-secret-0123456789";
const SMTP_PASSWORD = "smtp-password-0123456789";

const egi = {
  alias: "egi",
  displayName: "EGI Check-in",
  issuer: "https://aai.egi.eu/auth/realms/egi",
  authorizationUrl: "https://aai.egi.eu/auth/realms/egi/protocol/openid-connect/auth",
  tokenUrl: "https://aai.egi.eu/auth/realms/egi/protocol/openid-connect/token",
  jwksUrl: "https://aai.egi.eu/auth/realms/egi/protocol/openid-connect/certs",
  clientId: "dare",
  clientSecret: CLIENT_SECRET,
};
const smtp = {
  smtpHost: "smtp.example.org:587",
  from: "alertmanager@dare.example.org",
  to: ["ops@example.org"],
  user: "am",
  smtpPassword: SMTP_PASSWORD,
};

function source(values: Record<string, unknown>, secretKeys: string[] = ["identityProviders", "alerting"]): ConfigSource {
  const all: Record<string, unknown> = { ...valid, ...values };
  return {
    stack: "test",
    get: (key) => (all[key] === undefined ? undefined : typeof all[key] === "string" ? (all[key] as string) : JSON.stringify(all[key])),
    isSecret: (key) => secretKeys.includes(key) && all[key] !== undefined,
  };
}

function refused(values: Record<string, unknown>, secretKeys?: string[]): { problems: Problem[]; message: string } {
  try {
    loadConfig(source(values, secretKeys));
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigError);
    return { problems: (err as ConfigError).problems, message: (err as Error).message };
  }
  throw new Error("expected the configuration to be refused");
}

const secretValue = (o: pulumi.Output<string>) =>
  new Promise<string>((resolve) =>
    o.apply((v) => {
      resolve(v);
      return v;
    }),
  );

describe("dare:keycloak", () => {
  it("defaults to one Keycloak pod on one PostgreSQL instance", () => {
    expect(loadConfig(source({})).keycloak).toEqual({ replicas: 1, databaseInstances: 1, databaseSizeGb: 10 });
  });

  it("refuses zero instances and unknown keys together, in one message", () => {
    const { problems } = refused({ keycloak: { replicas: 0, dbInstances: 3 } });
    expect(problems.map((p) => p.key).sort()).toEqual(["keycloak.dbInstances", "keycloak.replicas"]);
  });
});

describe("dare:identityProviders", () => {
  let config: DareConfig;
  beforeAll(() => {
    config = loadConfig(
      source({
        identityProviders: [
          egi,
          {
            alias: "b2access",
            protocol: "saml",
            idpEntityId: "https://b2access.eudat.eu/metadata",
            singleSignOnServiceUrl: "https://b2access.eudat.eu/sso",
          },
        ],
      }),
    );
  });

  it("reads OIDC and SAML providers, the client secret as a Pulumi secret", async () => {
    const [oidc, saml] = config.identityProviders;
    expect(oidc).toMatchObject({ protocol: "oidc", alias: "egi", clientId: "dare", issuer: egi.issuer });
    expect(saml).toMatchObject({ protocol: "saml", alias: "b2access", displayName: "b2access" });
    if (oidc.protocol !== "oidc") throw new Error("expected oidc");
    expect(await (oidc.clientSecret as any).isSecret).toBe(true);
    expect(await secretValue(oidc.clientSecret)).toBe(CLIENT_SECRET);
  });

  it("refuses a missing secret, a bad URL and a duplicate alias without printing the secret", () => {
    const { problems, message } = refused({
      identityProviders: [
        { ...egi, clientSecret: undefined },
        { ...egi, tokenUrl: "http://insecure.example.org/token", clientSecret: CLIENT_SECRET, clientsecret: CLIENT_SECRET },
      ],
    });
    const keys = problems.map((p) => p.key);
    expect(keys).toEqual(
      expect.arrayContaining([
        "identityProviders[0].clientSecret",
        "identityProviders[1].tokenUrl",
        "identityProviders[1].alias",
        "identityProviders[1].clientsecret",
      ]),
    );
    expect(problems.find((p) => p.key === "identityProviders[0].clientSecret")!.example).toMatch(
      /--secret --path 'identityProviders\[0\]\.clientSecret'/,
    );
    expect(message).not.toContain(CLIENT_SECRET);
  });

  it("refuses a client secret that was not set with --secret", () => {
    const { problems, message } = refused({ identityProviders: [egi] }, []);
    expect(problems.map((p) => p.key)).toEqual(["identityProviders[0].clientSecret"]);
    expect(problems[0].why).toMatch(/--secret/);
    expect(message).not.toContain(CLIENT_SECRET);
  });

  it("refuses an alias that cannot be part of a URL", () => {
    expect(refused({ identityProviders: [{ ...egi, alias: "EGI Check-in" }] }).problems.map((p) => p.key)).toEqual([
      "identityProviders[0].alias",
    ]);
  });
});

describe("dare:alerting", () => {
  it("is optional", () => {
    expect(loadConfig(source({})).alerting).toBeUndefined();
  });

  it("reads the relay, the addresses, the password as a secret and critical-only by default", async () => {
    const alerting = loadConfig(source({ alerting: smtp })).alerting!;
    expect(alerting).toMatchObject({ smtpHost: "smtp.example.org:587", to: ["ops@example.org"], user: "am", severities: ["critical"] });
    expect(await secretValue(alerting.smtpPassword!)).toBe(SMTP_PASSWORD);
    expect(await (alerting.smtpPassword as any).isSecret).toBe(true);
  });

  it("refuses a user without password, a bad host, bad addresses and unknown severities", () => {
    const { problems } = refused({ alerting: { smtpHost: "smtp.example.org", from: "nobody", to: [], user: "am", severities: ["page"] } });
    expect(problems.map((p) => p.key).sort()).toEqual([
      "alerting.from",
      "alerting.severities[0]",
      "alerting.smtpHost",
      "alerting.smtpPassword",
      "alerting.to",
    ]);
  });

  it("refuses a password set without --secret, without printing it", () => {
    const { problems, message } = refused({ alerting: smtp }, []);
    expect(problems.map((p) => p.key)).toEqual(["alerting.smtpPassword"]);
    expect(message).not.toContain(SMTP_PASSWORD);
  });
});
