/**
 * The dare-ca CA moved from the Security component to the top level (so that the hosts can trust it before the
 * platform layers exist): under the real engine, a stack made with the former layout keeps its CA. The former
 * layout is rebuilt here as it was declared (a `dare:platform:Security` component "security" with the key and
 * certificate "security-ca" as children, the same arguments); then dareCertificateAuthority() runs on the same
 * stack: its aliases must make the engine keep both resources (no create, no replace, no delete of them) and the
 * certificate is the one made before. Inline programs through the Automation API, with the engine tier's CLI and
 * tls plugin (tools/engine/build.sh).
 */
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import * as pulumi from "@pulumi/pulumi";
import { LocalWorkspace, PulumiCommand, Stack } from "@pulumi/pulumi/automation";
import * as tls from "@pulumi/tls";
import { dareCertificateAuthority, SECURITY_COMPONENT } from "../../components/security";
import { engineDir, engineEnv } from "../../tools/engine/pulumi";

jest.setTimeout(300_000);

const CLUSTER = "dare-alias";

/** The layout before the move, as components/security.ts declared it. */
class FormerSecurity extends pulumi.ComponentResource {
  readonly certPem: pulumi.Output<string>;
  constructor() {
    super(SECURITY_COMPONENT.type, SECURITY_COMPONENT.name, {}, {});
    const caKey = new tls.PrivateKey(`${SECURITY_COMPONENT.name}-ca`, { algorithm: "ECDSA", ecdsaCurve: "P256" }, { parent: this });
    const caCert = new tls.SelfSignedCert(
      `${SECURITY_COMPONENT.name}-ca`,
      {
        privateKeyPem: caKey.privateKeyPem,
        isCaCertificate: true,
        validityPeriodHours: 10 * 365 * 24,
        subject: { commonName: `${CLUSTER} CA`, organization: "DARE" },
        allowedUses: ["cert_signing", "crl_signing", "digital_signature"],
      },
      { parent: this },
    );
    this.certPem = caCert.certPem;
  }
}

let dir: string;
let stack: (program: () => Promise<Record<string, unknown>>) => Promise<Stack>;

beforeAll(async () => {
  const bin = path.join(engineDir(), "bin", "pulumi");
  if (!fs.existsSync(bin)) throw new Error(`no Pulumi CLI at ${bin}: run tools/engine/build.sh first (npm run test:engine does)`);
  dir = fs.mkdtempSync(path.join(os.tmpdir(), "dare-ca-alias-"));
  const env = engineEnv();
  const envVars: Record<string, string> = {
    ...(Object.fromEntries(Object.entries(env).filter(([, v]) => v !== undefined)) as Record<string, string>),
    PULUMI_BACKEND_URL: `file://${dir}`,
    PULUMI_CONFIG_PASSPHRASE: "engine-tier-test-passphrase",
  };
  const pulumiCommand = await PulumiCommand.get({ root: engineDir(), skipVersionCheck: true });
  stack = (program) =>
    LocalWorkspace.createOrSelectStack(
      { stackName: "alias", projectName: "dare", program },
      { pulumiCommand, envVars, workDir: dir, projectSettings: { name: "dare", runtime: "nodejs" } },
    );
});
afterAll(() => {
  if (dir) fs.rmSync(dir, { recursive: true, force: true });
});

it("keeps the CA of a stack made before the move: no create, replace or delete of it, the same certificate", async () => {
  const before = await stack(async () => ({ certPem: new FormerSecurity().certPem }));
  const made = await before.up();
  const certPem = made.outputs.certPem.value as string;
  expect(certPem).toMatch(/^-----BEGIN CERTIFICATE-----/);

  const after = await stack(async () => ({ certPem: dareCertificateAuthority(CLUSTER).certPem }));
  const plan = await after.preview({ diff: true });
  const ops = plan.changeSummary as Record<string, number>;
  // Only the component goes; the key and the certificate stay where the aliases point.
  expect({ create: ops.create ?? 0, replace: ops.replace ?? 0, delete: ops.delete ?? 0 }).toEqual({ create: 0, replace: 0, delete: 1 });
  const result = await after.up();
  expect(result.outputs.certPem.value).toBe(certPem);
  expect(result.summary.resourceChanges).toMatchObject({ delete: 1 });
});
