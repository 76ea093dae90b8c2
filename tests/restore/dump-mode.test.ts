/**
 * The dump files are readable by root only (0600: they hold every row, password hashes and tokens among
 * them), whatever umask the container starts with: each dump CronJob's script, as rendered, run here with
 * stand-ins for the database clients (as tests/components/backups.test.ts runs them). The real-server suites
 * (postgresql.test.ts, mysql.test.ts) check the mode of real dumps too.
 */
import { spawnSync } from "child_process";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { backupPods, plainValues } from "./runbook";

jest.setTimeout(120_000);

let pods: Map<string, any>;
beforeAll(async () => {
  pods = await backupPods();
});

const STANDINS: Record<string, { tool: string; file: RegExp }> = {
  mysql: { tool: "mysqldump", file: /^mysql-\d{8}T\d{6}Z\.sql\.gz$/ },
  mongodb: { tool: "mongodump", file: /^mongodb-\d{8}T\d{6}Z\.archive\.gz$/ },
  postgresql: { tool: "pg_dump", file: /^postgresql-\d{8}T\d{6}Z\.dump$/ },
};

describe("database dumps", () => {
  it.each(Object.keys(STANDINS))("%s: the dump is written 0600 even under umask 000", (engine) => {
    const container = pods.get(`${engine}-dump`).containers[0];
    const backup = fs.mkdtempSync(path.join(os.tmpdir(), `dare-${engine}-mode-`));
    const bin = fs.mkdtempSync(path.join(os.tmpdir(), "dare-stubs-"));
    try {
      fs.writeFileSync(path.join(bin, STANDINS[engine].tool), "#!/bin/sh\necho 'a dump'\n", { mode: 0o755 });
      const script = container.command[2].split("/backup").join(backup);
      // The most permissive umask a container could start with.
      const r = spawnSync("sh", ["-c", `umask 000; exec "$0" -c "$1"`, container.command[0], script], {
        encoding: "utf8",
        stdio: ["ignore", "pipe", "pipe"],
        env: { PATH: `${bin}:/usr/bin:/bin`, ...plainValues(container) },
      });
      expect({ status: r.status, stderr: r.stderr }).toEqual({ status: 0, stderr: "" });
      const files = fs.readdirSync(backup);
      expect(files).toEqual([expect.stringMatching(STANDINS[engine].file)]);
      expect((fs.statSync(path.join(backup, files[0])).mode & 0o777).toString(8)).toBe("600");
    } finally {
      fs.rmSync(backup, { recursive: true, force: true });
      fs.rmSync(bin, { recursive: true, force: true });
    }
  });
});
