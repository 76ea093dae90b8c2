/**
 * d4p-registry's database, dumped and restored for real: the mysql-dump CronJob's own script (as rendered:
 * mysqldump … | gzip under pipefail) against a real server with known rows and a stored routine, then
 * docs/recovery.md's restore (gunzip | mysql as root with MYSQL_ROOT_PASSWORD) into an empty server, and
 * the rows compared. Debian has MariaDB, not MySQL: the servers are MariaDB (the deployment runs the
 * mysql image: mysql:8.4). Needs root and mariadb-server (.ci/run installs it).
 */
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import {
  backupPods,
  containerEnv,
  fill,
  insidePod,
  plainValues,
  runbookSection,
  runbookShell,
  runContainerScript,
  theCommand,
  theDump,
} from "./runbook";
import { MariaDb, startMariaDb } from "./servers";

jest.setTimeout(120_000);

const ROOT_PASSWORD = "root's password";
let source: MariaDb;
let target: MariaDb;
let dumpContainer: any;
let backup: string;

const SCHEMA = `
CREATE DATABASE registry CHARACTER SET utf8mb4;
USE registry;
CREATE TABLE workspace (id INT AUTO_INCREMENT PRIMARY KEY, name VARCHAR(255) NOT NULL, description TEXT, created DATETIME);
CREATE TABLE pe (id INT AUTO_INCREMENT PRIMARY KEY, workspace_id INT NOT NULL, code LONGBLOB,
  FOREIGN KEY (workspace_id) REFERENCES workspace(id));
INSERT INTO workspace (name, description, created) VALUES ('ws1', 'first', '2026-01-01 02:00:00'),
  ('ws''2', NULL, NULL), ('Grüße 東京', 'tab\\there', '2026-01-02 00:00:00');
INSERT INTO pe (workspace_id, code) VALUES (1, 0x00FF10), (3, 'def process(self):\\n    pass');
CREATE PROCEDURE count_pes() SELECT COUNT(*) FROM pe;
`;
const CONTENT = `
SELECT id, name, coalesce(description, 'NULL'), coalesce(created, 'NULL') FROM registry.workspace ORDER BY id;
SELECT id, workspace_id, hex(code) FROM registry.pe ORDER BY id;
SELECT AUTO_INCREMENT FROM information_schema.TABLES WHERE TABLE_SCHEMA = 'registry' ORDER BY TABLE_NAME;
CALL registry.count_pes();
`;

beforeAll(async () => {
  const pods = await backupPods();
  dumpContainer = pods.get("mysql-dump").containers[0];
  // The source as the mysql image sets it up: root on every host with MYSQL_ROOT_PASSWORD; the target fresh.
  [source, target] = await Promise.all([startMariaDb(ROOT_PASSWORD, true), startMariaDb(ROOT_PASSWORD, false)]);
  source.sql(SCHEMA);
  backup = fs.mkdtempSync(path.join(os.tmpdir(), "dare-mysql-dump-"));
});

afterAll(async () => {
  await Promise.all([source?.stop(), target?.stop()]);
  if (backup) fs.rmSync(backup, { recursive: true, force: true });
});

describe("MySQL (MariaDB) dump and restore", () => {
  it("the CronJob's script dumps every database over TCP with the Secret's password, to a file only root reads", () => {
    expect(plainValues(dumpContainer).DB_USER).toBe("root");
    const env = containerEnv(dumpContainer, { DB_HOST: "127.0.0.1", DB_PORT: String(source.port), MYSQL_PWD: ROOT_PASSWORD });
    const r = runContainerScript(dumpContainer, { "/backup": backup }, env);
    expect({ status: r.status, stderr: r.stderr }).toEqual({ status: 0, stderr: "" });
    const dump = theDump(backup, /^mysql-\d{8}T\d{6}Z\.sql\.gz$/);
    expect(fs.statSync(path.join(backup, dump)).mode & 0o777).toBe(0o600);
  });

  it("docs/recovery.md's restore brings every row and routine back into an empty server", () => {
    const dump = theDump(backup, /^mysql-/);
    const time = /^mysql-(.*)\.sql\.gz$/.exec(dump)![1];
    const command = fill(insidePod(theCommand(runbookSection("Restore a database"), /mysql -uroot/)), { time });
    expect(target.sql("SHOW DATABASES LIKE 'registry';")).toBe("");
    // Inside the database pod: the image's MYSQL_ROOT_PASSWORD, the client's default socket (here the test
    // server's, from ~/.my.cnf: Debian's /etc/mysql/my.cnf names its own socket, ahead of MYSQL_UNIX_PORT).
    const home = fs.mkdtempSync(path.join(os.tmpdir(), "dare-mysql-home-"));
    fs.writeFileSync(path.join(home, ".my.cnf"), `[client]\nsocket=${target.socket}\n`, { mode: 0o600 });
    const r = runbookShell(command, backup, { MYSQL_ROOT_PASSWORD: ROOT_PASSWORD, HOME: home });
    fs.rmSync(home, { recursive: true, force: true });
    expect({ status: r.status, stderr: r.stderr }).toEqual({ status: 0, stderr: "" });
    expect(target.sql(CONTENT)).toBe(source.sql(CONTENT));
  });

  it("ran on a real server", () => {
    expect(source.version).toMatch(/MariaDB/);
  });
});
