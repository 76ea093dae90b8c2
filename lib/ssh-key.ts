/**
 * An operator's own SSH key (dare:sshPrivateKey), read without a provider: the public half is stored in
 * the clear inside the OpenSSH private-key format (PROTOCOL.key in OpenSSH's sources), so the program can
 * publish it (stack output sshPublicKey, the OpenStack keypair) without a tls resource.
 */

const MAGIC = "openssh-key-v1\0";

/** Why `text` is not an unencrypted OpenSSH private key, or undefined when it is one. */
export function opensshKeyProblem(text: string): string | undefined {
  try {
    const { cipher } = parse(text);
    return cipher === "none" ? undefined : `is encrypted (${cipher}): SSH steps run unattended, so give a key without a passphrase`;
  } catch (err) {
    return (err as Error).message;
  }
}

/** The `authorized_keys` line of an OpenSSH private key (`<type> <base64>`). */
export function opensshPublicKey(privateKey: string): string {
  const { publicBlob } = parse(privateKey);
  const type = readString(publicBlob, 0).value.toString("latin1");
  return `${type} ${publicBlob.toString("base64")}`;
}

function parse(text: string): { cipher: string; publicBlob: Buffer } {
  const match = /-----BEGIN OPENSSH PRIVATE KEY-----([\s\S]+?)-----END OPENSSH PRIVATE KEY-----/.exec(text);
  if (!match) throw new Error("must be a private key in OpenSSH format (-----BEGIN OPENSSH PRIVATE KEY-----), as ssh-keygen writes it");
  const data = Buffer.from(match[1].replace(/\s+/g, ""), "base64");
  if (data.subarray(0, MAGIC.length).toString("latin1") !== MAGIC)
    throw new Error("is not an OpenSSH private key (no openssh-key-v1 header)");
  let at = MAGIC.length;
  const cipher = readString(data, at);
  at = cipher.next;
  const kdf = readString(data, at);
  at = kdf.next;
  const kdfOptions = readString(data, at);
  at = kdfOptions.next;
  if (at + 4 > data.length || data.readUInt32BE(at) !== 1) throw new Error("must hold exactly one key");
  const publicBlob = readString(data, at + 4).value;
  return { cipher: cipher.value.toString("latin1"), publicBlob };
}

function readString(data: Buffer, at: number): { value: Buffer; next: number } {
  if (at + 4 > data.length) throw new Error("is truncated");
  const length = data.readUInt32BE(at);
  if (at + 4 + length > data.length) throw new Error("is truncated");
  return { value: data.subarray(at + 4, at + 4 + length), next: at + 4 + length };
}

/** The one host-key type accepted: every OpenSSH since 6.5 makes one, and the commands that print it name it. */
export const HOST_KEY_TYPE = "ssh-ed25519";

/**
 * Why `line` is not an ED25519 public key line (`ssh-ed25519 AAAA… [comment]`, as in
 * /etc/ssh/ssh_host_ed25519_key.pub or ssh-keyscan's output), or undefined when it is one.
 */
export function hostKeyProblem(line: string): string | undefined {
  const fields = line
    .trim()
    .replace(/^\S+\s+(?=ssh-ed25519\s)/, "")
    .split(/\s+/);
  if (fields.length < 2 || fields[0] !== HOST_KEY_TYPE) {
    return `must be the host's ${HOST_KEY_TYPE} public key ("${HOST_KEY_TYPE} AAAA…")`;
  }
  const blob = Buffer.from(fields[1], "base64");
  if (blob.toString("base64") !== fields[1]) return "is not valid base64 after the key type";
  try {
    const type = readString(blob, 0);
    const key = readString(blob, type.next);
    // An ED25519 public key is 32 bytes (RFC 8709, section 4).
    if (type.value.toString("latin1") !== HOST_KEY_TYPE || key.value.length !== 32 || key.next !== blob.length) {
      return `does not hold an ${HOST_KEY_TYPE} key (the base64 part names another type or has the wrong length)`;
    }
  } catch (err) {
    return `does not hold an ${HOST_KEY_TYPE} key: ${(err as Error).message}`;
  }
  return undefined;
}

/**
 * `ssh-ed25519 <base64>` of a valid host-key line, without its comment or a leading host name (ssh-keyscan's
 * output and known_hosts lines start with one): what the SSH connection pins.
 */
export function normalizeHostKey(line: string): string {
  const problem = hostKeyProblem(line);
  if (problem) throw new Error(`host key ${problem}`);
  const fields = line
    .trim()
    .replace(/^\S+\s+(?=ssh-ed25519\s)/, "")
    .split(/\s+/);
  return `${fields[0]} ${fields[1]}`;
}
