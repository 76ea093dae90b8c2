/**
 * Deterministic key material for the mock runtime: the same resource name always yields the same,
 * real (usable) key, so renders are byte-identical and host tests can log in with the program's key.
 */
import * as crypto from "crypto";

export interface MockKey {
  privateKeyPem: string;
  privateKeyPemPkcs8: string;
  privateKeyOpenssh: string;
  publicKeyPem: string;
  publicKeyOpenssh: string;
  publicKeyFingerprintSha256: string;
  publicKeyFingerprintMd5: string;
}

export function seed(label: string): Buffer {
  return crypto.createHash("sha256").update(`dare-mock:${label}`).digest();
}

function sshString(data: Buffer | string): Buffer {
  const body = Buffer.isBuffer(data) ? data : Buffer.from(data);
  const length = Buffer.alloc(4);
  length.writeUInt32BE(body.length);
  return Buffer.concat([length, body]);
}

function wrap(base64: string, width: number): string {
  return base64.match(new RegExp(`.{1,${width}}`, "g"))!.join("\n");
}

function fingerprints(blob: Buffer): Pick<MockKey, "publicKeyFingerprintSha256" | "publicKeyFingerprintMd5"> {
  const sha = crypto.createHash("sha256").update(blob).digest("base64").replace(/=+$/, "");
  const md5 = crypto.createHash("md5").update(blob).digest("hex").match(/../g)!.join(":");
  return { publicKeyFingerprintSha256: `SHA256:${sha}`, publicKeyFingerprintMd5: md5 };
}

/** OpenSSH's "openssh-key-v1" container, unencrypted, as @pulumi/tls's privateKeyOpenssh gives it. */
function opensshPrivateKey(keyType: string, publicBlob: Buffer, privateFields: Buffer[], check: number): string {
  const checkBytes = Buffer.alloc(8);
  checkBytes.writeUInt32BE(check >>> 0, 0);
  checkBytes.writeUInt32BE(check >>> 0, 4);
  let section = Buffer.concat([checkBytes, sshString(keyType), ...privateFields, sshString("")]);
  const padding = Array.from({ length: (8 - (section.length % 8)) % 8 }, (_, i) => i + 1);
  section = Buffer.concat([section, Buffer.from(padding)]);
  const count = Buffer.alloc(4);
  count.writeUInt32BE(1);
  const body = Buffer.concat([
    Buffer.from("openssh-key-v1\0"),
    sshString("none"),
    sshString("none"),
    sshString(""),
    count,
    sshString(publicBlob),
    sshString(section),
  ]);
  return `-----BEGIN OPENSSH PRIVATE KEY-----\n${wrap(body.toString("base64"), 70)}\n-----END OPENSSH PRIVATE KEY-----\n`;
}

function ed25519(label: string): MockKey {
  const secret = seed(label);
  const pkcs8 = Buffer.concat([Buffer.from("302e020100300506032b657004220420", "hex"), secret]);
  const key = crypto.createPrivateKey({ key: pkcs8, format: "der", type: "pkcs8" });
  const publicKey = crypto.createPublicKey(key);
  const raw = publicKey.export({ format: "der", type: "spki" }).subarray(-32);
  const blob = Buffer.concat([sshString("ssh-ed25519"), sshString(raw)]);
  const pem = key.export({ format: "pem", type: "pkcs8" }).toString();
  return {
    privateKeyPem: pem,
    privateKeyPemPkcs8: pem,
    privateKeyOpenssh: opensshPrivateKey(
      "ssh-ed25519",
      blob,
      [sshString(raw), sshString(Buffer.concat([secret, raw]))],
      secret.readUInt32BE(0),
    ),
    publicKeyPem: publicKey.export({ format: "pem", type: "spki" }).toString(),
    publicKeyOpenssh: `ssh-ed25519 ${blob.toString("base64")}\n`,
    ...fingerprints(blob),
  };
}

const CURVES: Record<string, { node: string; jwk: string; ssh: string; size: number }> = {
  P256: { node: "prime256v1", jwk: "P-256", ssh: "nistp256", size: 32 },
  P384: { node: "secp384r1", jwk: "P-384", ssh: "nistp384", size: 48 },
};

function ecdsa(label: string, curveName: string): MockKey {
  const curve = CURVES[curveName];
  if (!curve) throw new Error(`mock tls.PrivateKey: unsupported ECDSA curve ${curveName} (use P256 or P384)`);
  const d = crypto
    .createHash(curve.size === 32 ? "sha256" : "sha384")
    .update(`dare-mock:${label}`)
    .digest();
  const ecdh = crypto.createECDH(curve.node);
  ecdh.setPrivateKey(d);
  const point = ecdh.getPublicKey();
  const b64url = (b: Buffer) => b.toString("base64url");
  const key = crypto.createPrivateKey({
    key: {
      kty: "EC",
      crv: curve.jwk,
      d: b64url(d),
      x: b64url(point.subarray(1, 1 + curve.size)),
      y: b64url(point.subarray(1 + curve.size)),
    },
    format: "jwk",
  });
  const keyType = `ecdsa-sha2-${curve.ssh}`;
  const blob = Buffer.concat([sshString(keyType), sshString(curve.ssh), sshString(point)]);
  // OpenSSH stores the private scalar as an mpint: a leading zero byte when the high bit is set.
  const mpint = d[0] & 0x80 ? Buffer.concat([Buffer.from([0]), d]) : d;
  return {
    privateKeyPem: key.export({ format: "pem", type: "sec1" }).toString(),
    privateKeyPemPkcs8: key.export({ format: "pem", type: "pkcs8" }).toString(),
    privateKeyOpenssh: opensshPrivateKey(keyType, blob, [sshString(curve.ssh), sshString(point), sshString(mpint)], d.readUInt32BE(0)),
    publicKeyPem: crypto.createPublicKey(key).export({ format: "pem", type: "spki" }).toString(),
    publicKeyOpenssh: `${keyType} ${blob.toString("base64")}\n`,
    ...fingerprints(blob),
  };
}

/** The key a mock tls.PrivateKey named `label` has. RSA is refused: it cannot be derived from a seed. */
export function mockPrivateKey(label: string, algorithm: string, ecdsaCurve?: string): MockKey {
  if (algorithm === "ED25519") return ed25519(label);
  if (algorithm === "ECDSA") return ecdsa(label, ecdsaCurve ?? "P224");
  throw new Error(
    `mock tls.PrivateKey "${label}": algorithm ${algorithm} is not supported by the mocks; the program uses ED25519 or ECDSA`,
  );
}

/** A PEM block that stands for a certificate: deterministic, clearly not a real one. */
export function mockCertificatePem(label: string, subject: unknown): string {
  const body = Buffer.from(JSON.stringify({ mock: "certificate", label, subject }));
  return `-----BEGIN CERTIFICATE-----\n${wrap(body.toString("base64"), 64)}\n-----END CERTIFICATE-----\n`;
}
