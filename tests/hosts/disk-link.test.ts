/**
 * The disk steps of OpenStack workers (disk-link.sh, disk-unlink.sh) on a real OpenSSH server
 * (tests/hosts/harness.ts), run as the engine would run them: each step's `create`/`delete` command and stdin
 * from the program under mocks (volume ids included).
 *
 * The test host stands in for a worker. Its view of /dev is a tmpfs of its own (the machine's /dev is not
 * touched) holding fake disks (block device nodes, never opened) and the /dev/disk/by-id names QEMU's buses
 * give them, as the cinder CSI driver expects them (cloud-provider-openstack pkg/util/mount,
 * getDevicePathBySerialID); /sys/class is a tmpfs with one SCSI host whose `scan` file records rescans.
 *
 * udev does not run on test hosts (and udevadm is not installed on the test machine, so `udevadm test` cannot
 * check the rule there): `udevadm` is a stand-in that records its calls and, on `trigger`, does what udevd
 * would do with the rule files in /etc/udev/rules.d for the fake disks. A disk's udev properties are those its
 * /dev/disk/by-id names are made of in systemd's 60-persistent-storage.rules (virtio-$ID_SERIAL for vd*,
 * $ID_BUS-$ID_SERIAL, wwn-$ID_WWN_WITH_EXTENSION); every rule line whose matches (==, `|` alternatives, globs)
 * all hold adds its SYMLINK+= link to /dev and to the database `udevadm info --query=symlink` reads (what
 * Rook reads as DEVLINKS). So the rule text is checked against the properties each bus really gives, not
 * against itself. Needs root (CI runs as root): without it the tests fail with the harness's message.
 */
import { Infrastructure } from "../../components/infrastructure";
import { DEFAULT_NETWORK } from "../../lib/config";
import { plainParametersOf } from "../../lib/host-step";
import { ofType, runMocked } from "../support/mocked";
import { readStubCalls, recordingStub, sshExec, startHosts, stopHosts, STUB_CALL_LOG, TestHost } from "./harness";
import { reveal, sshKeyOf } from "./program";

jest.setTimeout(240_000);

const CLUSTER = "dk";
const WORKER = `${CLUSTER}-workers-0`;
const FAKE_UDEV_DB = "/run/dare-fake-udev";

/** udevadm as udevd would act on the fake disks: see the file's comment. */
const udevadmStub = recordingStub(
  "udevadm",
  `
DB=${FAKE_UDEV_DB}
mkdir -p "$DB"
case "$1" in
  info) # info --query=symlink --name=DEVICE
    for a in "$@"; do case "$a" in --name=*) dev=$(readlink -f "\${a#--name=}") ;; esac; done
    [ -f "$DB/\${dev##*/}" ] || exit 0
    xargs <"$DB/\${dev##*/}"; exit 0 ;;
  trigger) ;;
  *) exit 0 ;;
esac
# A test can keep "udev" from applying rules.
[ ! -f "$DB/stopped" ] || exit 0
for dev in /dev/vd* /dev/sd*; do
  [ -b "$dev" ] || continue
  kname=\${dev#/dev/}
  declare -A P=([SUBSYSTEM]=block [DEVTYPE]=disk [KERNEL]="$kname")
  links=()
  for l in /dev/disk/by-id/*; do
    [ -L "$l" ] && [ "$(readlink -f "$l")" = "$dev" ] || continue
    n=\${l##*/}
    links+=("disk/by-id/$n")
    case $n in
      virtio-*) if [[ $kname == vd* ]]; then P[ID_SERIAL]=\${n#virtio-}; fi ;;
      scsi-*) P[ID_BUS]=scsi; P[ID_SERIAL]=\${n#scsi-} ;;
      wwn-*) P[ID_WWN_WITH_EXTENSION]=\${n#wwn-} ;;
    esac
  done
  for rule in /etc/udev/rules.d/*.rules; do
    [ -f "$rule" ] || continue
    while IFS= read -r line; do
      [[ $line =~ ^[[:space:]]*(#|$) ]] && continue
      ok=1; add=()
      IFS=, read -ra parts <<<"$line"
      for part in "\${parts[@]}"; do
        part=$(sed 's/^ *//; s/ *$//' <<<"$part")
        if [[ $part =~ ^([A-Z]+)(\\{([A-Z_]+)\\})?==\\"(.*)\\"$ ]]; then
          key=\${BASH_REMATCH[1]}; [ -z "\${BASH_REMATCH[3]}" ] || key=\${BASH_REMATCH[3]}
          value=\${P[$key]:-}; m=0
          IFS='|' read -ra alternatives <<<"\${BASH_REMATCH[4]}"
          for a in "\${alternatives[@]}"; do
            # shellcheck disable=SC2053 # a udev pattern: a glob
            if [[ $value == $a ]]; then m=1; fi
          done
          [ "$m" = 1 ] || ok=0
        elif [[ $part =~ ^SYMLINK\\+=\\"(.*)\\"$ ]]; then
          add+=("\${BASH_REMATCH[1]}")
        else
          echo "udevadm stand-in: cannot read '$part' in $rule" >&2; exit 1
        fi
      done
      if [ "$ok" = 1 ]; then links+=("\${add[@]}"); fi
    done <"$rule"
  done
  for l in "\${links[@]}"; do
    case $l in disk/by-id/*) ;; *) mkdir -p "/dev/\${l%/*}"; ln -sfn "$(realpath --relative-to="/dev/\${l%/*}" "$dev")" "/dev/$l" ;; esac
  done
  printf '%s\\n' "\${links[@]}" >"$DB/$kname"
  unset P
done
exit 0`,
);

/** The test host's own /dev and /sys/class (tmpfs, in its mount namespace only). */
const FAKE_DEV = `set -e
mkdir -p /run/dare-real-dev
mount --rbind /dev /run/dare-real-dev
mount -t tmpfs -o mode=0755 dare-fake-dev /dev
for n in null zero full random urandom tty; do if [ -e /run/dare-real-dev/$n ]; then cp -a /run/dare-real-dev/$n /dev/; fi; done
ln -s /proc/self/fd /dev/fd; ln -s fd/0 /dev/stdin; ln -s fd/1 /dev/stdout; ln -s fd/2 /dev/stderr
mkdir -p /dev/pts /dev/shm
if [ -e /run/dare-real-dev/pts/ptmx ]; then mount --bind /run/dare-real-dev/pts /dev/pts; ln -s pts/ptmx /dev/ptmx; fi
mount -t tmpfs -o mode=0755 dare-fake-sysclass /sys/class
mkdir -p /sys/class/scsi_host/host0`;

/** No disks, no rules, no udev state, no calls: each test starts from a fresh boot of the worker. */
const RESET = `set -e
rm -rf /dev/disk /dev/vd* /dev/sd* ${FAKE_UDEV_DB} /etc/udev/rules.d
mkdir -p /dev/disk/by-id
: >/sys/class/scsi_host/host0/scan
rm -f ${STUB_CALL_LOG}`;

interface DiskStep {
  name: string;
  create: string;
  delete: string;
  stdin: string;
  volumeId: string;
}

let host: TestHost;
let steps: DiskStep[];

beforeAll(async () => {
  const resources = await runMocked(
    () =>
      new Infrastructure(CLUSTER, {
        provider: "openstack",
        clusterName: CLUSTER,
        nodes: {
          controlPlane: { count: 1, flavor: "m" },
          pools: [{ name: "workers", count: 1, flavor: "m", disks: { count: 2, sizeGb: 50 }, publicIp: false }],
        },
        hosts: [],
        network: { ...DEFAULT_NETWORK, cidr: "10.10.0.0/16" },
        adminCidrs: ["192.0.2.0/24"],
        image: "-",
        sshUser: "ubuntu",
        apiLoadBalancer: false,
      }),
  );
  steps = [0, 1].map((j) => {
    const r = ofType(resources, "command:remote:Command").find((c) => c.name === `iaas-${WORKER}-disk-${j}`);
    if (!r) throw new Error(`the program declares no disk step ${j} on ${WORKER}`);
    const inputs = reveal(r.inputs);
    const volumeId = /^VOLUME_ID='([^']+)'$/m.exec(plainParametersOf(inputs.create) + inputs.stdin)![1];
    return { name: r.name, create: inputs.create, delete: inputs.delete, stdin: inputs.stdin, volumeId };
  });
  [host] = await startHosts([WORKER], { authorizedKey: sshKeyOf(CLUSTER).publicKeyOpenssh, stubs: { udevadm: udevadmStub } });
  const r = await host.exec(FAKE_DEV);
  if (r.code !== 0) throw new Error(`cannot give the test host its own /dev: ${r.stderr}`);
});
afterAll(async () => {
  if (host) await stopHosts([host]);
});
beforeEach(async () => {
  const r = await host.exec(RESET);
  if (r.code !== 0) throw new Error(r.stderr);
});

const run = (step: DiskStep, which: "create" | "delete" = "create", env: Record<string, string> = {}) =>
  sshExec(host, sshKeyOf(CLUSTER).privateKeyOpenssh, which === "create" ? step.create : step.delete, {
    stdin:
      step.stdin +
      Object.entries(env)
        .map(([k, v]) => `${k}='${v}'\n`)
        .join(""),
  });
const sh = async (cmd: string) => {
  const r = await host.exec(cmd);
  if (r.code !== 0) throw new Error(`${cmd}: ${r.stderr}`);
  return r.stdout.trim();
};
/** A fake disk: a block device node and the /dev/disk/by-id name its bus gives it. */
const disk = (kname: string, byIdName: string) =>
  sh(
    `mknod /dev/${kname} b ${kname.startsWith("vd") ? 252 : 8} ${kname.charCodeAt(2) - 97}; ln -sfn ../../${kname} /dev/disk/by-id/${byIdName}`,
  );
const target = (volumeId: string) => sh(`readlink -f /dev/disk/dare/${volumeId} || true`);
const ruleFile = (volumeId: string) => `/etc/udev/rules.d/61-dare-disk-${volumeId}.rules`;
const udevCalls = async () => (await readStubCalls(host).catch(() => [] as string[])).filter((l) => l.startsWith("udevadm"));

/** The names the cinder CSI driver tries for a volume id, in its order. */
const csiNames = (id: string) => [
  `virtio-${id.slice(0, 20)}`,
  `virtio-${id}`,
  `scsi-0QEMU_QEMU_HARDDISK_${id.slice(0, 20)}`,
  `scsi-0QEMU_QEMU_HARDDISK_${id}`,
  `wwn-0x${id.replace(/-/g, "")}`,
];

describe("a worker's Ceph disks, found by volume id and named /dev/disk/dare/<volume id> by udev", () => {
  it.each([
    ["virtio-blk (serial: the id's first 20 characters)", "vdb", 0],
    ["virtio-blk (serial: the whole id)", "vdb", 1],
    ["virtio-scsi (QEMU SCSI serial: first 20 characters)", "sdb", 2],
    ["virtio-scsi (QEMU SCSI serial: the whole id)", "sdb", 3],
    ["VMware (WWN)", "sdb", 4],
  ])("finds a disk on %s and has udev name it", async (_bus, kname, form) => {
    const [step, other] = steps;
    // Another volume's disk on the same bus is there too (and comes first): it is left alone.
    await disk(kname === "vdb" ? "vda" : "sda", csiNames(other.volumeId)[form as number]);
    await disk(kname as string, csiNames(step.volumeId)[form as number]);
    const r = await run(step);
    expect({ code: r.code, stderr: r.stderr }).toEqual({ code: 0, stderr: "" });
    expect(await target(step.volumeId)).toBe(`/dev/${kname}`);
    expect((await host.exec(`test -L /dev/disk/dare/${other.volumeId}`)).code).not.toBe(0); // not this step's volume
    expect(await sh(`udevadm info --query=symlink --name=/dev/${kname}`)).toContain(`disk/dare/${step.volumeId}`);
    expect(await udevCalls()).toEqual(
      expect.arrayContaining([
        "udevadm control --reload",
        `udevadm trigger --action=change --subsystem-match=block --sysname-match=${kname}`,
      ]),
    );
    expect(r.stdout).toContain(`/dev/disk/dare/${step.volumeId} -> /dev/${kname}`);
  });

  it("writes one rule per volume that names the disk on every bus, and a rerun changes nothing", async () => {
    const [step] = steps;
    const id = step.volumeId;
    await disk("vdb", `virtio-${id.slice(0, 20)}`);
    expect((await run(step)).code).toBe(0);
    expect((await host.readFile(ruleFile(id))).split("\n").filter((l) => l && !l.startsWith("#"))).toEqual([
      `SUBSYSTEM=="block", ENV{DEVTYPE}=="disk", KERNEL=="vd*", ENV{ID_SERIAL}=="${id.slice(0, 20)}|${id}", SYMLINK+="disk/dare/${id}"`,
      `SUBSYSTEM=="block", ENV{DEVTYPE}=="disk", ENV{ID_BUS}=="scsi", ENV{ID_SERIAL}=="0QEMU_QEMU_HARDDISK_${id.slice(0, 20)}|0QEMU_QEMU_HARDDISK_${id}", SYMLINK+="disk/dare/${id}"`,
      `SUBSYSTEM=="block", ENV{DEVTYPE}=="disk", ENV{ID_WWN_WITH_EXTENSION}=="0x${id.replace(/-/g, "")}", SYMLINK+="disk/dare/${id}"`,
    ]);
    const stamp = await sh(`stat -c %Y.%i ${ruleFile(id)}`);
    await sh(`rm -f ${STUB_CALL_LOG}`);
    const again = await run(step);
    expect(again.code).toBe(0);
    expect(again.stdout).toContain("in place");
    expect(await sh(`stat -c %Y.%i ${ruleFile(id)}`)).toBe(stamp);
    // Nothing reloaded or triggered: only the look-up of what udev already has.
    expect((await udevCalls()).filter((l) => !l.startsWith("udevadm info "))).toEqual([]);
    expect(await target(id)).toBe("/dev/vdb");
  });

  it("keeps the name when the disk comes back under another kernel name or on another bus (a reboot, a rebuilt instance)", async () => {
    const [step] = steps;
    const id = step.volumeId;
    await disk("vdb", `virtio-${id.slice(0, 20)}`);
    expect((await run(step)).code).toBe(0);
    // Reboot: the disks come up in another order; udev's coldplug applies the rules, no step runs.
    await sh(`rm -rf /dev/vdb /dev/disk ${FAKE_UDEV_DB}; mkdir -p /dev/disk/by-id`);
    await disk("vdc", `virtio-${id.slice(0, 20)}`);
    await sh("udevadm trigger --action=add");
    expect(await target(id)).toBe("/dev/vdc");
    // The instance rebuilt with the volume on virtio-scsi.
    await sh(`rm -rf /dev/vdc /dev/disk ${FAKE_UDEV_DB}; mkdir -p /dev/disk/by-id`);
    await disk("sdb", `scsi-0QEMU_QEMU_HARDDISK_${id}`);
    await sh("udevadm trigger --action=add");
    expect(await target(id)).toBe("/dev/sdb");
  });

  it("waits for a disk that shows up late, probing as the CSI driver does", async () => {
    const [step] = steps;
    await sh(
      `(sleep 3; mknod /dev/sdc b 8 32; ln -s ../../sdc /dev/disk/by-id/scsi-0QEMU_QEMU_HARDDISK_${step.volumeId}) >/dev/null 2>&1 </dev/null &`,
    );
    const r = await run(step, "create", { DISK_WAIT_SECONDS: "30" });
    expect({ code: r.code, stderr: r.stderr }).toEqual({ code: 0, stderr: "" });
    expect(r.stdout).toContain(`waiting for the disk of volume ${step.volumeId}`);
    expect(await target(step.volumeId)).toBe("/dev/sdc");
    expect(await host.readFile("/sys/class/scsi_host/host0/scan")).toContain("- - -");
  });

  it("fails clearly when the volume's disk is not there: the names tried, the volume, the host, what to check", async () => {
    const [step, other] = steps;
    await disk("vdb", `virtio-${other.volumeId.slice(0, 20)}`); // another volume's disk only
    const r = await run(step, "create", { DISK_WAIT_SECONDS: "3" });
    expect(r.code).not.toBe(0);
    expect(r.stderr).toContain(`${WORKER}: the disk of OpenStack volume ${step.volumeId} is not there after 3 s`);
    for (const name of csiNames(step.volumeId)) expect(r.stderr).toContain(`/dev/disk/by-id/${name}`);
    expect(r.stderr).toContain(`openstack volume show ${step.volumeId}`);
    expect(r.stderr).toContain("run pulumi up again");
    // It probed (SCSI rescan, udev trigger), and installed nothing.
    expect(await host.readFile("/sys/class/scsi_host/host0/scan")).toContain("- - -");
    expect(await udevCalls()).toContain("udevadm trigger --subsystem-match=block --action=change");
    expect((await host.exec(`test -e ${ruleFile(step.volumeId)}`)).code).not.toBe(0);
  });

  it("fails clearly when udev does not make the name", async () => {
    const [step] = steps;
    await disk("vdb", `virtio-${step.volumeId.slice(0, 20)}`);
    await sh(`mkdir -p ${FAKE_UDEV_DB}; touch ${FAKE_UDEV_DB}/stopped`);
    const r = await run(step, "create", { DISK_WAIT_SECONDS: "3" });
    expect(r.code).not.toBe(0);
    expect(r.stderr).toContain(`udev has not made /dev/disk/dare/${step.volumeId} for /dev/vdb`);
    expect(r.stderr).toContain(ruleFile(step.volumeId));
  });

  it("removes the rule when the volume leaves, and a rerun of the removal does nothing", async () => {
    const [step, other] = steps;
    await disk("vdb", `virtio-${step.volumeId.slice(0, 20)}`);
    await disk("vdc", `virtio-${other.volumeId.slice(0, 20)}`);
    expect((await run(step)).code).toBe(0);
    expect((await run(other)).code).toBe(0);
    await sh(`rm -f ${STUB_CALL_LOG}`);
    const r = await run(step, "delete");
    expect(r.code).toBe(0);
    expect((await host.exec(`test -e ${ruleFile(step.volumeId)}`)).code).not.toBe(0);
    expect(await host.readFile(ruleFile(other.volumeId))).toContain(`disk/dare/${other.volumeId}`);
    expect(await udevCalls()).toEqual(["udevadm control --reload"]);
    const again = await run(step, "delete");
    expect(again.code).toBe(0);
    expect(again.stdout).toContain("nothing to remove");
  });
});
