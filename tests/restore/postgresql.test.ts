/**
 * Keycloak's database, dumped and restored for real: the postgresql-dump CronJob's own script (as rendered)
 * against a real PostgreSQL with known rows, then docs/recovery.md's pg_restore command into an empty server
 * set up as CloudNativePG bootstraps one (database keycloak owned by role keycloak), and the rows compared.
 * Needs root and Debian's postgresql (.ci/run installs it); the servers run as the postgres user.
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
import { Postgres, startPostgres } from "./servers";

jest.setTimeout(120_000);

const PASSWORD = "keycloak's password";
let source: Postgres;
let target: Postgres;
let dumpContainer: any;
let backup: string;

/** Keycloak-like tables with awkward values: NULLs, quotes, non-ASCII, a sequence, a foreign key. */
const SCHEMA = `
CREATE TABLE realm (id varchar(36) PRIMARY KEY, name varchar(255) NOT NULL UNIQUE, enabled boolean NOT NULL);
CREATE TABLE user_entity (id varchar(36) PRIMARY KEY, realm_id varchar(36) NOT NULL REFERENCES realm(id),
  username varchar(255) NOT NULL, email varchar(255), created_timestamp bigint);
CREATE SEQUENCE event_seq;
CREATE TABLE event_entity (id bigint PRIMARY KEY DEFAULT nextval('event_seq'), details text);
INSERT INTO realm VALUES ('r1', 'master', true), ('r2', 'dare', true);
INSERT INTO user_entity VALUES ('u1', 'r2', 'alice', 'alice@example.org', 1700000000000),
  ('u2', 'r2', 'bob', NULL, NULL), ('u3', 'r1', 'admin', 'o''brien@example.org', 1);
INSERT INTO event_entity (details) VALUES ('{"ip":"192.0.2.1"}'), ('Grüße, 東京'), (NULL);
`;
const CONTENT = `
SELECT id, name, enabled FROM realm ORDER BY id;
SELECT id, realm_id, username, coalesce(email, 'NULL'), coalesce(created_timestamp::text, 'NULL') FROM user_entity ORDER BY id;
SELECT id, coalesce(details, 'NULL') FROM event_entity ORDER BY id;
SELECT last_value, is_called FROM event_seq;
`;
const OWNERS = "SELECT tablename, tableowner FROM pg_tables WHERE schemaname = 'public' ORDER BY tablename;";

beforeAll(async () => {
  const pods = await backupPods();
  dumpContainer = pods.get("postgresql-dump").containers[0];
  [source, target] = await Promise.all([startPostgres(), startPostgres()]);
  // Both as CloudNativePG bootstraps the cluster: the application role owns the application database.
  const env = plainValues(dumpContainer);
  for (const server of [source, target]) {
    server.psql(
      `CREATE ROLE "${env.PGUSER}" LOGIN PASSWORD '${PASSWORD.replace(/'/g, "''")}'; CREATE DATABASE "${env.PGDATABASE}" OWNER "${env.PGUSER}";`,
    );
  }
  // Keycloak creates its tables as the application role.
  source.psql(SCHEMA, env.PGDATABASE, env.PGUSER);
  backup = fs.mkdtempSync(path.join(os.tmpdir(), "dare-postgresql-dump-"));
});

afterAll(async () => {
  await Promise.all([source?.stop(), target?.stop()]);
  if (backup) fs.rmSync(backup, { recursive: true, force: true });
});

describe(`PostgreSQL dump and restore (Debian's server)`, () => {
  it("the CronJob's script dumps the live database over TCP with the Secret's password, to a file only root reads", () => {
    // Host and port point at the test server; the user, database and password variables are the CronJob's.
    const env = containerEnv(dumpContainer, { PGHOST: "127.0.0.1", PGPORT: String(source.port), PGPASSWORD: PASSWORD });
    const r = runContainerScript(dumpContainer, { "/backup": backup }, env, [source.bin]);
    expect({ status: r.status, stderr: r.stderr }).toEqual({ status: 0, stderr: "" });
    const dump = theDump(backup, /^postgresql-\d{8}T\d{6}Z\.dump$/);
    expect(fs.statSync(path.join(backup, dump)).mode & 0o777).toBe(0o600);
    expect(fs.readFileSync(path.join(backup, dump)).subarray(0, 5).toString()).toBe("PGDMP");
  });

  it("docs/recovery.md's pg_restore brings every row back into an empty database, owned by the application role", () => {
    const dump = theDump(backup, /^postgresql-/);
    const time = /^postgresql-(.*)\.dump$/.exec(dump)![1];
    const command = fill(insidePod(theCommand(runbookSection("Restore a database"), /pg_restore/)), { time });
    const env = plainValues(dumpContainer);
    // Inside the CloudNativePG pod, `kubectl exec` runs as the postgres user with the local socket.
    const local = { PGHOST: target.socketDir, PGPORT: String(target.port), PGUSER: "postgres" };
    const r = runbookShell(command, backup, local, [target.bin]);
    expect({ status: r.status, stderr: r.stderr }).toEqual({ status: 0, stderr: "" });
    expect(target.psql(CONTENT, env.PGDATABASE)).toBe(source.psql(CONTENT, env.PGDATABASE));
    expect(target.psql(OWNERS, env.PGDATABASE)).toBe(["event_entity", "realm", "user_entity"].map((t) => `${t}|${env.PGUSER}\n`).join(""));

    // Again over a database that lives on (the usual case): --clean puts it back as dumped.
    target.psql("UPDATE realm SET name = 'changed' WHERE id = 'r2'; INSERT INTO realm VALUES ('r3', 'new', false);", env.PGDATABASE);
    const again = runbookShell(command, backup, local, [target.bin]);
    expect({ status: again.status, stderr: again.stderr }).toEqual({ status: 0, stderr: "" });
    expect(target.psql(CONTENT, env.PGDATABASE)).toBe(source.psql(CONTENT, env.PGDATABASE));
  });

  it("ran on a real server", () => {
    expect(source.version).toMatch(/^postgres \(PostgreSQL\) \d+/);
  });
});
