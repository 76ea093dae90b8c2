/**
 * s-ProvFlow's MongoDB: Debian has no MongoDB server nor mongo-tools, and the Go module proxy refuses
 * github.com/mongodb/mongo-tools (403), so no real dump is restored here. What is checked: the dump job's
 * mongodump line (as rendered) and docs/recovery.md's mongorestore line parse, agree on the archive format
 * (--archive on stdout/stdin, --gzip on both sides), carry no credentials, and the bytes the dump job
 * writes are what the runbook's command feeds to mongorestore (stand-ins that record their arguments and input).
 */
import { spawnSync } from "child_process";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { backupPods, fill, insidePod, plainValues, runbookSection, runbookShell, runContainerScript, theCommand, theDump } from "./runbook";

jest.setTimeout(120_000);

let dumpContainer: any;
let restoreLine: string;
beforeAll(async () => {
  dumpContainer = (await backupPods()).get("mongodb-dump").containers[0];
  restoreLine = insidePod(theCommand(runbookSection("Restore a database"), /mongorestore/));
});

/** The words of a command line as the shell splits them (bash itself, printing each word). */
function words(line: string): string[] {
  const r = spawnSync("bash", ["-c", `set -f; printf '%s\\0' ${line.replace(/[<>|].*$/, "")}`], {
    encoding: "utf8",
    env: { DB_HOST: "h", DB_PORT: "1" },
  });
  expect(r.status).toBe(0);
  return r.stdout.split("\0").slice(0, -1);
}

describe("MongoDB dump and restore (commands only: no MongoDB server here)", () => {
  it("the runbook's restore parses, reads a gzip archive on stdin, drops what it replaces, and has no credentials", () => {
    const line = fill(restoreLine, { time: "20260101T020000Z" });
    expect(spawnSync("bash", ["-n", "-c", line]).status).toBe(0);
    expect(words(line)).toEqual(["mongorestore", "--archive", "--gzip", "--drop"]);
    expect(line).toMatch(/< mongodb-20260101T020000Z\.archive\.gz$/);
    expect(line).not.toMatch(/--(username|password|uri|authenticationDatabase)\b|\s-[up]\s|mongodb:\/\//);
  });

  it("the dump job's mongodump writes the archive format the restore reads, with no credentials", () => {
    const dumpLine = dumpContainer.command[2].split("\n").find((l: string) => l.startsWith("mongodump"));
    expect(words(dumpLine)).toEqual(["mongodump", "--host=h", "--port=1", "--archive", "--gzip"]);
    expect(dumpContainer.env.map((e: any) => e.name).sort()).toEqual(["DB_HOST", "DB_PORT"]);
  });

  it("what the dump job writes is what the runbook's command hands to mongorestore", () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "dare-mongodb-"));
    const backup = path.join(dir, "backup");
    const bin = path.join(dir, "bin");
    fs.mkdirSync(backup);
    fs.mkdirSync(bin);
    try {
      // Stand-ins: mongodump writes an archive-like byte string to stdout; mongorestore records argv and stdin.
      fs.writeFileSync(path.join(bin, "mongodump"), '#!/bin/sh\nprintf \'archive of %s:%s\\001\\377\' "$DB_HOST" "$DB_PORT" | gzip\n', {
        mode: 0o755,
      });
      fs.writeFileSync(
        path.join(bin, "mongorestore"),
        `#!/bin/sh\nprintf '%s\\n' "$@" > ${dir}/restore.args\ncat > ${dir}/restore.stdin\n`,
        { mode: 0o755 },
      );
      const r = runContainerScript(dumpContainer, { "/backup": backup }, plainValues(dumpContainer), [bin]);
      expect({ status: r.status, stderr: r.stderr }).toEqual({ status: 0, stderr: "" });
      const dump = theDump(backup, /^mongodb-\d{8}T\d{6}Z\.archive\.gz$/);
      const time = /^mongodb-(.*)\.archive\.gz$/.exec(dump)![1];
      const restore = runbookShell(fill(restoreLine, { time }), backup, {}, [bin]);
      expect({ status: restore.status, stderr: restore.stderr }).toEqual({ status: 0, stderr: "" });
      expect(fs.readFileSync(path.join(dir, "restore.stdin"))).toEqual(fs.readFileSync(path.join(backup, dump)));
      expect(fs.readFileSync(path.join(dir, "restore.args"), "utf8").split("\n").filter(Boolean)).toEqual([
        "--archive",
        "--gzip",
        "--drop",
      ]);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
