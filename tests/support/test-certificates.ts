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
