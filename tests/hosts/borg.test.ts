/**
 * Host backups with real borg between two test hosts: bk-client backs up to bk-repo over SSH with
 * exactly what the program sends (the rendered borg step of the testbed's first control plane, through
 * hostStep's wrapper, its parameters on stdin) and exactly the unit it installs (its ExecStart, run with its EnvironmentFile, since
 * systemd is a recording stand-in here). Then files are deleted and restored with `borg extract`.
 */
import { spawnSync } from 'child_process';
import * as crypto from 'crypto';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { BackupSpec } from '../../components/config';
import { readScript, shellQuote, wrapScript } from '../../components/host-step';
import { render } from '../support/render';
import { readStubCalls, recordingStub, sshExec, startHosts, stopHosts, TestHost } from './harness';

jest.setTimeout(180_000);

let keyDir: string;
let loginKey: string;
let borgKey: string;
let client: TestHost;
let repo: TestHost;
let policy: BackupSpec;
let rendered: { script: string; env: string };
const PASSPHRASE = 'correct horse battery staple 42';

function keygen(name: string): { priv: string; pub: string } {
  const file = path.join(keyDir, name);
  const r = spawnSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', name, '-f', file], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`ssh-keygen: ${r.stderr}`);
  return { priv: fs.readFileSync(file, 'utf8'), pub: fs.readFileSync(`${file}.pub`, 'utf8').trim() };
}


/**
 * The borg step of the first control plane as the offline render writes it (the testbed stack with
 * this test's repository host), with the two secrets the render hides filled in.
 */
function renderedStep(): { script: string; env: string } {
  const result = render('testbed', ['--set', `backup=${policy.repository}`, '--set-secret', `backupPassphrase=${PASSPHRASE}`]);
  if (result.status !== 0) throw new Error(`render failed: ${result.stderr}`);
  const dir = path.join(result.dir, 'hosts', 'dare-testbed-cp-0');
  const base = fs.readdirSync(dir).find((f) => /^\d+-borg-backup\.sh$/.test(f))!.replace(/\.sh$/, '');
  const env = fs.readFileSync(path.join(dir, `${base}.env`), 'utf8')
    .replace(`BORG_PASSPHRASE='[secret]'`, `BORG_PASSPHRASE=${shellQuote(PASSPHRASE)}`)
    .replace(`BORG_SSH_PRIVATE_KEY='[secret]'`, `BORG_SSH_PRIVATE_KEY=${shellQuote(borgKey)}`);
  return { script: fs.readFileSync(path.join(dir, `${base}.sh`), 'utf8'), env };
}

/** The setup step as hostStep sends it: the wrapped script over SSH as the login user, parameters on stdin. */
async function runSetup(paths: string) {
  // The program backs up "/"; a test host's / holds the real machine's /usr, so the test names its own paths.
  const env = rendered.env.replace(/^BORG_PATHS='\/'$/m, `BORG_PATHS=${shellQuote(paths)}`);
  expect(env).toContain(`BORG_PATHS=${shellQuote(paths)}`);
  return sshExec(client, loginKey, wrapScript(rendered.script), { stdin: env });
}

/** Runs the installed unit's ExecStart with its EnvironmentFile, as systemd would. */
async function runUnit(): Promise<{ code: number; stdout: string; stderr: string }> {
  const unit = await client.readFile('/etc/systemd/system/dare-borg-backup.service');
  const envFileLine = /^EnvironmentFile=(.+)$/m.exec(unit)![1];
  const execStart = /^ExecStart=(.+)$/m.exec(unit)![1];
  return client.exec(`set -a; . ${envFileLine}; set +a; ${execStart}`, { timeoutMs: 120_000 });
}

async function borg(args: string): Promise<{ code: number; stdout: string; stderr: string }> {
  return client.exec(`set -a; . /etc/dare/borg/borg.env; set +a; cd / && borg ${args}`, { timeoutMs: 120_000 });
}

/** Deduplicated size of "This archive" in bytes, from borg create --stats. */
function deduplicatedBytes(output: string): { original: number; deduplicated: number } {
  const line = /^This archive:\s+(\S+) (\S?B)\s+(\S+) (\S?B)\s+(\S+) (\S?B)\s*$/m.exec(output);
  if (!line) throw new Error(`no stats in:\n${output}`);
  const bytes = (n: string, unit: string) => Number(n) * ({ B: 1, kB: 1e3, MB: 1e6, GB: 1e9 } as Record<string, number>)[unit];
  return { original: bytes(line[1], line[2]), deduplicated: bytes(line[5], line[6]) };
}

beforeAll(async () => {
  keyDir = fs.mkdtempSync(path.join(os.tmpdir(), 'dare-borg-test-'));
  const login = keygen('login');
  loginKey = login.priv;
  const dedicated = keygen('borg');
  borgKey = dedicated.priv;
  [client, repo] = await startHosts(['bk-client', 'bk-repo'], {
    authorizedKey: login.pub,
    stubs: { systemctl: recordingStub('systemctl') },
  });
  // The repository server: a user that accepts only the program's dedicated key, as the runbook says.
  const prep = await repo.exec(
    'set -e; useradd --create-home --shell /bin/sh borg; install -d -m 0700 -o borg -g borg /home/borg/.ssh; ' +
      `printf '%s\\n' '${dedicated.pub}' > /home/borg/.ssh/authorized_keys; chown borg:borg /home/borg/.ssh/authorized_keys; ` +
      'chmod 0600 /home/borg/.ssh/authorized_keys; usermod --password "*" borg; install -d -m 0700 -o borg -g borg /srv/borg',
  );
  if (prep.code !== 0) throw new Error(`repo prep: ${prep.stderr}`);
  policy = {
    repository: `borg@${repo.address}:/srv/borg`,
    schedule: '0 2 * * *',
    keepEtcdSnapshots: 7,
    keepDumps: 7,
    hostSchedule: '*-*-* 03:00:00',
    prune: { daily: 7, weekly: 4, monthly: 6 },
  };
  rendered = renderedStep();
  // What runs is the program's own script, not a test copy.
  expect(rendered.script).toBe(readScript('borg-setup.sh'));
  // Files worth keeping, one of them a stand-in etcd snapshot, and two that must be left out.
  const data = crypto.randomBytes(3 * 1024 * 1024);
  await client.writeFile('/srv/data/measurements.bin', data);
  await client.writeFile('/etc/dare-test/settings.conf', 'realm = dare\n', { mode: 0o640 });
  await client.writeFile('/var/backups/dare/etcd/etcd-20260101T020000Z.db', crypto.randomBytes(64 * 1024));
  await client.writeFile('/tmp/scratch.txt', 'temporary\n');
  await client.writeFile('/root/private.txt', 'root only\n');
});

afterAll(async () => {
  if (client || repo) await stopHosts([client, repo].filter(Boolean));
  if (keyDir) fs.rmSync(keyDir, { recursive: true, force: true });
});

const PATHS = '/etc/dare-test /srv/data /var/backups/dare /tmp /root';
const KEPT = ['/srv/data/measurements.bin', '/etc/dare-test/settings.conf', '/var/backups/dare/etcd/etcd-20260101T020000Z.db'];
const sha = async (p: string) => (await client.exec(`sha256sum ${p}`)).stdout.split(' ')[0];

test('setup installs the unit and timer, initialises the repository once, and enables the timer', async () => {
  const first = await runSetup(PATHS);
  expect({ code: first.code, stderr: first.code === 0 ? '' : first.stderr + first.stdout }).toEqual({ code: 0, stderr: '' });
  expect(first.stdout).toContain('initialised');
  const onRepo = await repo.exec('test -f /srv/borg/dare-testbed-cp-0/config && echo repo');
  expect(onRepo.stdout.trim()).toBe('repo');
  const timer = await client.readFile('/etc/systemd/system/dare-borg-backup.timer');
  expect(timer).toMatch(/^OnCalendar=\*-\*-\* 03:00:00$/m);
  expect((await client.stat('/etc/dare/borg/passphrase')).mode).toBe(0o600);
  expect((await client.stat('/etc/dare/borg/id_ed25519')).mode).toBe(0o600);
  const calls = await readStubCalls(client);
  expect(calls).toEqual(expect.arrayContaining(['systemctl daemon-reload', 'systemctl enable --now dare-borg-backup.timer']));

  const again = await runSetup(PATHS);
  expect(again.code).toBe(0);
  expect(again.stdout).toContain('exists');
  expect(again.stdout).not.toContain('initialised');
  expect(again.stdout).not.toContain('wrote');
});

test('the unit backs up over SSH, a second run sends no unchanged data, and borg extract restores byte-identical files', async () => {
  const before = await Promise.all(KEPT.map(sha));

  const first = await runUnit();
  expect({ code: first.code, err: first.stderr.slice(-2000) }).toEqual({ code: 0, err: expect.any(String) });
  const firstStats = deduplicatedBytes(first.stderr + first.stdout);
  expect(firstStats.deduplicated).toBeGreaterThan(2e6);

  await new Promise((r) => setTimeout(r, 1100)); // archive names carry the second
  const second = await runUnit();
  expect(second.code).toBe(0);
  const secondStats = deduplicatedBytes(second.stderr + second.stdout);
  expect(secondStats.original).toBeGreaterThan(3e6);
  // Unchanged data is not sent again: the new archive adds (almost) nothing to the repository.
  expect(secondStats.deduplicated).toBeLessThan(20e3);
  const names = [first, second].map((r) => /^Archive name: (\S+)$/m.exec(r.stderr + r.stdout)![1]);
  expect(names[0]).not.toBe(names[1]);

  const list = await borg('list --short');
  expect(list.code).toBe(0);
  // The second run added an archive; prune keeps both (the daily rule keeps the newer, the weekly
  // rule, which skips archives kept by earlier rules, the older).
  expect(list.stdout.trim().split('\n')).toEqual(names);
  const contents = await borg(`list --short ::${names[1]}`);
  expect(contents.stdout).toContain('srv/data/measurements.bin');
  expect(contents.stdout).toContain('var/backups/dare/etcd/etcd-20260101T020000Z.db');
  expect(contents.stdout).not.toContain('tmp/scratch.txt');
  expect(contents.stdout).not.toContain('root/private.txt');

  expect((await client.exec(`rm -rf /srv/data /etc/dare-test /var/backups/dare`)).code).toBe(0);
  expect((await client.exec('test -e /srv/data/measurements.bin')).code).not.toBe(0);
  const restore = await borg(`extract ::${names[1]} srv/data etc/dare-test var/backups/dare`);
  expect({ code: restore.code, stderr: restore.stderr }).toEqual({ code: 0, stderr: '' });
  expect(await Promise.all(KEPT.map(sha))).toEqual(before);
  expect((await client.stat('/etc/dare-test/settings.conf')).mode).toBe(0o640);
});
