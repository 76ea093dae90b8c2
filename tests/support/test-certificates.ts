/** Throwaway certificates made by openssl for tests: a self-signed P-256 certificate, a CA's or a leaf's. */
import { spawnSync } from "child_process";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";

/** A self-signed certificate (PEM) for `commonName`, valid a day, with basicConstraints CA:TRUE or CA:FALSE. */
export function selfSignedCertificate(commonName: string, { ca }: { ca: boolean }): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "test-cert-"));
  try {
    const r = spawnSync(
      "openssl",
      [
        "req",
        "-x509",
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:prime256v1",
        "-nodes",
        "-keyout",
        "key.pem",
        "-out",
        "cert.pem",
      ].concat(["-days", "1", "-subj", `/CN=${commonName}`, "-addext", `basicConstraints=critical,CA:${ca ? "TRUE" : "FALSE"}`]),
      { cwd: dir, encoding: "utf8" },
    );
    if (r.status !== 0) throw new Error(`openssl: ${r.stderr}`);
    return fs.readFileSync(path.join(dir, "cert.pem"), "utf8");
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

/**
 * A PKCS#10 request as a kubelet makes it for its serving certificate (EC P-256 key, O=system:nodes, the
 * common name and subjectAltName given), base64 of its PEM as a CertificateSigningRequest's spec.request holds it.
 */
export function kubeletServingRequest(commonName: string, subjectAltNames: string): string {
  const made = spawnSync(
    "openssl",
    ["req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-keyout", "/dev/null"].concat([
      "-subj",
      `/O=system:nodes/CN=${commonName}`,
      "-addext",
      `subjectAltName=${subjectAltNames}`,
    ]),
    { encoding: "utf8" },
  );
  if (made.status !== 0) throw new Error(`openssl: ${made.stderr}`);
  return Buffer.from(made.stdout).toString("base64");
}

function openssl(dir: string, args: string[]): void {
  const r = spawnSync("openssl", args, { cwd: dir, encoding: "utf8" });
  if (r.status !== 0) throw new Error(`openssl ${args[0]}: ${r.stderr}`);
}

/** A CA in `dir` (ca.key, ca.crt: EC P-256, valid two days) for `leafCertificate`. */
export function testCa(dir: string, commonName: string): void {
  openssl(dir, [
    ...["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"],
    ...["-keyout", "ca.key", "-out", "ca.crt", "-days", "2", "-sha256", "-subj", `/CN=${commonName}`],
    ...["-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign,cRLSign"],
  ]);
}

/**
 * `<name>.key` and `<name>.crt` in `dir`, signed by its testCa: an EC P-256 leaf for `usage` (extendedKeyUsage,
 * e.g. "serverAuth,clientAuth") with the subjectAltNames given (e.g. "DNS:localhost,IP:127.0.0.1").
 */
export function leafCertificate(dir: string, name: string, subject: string, { usage, sans }: { usage: string; sans?: string }): void {
  openssl(dir, [
    ...["req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"],
    ...["-keyout", `${name}.key`, "-out", `${name}.csr`, "-subj", subject],
  ]);
  const extensions = [
    "basicConstraints=critical,CA:FALSE",
    "keyUsage=critical,digitalSignature,keyEncipherment",
    `extendedKeyUsage=${usage}`,
    ...(sans ? [`subjectAltName=${sans}`] : []),
  ];
  fs.writeFileSync(path.join(dir, `${name}.ext`), extensions.join("\n") + "\n");
  openssl(dir, [
    ...["x509", "-req", "-in", `${name}.csr`, "-CA", "ca.crt", "-CAkey", "ca.key", "-CAcreateserial"],
    ...["-days", "2", "-sha256", "-extfile", `${name}.ext`, "-out", `${name}.crt`],
  ]);
}
