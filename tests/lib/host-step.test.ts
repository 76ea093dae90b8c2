/**
 * hostStep's wire format: plain parameters at the head of the command (visible in a preview and the
 * render's resources.json), secret ones only on stdin; and the command, run by real bash, gives the script
 * every parameter whatever its characters.
 */
import { spawnSync } from "child_process";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import * as pulumi from "@pulumi/pulumi";
import { hostStep, MAX_COMMAND_BYTES, plainParametersOf, readScript, SshAccess, stepCommand, wrapScript } from "../../lib/host-step";
import { Host } from "../../lib/hosts";
import { EXAMPLE_HOST_KEY } from "../../lib/config";
import { SECRET_SIG, SPECIAL_SIG_KEY } from "../../tools/mocks";
import { ofType, runMocked, unsecret } from "../support/mocked";

const HOST: Host = {
  name: "h-0",
  role: "worker",
  pool: "workers",
  address: "192.0.2.10",
  privateAddress: "192.0.2.10",
  sshUser: "ubuntu",
  port: 22,
  disks: [],
  hostKey: EXAMPLE_HOST_KEY,
  viaBastion: false,
};
const SECRET_VALUE = "s3cr3t-'quoted'-$(never)";
const isSecret = (v: any) => Boolean(v && v[SPECIAL_SIG_KEY] === SECRET_SIG);

async function stepWith(env: Record<string, pulumi.Input<string>>, deleteScript?: string) {
  const resources = await runMocked(() => {
    const access: SshAccess = { privateKey: pulumi.secret("key"), bastion: undefined };
    hostStep("t", { host: HOST, step: "s", script: "k8s-node.sh", env, deleteScript, rerunOnNewMachine: false }, access, {});
  });
  return ofType(resources, "command:remote:Command")[0].inputs as any;
}

/**
 * What a step's script sees: its command with `env -0` as the script (the same parameter block), run by
 * real bash without sudo, stdin on its stdin.
 */
function seenByScript(create: string, stdin: string): Record<string, string> {
  const command = wrapScript("env -0\n", plainParametersOf(create)).replace(/^sudo -n /, "");
  // From a file: on a socket (a pipe of node's) bash would take itself for an rsh session and read ~/.bashrc.
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "dare-stdin-"));
  fs.writeFileSync(path.join(dir, "stdin"), stdin);
  const input = fs.openSync(path.join(dir, "stdin"), "r");
  const r = spawnSync("sh", ["-c", command], { stdio: [input, "pipe", "pipe"], env: {}, encoding: "utf8" });
  fs.closeSync(input);
  fs.rmSync(dir, { recursive: true });
  expect(r.stderr).toBe("");
  return Object.fromEntries(
    r.stdout
      .split("\0")
      .filter(Boolean)
      .map((l) => [l.slice(0, l.indexOf("=")), l.slice(l.indexOf("=") + 1)]),
  );
}

describe("hostStep parameters", () => {
  it("puts plain parameters in the command and secret ones only on stdin", async () => {
    const inputs = await stepWith({ PLAIN: "1.36.4", OTHER: "a 'b'\nc", TOKEN: pulumi.secret(SECRET_VALUE) }, "k8s-remove-node.sh");
    expect(isSecret(inputs.create)).toBe(false);
    expect(isSecret(inputs.delete)).toBe(false);
    expect(plainParametersOf(inputs.create)).toBe("OTHER='a '\\''b'\\''\nc'\nPLAIN='1.36.4'\n");
    // The delete command carries the same plain parameters: `pulumi destroy` runs it with those of the last update.
    expect(plainParametersOf(inputs.delete)).toBe(plainParametersOf(inputs.create));
    expect(isSecret(inputs.stdin)).toBe(true);
    expect(unsecret(inputs.stdin)).toBe("TOKEN='s3cr3t-'\\''quoted'\\''-$(never)'\n");
    expect(JSON.stringify([inputs.create, inputs.delete, inputs.connection])).not.toContain("s3cr3t");
    // A step holding a secret does not stream its output to the logs.
    expect(inputs.logging).toBe("none");
  });

  it("keeps a secret that is computed (an Output) off the command too", async () => {
    const computed = pulumi.output("base").apply((b) => pulumi.secret(`${b}-s3cr3t`));
    const inputs = await stepWith({ PLAIN: "x", DERIVED: pulumi.all([computed, "y"]).apply(([a, b]) => `${a}${b}`) });
    expect(plainParametersOf(inputs.create)).toBe("PLAIN='x'\n");
    expect(unsecret(inputs.stdin)).toBe("DERIVED='base-s3cr3ty'\n");
    expect(JSON.stringify(inputs.create)).not.toContain("s3cr3t");
  });

  it("sends an empty, non-secret stdin and streams the output when no parameter is secret", async () => {
    const inputs = await stepWith({ A: "1" });
    expect(inputs.stdin).toBe("");
    expect(inputs.logging).toBe("stdoutAndStderr");
    expect(plainParametersOf(inputs.create)).toBe("A='1'\n");
  });

  it("gives the script every parameter, plain and secret, with their exact values", async () => {
    const inputs = await stepWith({ PLAIN: "a 'b'\n$HOME `c`", TOKEN: pulumi.secret(SECRET_VALUE) });
    expect(seenByScript(inputs.create, unsecret(inputs.stdin))).toMatchObject({ PLAIN: "a 'b'\n$HOME `c`", TOKEN: SECRET_VALUE });
  });

  it("a change of a plain parameter changes the command (an update: the provider runs create again), not stdin", async () => {
    const before = await stepWith({ V: "1.36.4", TOKEN: pulumi.secret("t") });
    const after = await stepWith({ V: "1.37.0", TOKEN: pulumi.secret("t") });
    expect(after.create).not.toBe(before.create);
    expect(unsecret(after.stdin)).toBe(unsecret(before.stdin));
  });

  it("refuses a command longer than one argument may be, naming the step", async () => {
    expect(() => stepCommand("t-h-0-s", "k8s-node.sh", `BIG='${"x".repeat(MAX_COMMAND_BYTES)}'\n`)).toThrow(
      /^host step t-h-0-s: k8s-node.sh with its plain parameters is \d+ bytes, more than a command-line argument may be \(131072\)/,
    );
    expect(stepCommand("t-h-0-s", "k8s-node.sh", "A='1'\n")).toBe(wrapScript(readScript("k8s-node.sh"), "A='1'\n"));
  });

  it("plainParametersOf reads back what wrapScript wrote", () => {
    expect(plainParametersOf(wrapScript("echo hi\n", "A='x'\\''y'\nB='1\n2'\n"))).toBe("A='x'\\''y'\nB='1\n2'\n");
    expect(plainParametersOf(wrapScript("echo hi\n"))).toBe("");
  });
});
