/**
 * Pulumi's mock runtime, set up for this program: deterministic outputs for every provider resource
 * the program uses, and a recorder that keeps what the program sends to the engine (parents,
 * dependencies, providers, and inputs with their secret markers intact).
 */
import * as crypto from "crypto";
import * as pulumi from "@pulumi/pulumi";
import { mockCertificatePem, mockPrivateKey, seed } from "./mock-keys";

/** Pulumi's wire markers (sdk/nodejs/runtime/rpc.ts). */
export const SPECIAL_SIG_KEY = "4dabf18193072939515e22adb298388d";
export const SECRET_SIG = "1b47061264138c4ac30d75fd1eb44270";
export const RESOURCE_SIG = "5cf8f73096256a8f31e491e813e4eb8e";
export const UNKNOWN_VALUE = "04da6b54-80e4-46f7-96ec-b56ff0331ba9";

export interface RecordedResource {
  urn: string;
  type: string;
  name: string;
  parent: string;
  custom: boolean;
  provider: string;
  dependencies: string[];
  /** inputs as sent to the engine: secrets still wrapped in Pulumi's secret marker */
  inputs: unknown;
  /** read, not managed (a `.get` or StackReference): the engine lists it, the program creates nothing */
  read?: true;
  /** outputs registered by a component or the stack (wire form) */
  outputs?: unknown;
  /** the options that decide the resource's lifecycle, where set (see lifecycleOptions) */
  options?: LifecycleOptions;
}

/** Resource options a reviewer must see: what the engine may replace, keep, or hide. */
export interface LifecycleOptions {
  protect?: true;
  retainOnDelete?: true;
  deleteBeforeReplace?: true;
  replaceOnChanges?: string[];
  ignoreChanges?: string[];
  additionalSecretOutputs?: string[];
  customTimeouts?: { create?: string; update?: string; delete?: string };
}

interface RegisterOptions {
  getProtect(): boolean;
  getRetainondelete(): boolean;
  getDeletebeforereplace(): boolean;
  getReplaceonchangesList(): string[];
  getIgnorechangesList(): string[];
  getAdditionalsecretoutputsList(): string[];
  getCustomtimeouts(): { getCreate(): string; getUpdate(): string; getDelete(): string } | undefined;
}

/** The lifecycle options of a registration, only those set; undefined when none is. */
export function lifecycleOptions(req: RegisterOptions): LifecycleOptions | undefined {
  const timeouts = req.getCustomtimeouts();
  const customTimeouts =
    timeouts &&
    Object.fromEntries(
      (
        [
          ["create", timeouts.getCreate()],
          ["update", timeouts.getUpdate()],
          ["delete", timeouts.getDelete()],
        ] as const
      ).filter(([, v]) => v),
    );
  const list = (values: string[]) => (values.length > 0 ? [...values].sort() : undefined);
  const options: LifecycleOptions = {
    ...(req.getProtect() ? { protect: true } : {}),
    ...(req.getRetainondelete() ? { retainOnDelete: true } : {}),
    ...(req.getDeletebeforereplace() ? { deleteBeforeReplace: true } : {}),
    ...(list(req.getReplaceonchangesList()) ? { replaceOnChanges: list(req.getReplaceonchangesList()) } : {}),
    ...(list(req.getIgnorechangesList()) ? { ignoreChanges: list(req.getIgnorechangesList()) } : {}),
    ...(list(req.getAdditionalsecretoutputsList()) ? { additionalSecretOutputs: list(req.getAdditionalsecretoutputsList()) } : {}),
    ...(customTimeouts && Object.keys(customTimeouts).length > 0 ? { customTimeouts } : {}),
  };
  return Object.keys(options).length > 0 ? options : undefined;
}

/** Characters of a mock random string, honouring the flags @pulumi/random takes. */
function randomText(label: string, inputs: Record<string, any>): string {
  const sets: string[] = [];
  if (inputs.lower !== false) sets.push("abcdefghijklmnopqrstuvwxyz");
  if (inputs.upper !== false) sets.push("ABCDEFGHIJKLMNOPQRSTUVWXYZ");
  if (inputs.numeric !== false && inputs.number !== false) sets.push("0123456789");
  if (inputs.special !== false) sets.push(inputs.overrideSpecial ?? "!@#$%&*()-_=+[]{}<>:?");
  const alphabet = sets.join("") || "a";
  const length = Number(inputs.length ?? 16);
  const bytes = crypto.createHash("shake256", { outputLength: length }).update(`dare-mock:${label}`).digest();
  return Array.from(bytes, (b) => alphabet[b % alphabet.length]).join("");
}

function uuid(label: string): string {
  const h = seed(label).toString("hex");
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-4${h.slice(13, 16)}-a${h.slice(17, 20)}-${h.slice(20, 32)}`;
}

/**
 * Mock addresses derived from the resource name, so that adding a node never moves another node's
 * address (a counter would, and renders of N and N+1 nodes would differ in unrelated resources).
 */
class Addresses {
  private readonly byName = new Map<string, string>();
  private readonly taken = new Set<string>();

  private pick(name: string, space: number, format: (n: number) => string): string {
    if (!this.byName.has(name)) {
      let n = seed(name).readUInt32BE(0) % space;
      while (this.taken.has(format(n))) n = (n + 1) % space;
      this.taken.add(format(n));
      this.byName.set(name, format(n));
    }
    return this.byName.get(name)!;
  }
  /** an address inside `cidr` (an IPv4 subnet of at least /24), past the gateway */
  private(name: string, cidr = "10.10.0.0/16"): string {
    const [base, bits] = cidr.split("/");
    const start = base.split(".").reduce((n, octet) => n * 256 + Number(octet), 0);
    const size = 2 ** (32 - Number(bits)) - 12;
    return this.pick(name, size, (n) => {
      const a = start + 10 + n;
      return [24, 16, 8, 0].map((shift) => Math.floor(a / 2 ** shift) % 256).join(".");
    });
  }
  /** an address in the documentation ranges (RFC 5737) */
  public(name: string): string {
    const nets = ["192.0.2", "198.51.100", "203.0.113"];
    return this.pick(name, 750, (n) => `${nets[Math.floor(n / 250)]}.${(n % 250) + 2}`);
  }
}

/** What each provider resource computes, faked deterministically from its name and inputs. */
export class DareMocks implements pulumi.runtime.Mocks {
  /** @param lastUpdateOutputs what a StackReference to the stack itself reads: its last update's outputs */
  constructor(private readonly lastUpdateOutputs: Record<string, unknown> = {}) {}

  private readonly addresses = new Addresses();
  /** subnet id -> CIDR, so ports get addresses inside their subnet as Neutron would give them */
  private readonly subnets = new Map<string, string>();

  newResource(args: pulumi.runtime.MockResourceArgs): { id: string | undefined; state: Record<string, any> } {
    const inputs = args.inputs as Record<string, any>;
    // OpenStack ids are UUIDs (a volume's disk name is cut from its id); others stay readable.
    const id = args.type.startsWith("openstack:") ? uuid(`${args.type}::${args.name}`) : `${args.name}-id`;
    if (args.type === "openstack:networking/subnet:Subnet" && typeof inputs.cidr === "string") this.subnets.set(id, inputs.cidr);
    const computed = this.computed(args.type, args.name, inputs);
    return { id: args.custom ? id : undefined, state: { ...inputs, ...computed } };
  }

  call(args: pulumi.runtime.MockCallArgs): Record<string, any> {
    if (args.token === "openstack:networking/getNetwork:getNetwork") {
      return { ...args.inputs, id: `${args.inputs.name}-network-id` };
    }
    if (args.token === "openstack:identity/getAuthScope:getAuthScope") {
      return {
        ...args.inputs,
        projectId: "mock-project-id",
        userId: "mock-user-id",
        region: "RegionOne",
        // What an operator of a project with Octavia typically holds; the program picks what OCCM needs.
        roles: ["admin", "member", "reader", "load-balancer_member"].map((roleName) => ({ roleId: `${roleName}-id`, roleName })),
        serviceCatalogs: [
          {
            id: "keystone-id",
            name: "keystone",
            type: "identity",
            endpoints: [
              {
                id: "keystone-public-id",
                interface: "public",
                region: "RegionOne",
                regionId: "RegionOne",
                url: "https://keystone.example.org:5000/v3",
              },
            ],
          },
        ],
      };
    }
    return args.inputs;
  }

  private computed(type: string, name: string, inputs: Record<string, any>): Record<string, any> {
    switch (type) {
      case "pulumi:pulumi:StackReference":
        return { outputs: this.lastUpdateOutputs, secretOutputNames: [] };
      case "tls:index/privateKey:PrivateKey":
        return mockPrivateKey(name, inputs.algorithm, inputs.ecdsaCurve) as unknown as Record<string, any>;
      case "tls:index/selfSignedCert:SelfSignedCert":
      case "tls:index/locallySignedCert:LocallySignedCert":
        return {
          certPem: mockCertificatePem(name, inputs.subject ?? inputs.certRequestPem),
          validityStartTime: "2026-01-01T00:00:00Z",
          validityEndTime: "2036-01-01T00:00:00Z",
        };
      case "tls:index/certRequest:CertRequest":
        return {
          certRequestPem: `-----BEGIN CERTIFICATE REQUEST-----\n${Buffer.from(JSON.stringify({ mock: "csr", name, subject: inputs.subject })).toString("base64")}\n-----END CERTIFICATE REQUEST-----\n`,
        };
      case "random:index/randomPassword:RandomPassword": {
        const result = randomText(name, inputs);
        return { result, bcryptHash: `$2a$10$mock${seed(name).toString("base64").slice(0, 49)}` };
      }
      case "random:index/randomString:RandomString":
        return { result: randomText(name, inputs) };
      case "random:index/randomBytes:RandomBytes": {
        const bytes = Buffer.alloc(Number(inputs.length ?? 32), seed(name));
        return { base64: bytes.toString("base64"), hex: bytes.toString("hex") };
      }
      case "random:index/randomId:RandomId": {
        const bytes = seed(name).subarray(0, Number(inputs.byteLength ?? 8));
        return {
          hex: bytes.toString("hex"),
          b64Std: bytes.toString("base64"),
          b64Url: bytes.toString("base64url"),
          dec: BigInt(`0x${bytes.toString("hex")}`).toString(),
        };
      }
      case "random:index/randomUuid:RandomUuid":
        return { result: uuid(name) };
      case "openstack:networking/port:Port":
        // A fixed IP asked for by address gets that address, as Neutron gives it; else one from the subnet.
        return {
          allFixedIps: [inputs.fixedIps?.[0]?.ipAddress ?? this.addresses.private(name, this.subnets.get(inputs.fixedIps?.[0]?.subnetId))],
          macAddress: "fa:16:3e:00:00:00",
        };
      case "openstack:networking/floatingIp:FloatingIp":
        return { address: this.addresses.public(name) };
      case "openstack:loadbalancer/loadBalancer:LoadBalancer":
        return { vipAddress: this.addresses.private(name, this.subnets.get(inputs.vipSubnetId)), vipPortId: `${name}-vip-port-id` };
      case "openstack:compute/instance:Instance":
        return { accessIpV4: "" };
      case "openstack:identity/applicationCredential:ApplicationCredential":
        return { secret: randomText(name, { length: 32, special: false }), projectId: "mock-project-id" };
      case "kubernetes:helm.sh/v3:Release":
        return {
          status: {
            name: inputs.name ?? name,
            namespace: inputs.namespace ?? "default",
            chart: inputs.chart,
            version: inputs.version,
            status: "deployed",
            revision: 1,
          },
        };
      case "command:remote:Command":
      case "command:local:Command":
        return { stdout: "", stderr: "" };
      default:
        if (type.startsWith("kubernetes:") && inputs.metadata && !inputs.metadata.name) {
          return { metadata: { ...inputs.metadata, name } };
        }
        return {};
    }
  }
}

interface ProtoStruct {
  toJavaScript(): unknown;
}
interface RegisterRequest extends RegisterOptions {
  getType(): string;
  getName(): string;
  getParent(): string;
  getCustom(): boolean;
  getProvider(): string;
  getDependenciesList(): string[];
  getObject(): ProtoStruct | undefined;
}
interface MonitorLike {
  registerResource(req: RegisterRequest, cb: (err: unknown, res: { getUrn(): string } | undefined) => void): Promise<void>;
  registerResourceOutputs(req: { getUrn(): string; getOutputs(): ProtoStruct | undefined }, cb: (err: unknown, res: unknown) => void): void;
  readResource(req: ReadRequest, cb: (err: unknown, res: { getUrn(): string } | undefined) => void): Promise<void>;
}

/** The parts of a ReadResourceRequest the recorder reads. */
interface ReadRequest {
  getType(): string;
  getName(): string;
  getParent(): string;
  getProvider(): string;
  getDependenciesList(): string[];
  getProperties(): ProtoStruct | undefined;
}

/**
 * Installs the mocks and records every registration. Call before the program is loaded.
 * Returns the live list of recorded resources.
 */
export function installMocks(stack: string, mocks: pulumi.runtime.Mocks = new DareMocks()): RecordedResource[] {
  const recorded: RecordedResource[] = [];
  const byUrn = new Map<string, RecordedResource>();
  // preview=false: outputs of mocked resources are known, as after a real `pulumi up`.
  // "organization": the name DIY backends (file://, s3://) give every stack's organization.
  pulumi.runtime.setMocks(mocks, "dare", stack, false, "organization");
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const settings = require("@pulumi/pulumi/runtime/settings");
  const monitor = settings.getMonitor() as MonitorLike & { newUrn(parent: string, type: string, name: string): string };
  // URNs as the engine makes them (pkg/resource/urn.go, NewURN): the parent's whole type chain, without
  // the root stack's type. The SDK's mock took only the parent's last type and kept the stack's, so
  // resources three levels deep and the stack's children had URNs no real state has (the engine tier's
  // preview compares the two).
  monitor.newUrn = (parent, type, name) => {
    const parentType = parent ? parent.split("::")[2] : "";
    const qualified = parentType && parentType !== "pulumi:pulumi:Stack" ? `${parentType}$${type}` : type;
    return `urn:pulumi:${stack}::dare::${qualified}::${name}`;
  };
  /** What a registration and a read have in common, recorded once the engine (the mock) answers. */
  const record = (
    req: Omit<ReadRequest, "getProperties">,
    res: { getUrn(): string },
    extra: Pick<RecordedResource, "custom" | "inputs" | "read" | "options">,
  ) => {
    const entry: RecordedResource = {
      urn: res.getUrn(),
      type: req.getType(),
      name: req.getName(),
      parent: req.getParent(),
      provider: req.getProvider(),
      dependencies: [...new Set(req.getDependenciesList())].sort(),
      ...extra,
    };
    recorded.push(entry);
    byUrn.set(entry.urn, entry);
  };
  const register = monitor.registerResource.bind(monitor);
  monitor.registerResource = (req, cb) =>
    register(req, (err, res) => {
      if (!err && res) {
        const options = lifecycleOptions(req);
        record(req, res, { custom: req.getCustom(), inputs: req.getObject()?.toJavaScript() ?? {}, ...(options ? { options } : {}) });
      }
      cb(err, res);
    });
  // Reads (a StackReference, a `.get`) are resources of the stack too: the engine lists them in its plan.
  const read = monitor.readResource.bind(monitor);
  monitor.readResource = (req, cb) =>
    read(req, (err, res) => {
      if (!err && res) record(req, res, { custom: true, read: true, inputs: req.getProperties()?.toJavaScript() ?? {} });
      cb(err, res);
    });
  const registerOutputs = monitor.registerResourceOutputs.bind(monitor);
  monitor.registerResourceOutputs = (req, cb) => {
    const entry = byUrn.get(req.getUrn());
    if (entry) entry.outputs = req.getOutputs()?.toJavaScript() ?? {};
    registerOutputs(req, cb);
  };
  return recorded;
}

/** Waits until every registration the program started has been answered. */
export async function settle(): Promise<void> {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const settings = require("@pulumi/pulumi/runtime/settings");
  await settings.waitForRPCs();
}
