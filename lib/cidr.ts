/** Small CIDR helpers: the loader must reject bad ranges before anything is created. */

export interface Cidr {
  /** 4 or 6 */
  version: 4 | 6;
  /** network address as a bigint, host bits cleared */
  network: bigint;
  prefix: number;
  /** the canonical text form, e.g. "10.0.0.0/24" */
  text: string;
}

function parseIpv4(text: string): bigint | undefined {
  const parts = text.split(".");
  if (parts.length !== 4) return undefined;
  let value = 0n;
  for (const part of parts) {
    if (!/^\d{1,3}$/.test(part)) return undefined;
    const octet = Number(part);
    if (octet > 255) return undefined;
    value = (value << 8n) | BigInt(octet);
  }
  return value;
}

function parseIpv6(text: string): bigint | undefined {
  if (!/^[0-9a-fA-F:]+$/.test(text) || text.split("::").length > 2) return undefined;
  const [head, tail] = text.includes("::") ? text.split("::") : [text, undefined];
  const headGroups = head ? head.split(":") : [];
  const tailGroups = tail ? tail.split(":") : [];
  const missing = 8 - headGroups.length - tailGroups.length;
  if (tail === undefined ? missing !== 0 : missing < 1) return undefined;
  const groups = [...headGroups, ...Array(tail === undefined ? 0 : missing).fill("0"), ...tailGroups];
  let value = 0n;
  for (const group of groups) {
    if (!/^[0-9a-fA-F]{1,4}$/.test(group)) return undefined;
    value = (value << 16n) | BigInt(parseInt(group, 16));
  }
  return value;
}

/** Parses "a.b.c.d/n" or an IPv6 CIDR; returns undefined when it is not one. */
export function parseCidr(text: unknown): Cidr | undefined {
  if (typeof text !== "string") return undefined;
  const match = /^([^/]+)\/(\d{1,3})$/.exec(text.trim());
  if (!match) return undefined;
  const prefix = Number(match[2]);
  const v4 = parseIpv4(match[1]);
  const version = v4 !== undefined ? 4 : 6;
  const address = v4 ?? parseIpv6(match[1]);
  const bits = version === 4 ? 32 : 128;
  if (address === undefined || prefix > bits) return undefined;
  const hostBits = BigInt(bits - prefix);
  const network = (address >> hostBits) << hostBits;
  return { version, network, prefix, text: text.trim() };
}

export function isIpv4Address(text: unknown): boolean {
  return typeof text === "string" && parseIpv4(text) !== undefined;
}

export function cidrsOverlap(a: Cidr, b: Cidr): boolean {
  if (a.version !== b.version) return false;
  const bits = a.version === 4 ? 32 : 128;
  const shortest = BigInt(bits - Math.min(a.prefix, b.prefix));
  return a.network >> shortest === b.network >> shortest;
}
