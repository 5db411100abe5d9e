import { spawnSync } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { dropDatabase } from '../src/db/migrate';
import { buildFlowExport } from '../src/flows/export';
import { checkFlowStructure, webhookNodeOf } from './helpers/flow-spec';
import { TEST_DATABASE_URL, testEnvironment } from './helpers/env';
import { MAIN, startCompanion } from './helpers/process';

function companion(args: string[], env: Record<string, string | undefined> = {}, cwd?: string) {
  const result = spawnSync(process.execPath, [MAIN, ...args], {
    cwd,
    env: { PATH: process.env.PATH, ...testEnvironment({ LOG_LEVEL: 'info', ...env }) },
    encoding: 'utf8',
    timeout: 30000,
  });
  return { status: result.status, stdout: result.stdout, stderr: result.stderr };
}

describe('companion CLI', () => {
  it('migrate creates a missing database, migrates it, and is a no-op the second time', async () => {
    const url = new URL(TEST_DATABASE_URL);
    url.pathname = `/companion_cli_${randomUUID().slice(0, 8)}`;
    const databaseUrl = url.toString();
    try {
      const first = companion(['migrate'], { DATABASE_URL: databaseUrl });
      expect(first.stderr).toBe('');
      expect(first.status).toBe(0);
      expect(first.stdout).toMatch(/created database/);
      expect(first.stdout).toMatch(/applied migration/);

      const client = new pg.Client({ connectionString: databaseUrl });
      await client.connect();
      const tables = await client.query("SELECT tablename FROM pg_tables WHERE schemaname = 'public' ORDER BY 1");
      await client.end();
      expect(tables.rows.map((row) => row.tablename)).toEqual(expect.arrayContaining(['_prisma_migrations', 'api_clients', 'optouts', 'optout_attempts']));

      const second = companion(['migrate'], { DATABASE_URL: databaseUrl });
      expect(second.status).toBe(0);
      expect(second.stdout).toMatch(/database is up to date/);
    } finally {
      await dropDatabase(databaseUrl);
    }
  });

  it('creates, lists and revokes API clients, showing the token only once', () => {
    const name = `cli-${randomUUID().slice(0, 8)}`;
    const created = companion(['tokens:create', '--name', name, '--role', 'rapidpro']);
    expect(created.status).toBe(0);
    const token = created.stdout.trimEnd().split('\n').at(-1)!;
    expect(token).toMatch(/^cmp_[0-9a-f]{16}_[\w-]{43}$/);
    // stdout is the command's output alone: its log lines (JSON) go to stderr.
    expect(created.stdout).toBe(`${token}\n`);
    expect(created.stderr).toMatch(/^\{"level":"warn".*\n[\s\S]*Its token, shown only now:\n$/);

    const listed = companion(['tokens:list']);
    expect(listed.status).toBe(0);
    expect(listed.stdout).toMatch(new RegExp(`^${name}\\trole=rapidpro\\tactive`, 'm'));
    // The secret is everything after `cmp_<key id>_` (it may itself contain `_`).
    expect(listed.stdout).not.toContain(token.slice('cmp_'.length + 16 + 1));

    expect(companion(['tokens:create', '--name', name]).stderr).toMatch(/already exists/);
    expect(companion(['tokens:revoke', '--name', name]).status).toBe(0);
    expect(companion(['tokens:list']).stdout).toMatch(new RegExp(`^${name}\\trole=rapidpro\\trevoked`, 'm'));
    const again = companion(['tokens:revoke', '--name', name]);
    expect(again.status).toBe(1);
    expect(again.stderr).toMatch(/no active API client named/);
  });

  it('gives a staff member a role, before their first sign-in, and records it', async () => {
    const email = `Grant-${randomUUID().slice(0, 8)}@programme.example.org`;
    const env = { ADMIN_GOOGLE_DOMAINS: 'programme.example.org', ADMIN_EMAILS: 'boss.person@gmail.com' };
    const granted = companion(['users:grant', '--email', email, '--role', 'operator'], env);
    expect(granted.stderr).not.toMatch(/can sign in only/);
    expect(granted.status).toBe(0);
    const lastLine = (stdout: string) => stdout.trimEnd().split('\n').at(-1);
    expect(lastLine(granted.stdout)).toBe(`${email.toLowerCase()} is now operator`);
    expect(lastLine(companion(['users:grant', '--email', email, '--role', 'admin'], env).stdout)).toBe(`${email.toLowerCase()} is now admin`);

    const client = new pg.Client({ connectionString: TEST_DATABASE_URL });
    await client.connect();
    const member = await client.query('SELECT role FROM staff_members WHERE email = $1', [email.toLowerCase()]);
    const audit = await client.query("SELECT actor, details FROM audit_events WHERE target = $1 AND action = 'staff_grant' ORDER BY at", [email.toLowerCase()]);
    await client.end();
    expect(member.rows).toEqual([{ role: 'admin' }]);
    expect(audit.rows).toEqual([
      { actor: 'cli', details: { role: 'operator' } },
      { actor: 'cli', details: { role: 'admin' } },
    ]);

    const outsider = companion(['users:grant', '--email', 'someone@elsewhere.example', '--role', 'viewer'], env);
    expect(outsider.status).toBe(0);
    expect(outsider.stderr).toMatch(/can sign in only with an account of one of ADMIN_GOOGLE_DOMAINS/);
    const configured = companion(['users:grant', '--email', 'boss.person@gmail.com', '--role', 'viewer'], env);
    expect(configured.status).toBe(1);
    expect(configured.stderr).toMatch(/is listed in ADMIN_EMAILS and is always an admin/);
    expect(companion(['users:grant', '--email', email, '--role', 'owner']).stderr).toMatch(/--role must be viewer, operator or admin/);
    expect(companion(['users:grant', '--email', 'nobody', '--role', 'viewer']).stderr).toMatch(/--email must be an email address/);
  });

  it('explains its usage for a missing option or an unknown command', () => {
    const missing = companion(['tokens:create']);
    expect(missing.status).toBe(1);
    expect(missing.stderr).toMatch(/--name is required[\s\S]*usage: companion/);
    expect(companion(['frobnicate']).stderr).toMatch(/unknown command "frobnicate"/);
  });

  describe('flows:export', () => {
    const BASE = 'https://companion.example.org';
    /** Every UUID in order of first appearance, replaced by its rank: two exports of one flow then compare equal. */
    const withoutUuids = (text: string) => {
      const seen = new Map<string, string>();
      return text.replace(/[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}/g, (uuid) => seen.get(uuid) ?? (seen.set(uuid, `uuid-${seen.size}`), `uuid-${seen.size - 1}`));
    };
    /** stderr without the log's JSON lines (a warning about unset partner settings, say): what the command itself says. */
    const said = (stderr: string) => stderr.split('\n').filter((line) => line !== '' && !line.startsWith('{"level"'));
    const auditOf = async (target: string) => {
      const client = new pg.Client({ connectionString: TEST_DATABASE_URL });
      await client.connect();
      const rows = await client.query('SELECT actor, action, details FROM audit_events WHERE target = $1 ORDER BY at, action', [target]);
      await client.end();
      return rows.rows;
    };

    it('prints, as the whole of stdout, the flow the staff pages give, with a new API client whose token only the export holds', async () => {
      const name = `cli-flow-${randomUUID().slice(0, 8)}`;
      const args = ['--webhook', 'whatsapp-template', '--url', BASE, '--template', 'appointment_reminder', '--language', 'pt_BR', '--param', '@contact.name', '--param', 'Monday 10:00', '--name', 'Reminders'];
      const result = companion(['flows:export', ...args, '--new-client', name]);
      expect(said(result.stderr)).toEqual([]);
      expect(result.status).toBe(0);
      const { action } = webhookNodeOf(checkFlowStructure(JSON.parse(result.stdout)));
      const token = /^Token (cmp_\S+)$/.exec(action.headers.Authorization!)![1]!;
      const expected = buildFlowExport({
        webhook: { kind: 'whatsapp-template', template: 'appointment_reminder', language: 'pt_BR', params: ['@contact.name', 'Monday 10:00'] },
        baseUrl: BASE,
        token,
        flowName: 'Reminders',
      });
      expect(withoutUuids(result.stdout)).toBe(withoutUuids(`${JSON.stringify(expected, null, 2)}\n`));
      expect(action.url).toBe(`${BASE}/api/v1/whatsapp/templates?template=appointment_reminder&language=pt_BR&param=@(url_encode(contact.name))&param=Monday%2010%3A00`);
      expect(await auditOf(name)).toEqual([
        { actor: 'cli', action: 'api_client_create', details: { role: 'rapidpro', for: 'flow generator' } },
        { actor: 'cli', action: 'flow_generate', details: { webhook: 'whatsapp-template', template: 'appointment_reminder', language: 'pt_BR' } },
      ]);

      // The new token authenticates: it makes the next export, an opt-out flow, without a client of its own.
      const again = companion(['flows:export', '--webhook', 'optout', '--url', `${BASE}/`, '--token', token]);
      expect(said(again.stderr)).toEqual([]);
      expect(again.status).toBe(0);
      expect(webhookNodeOf(checkFlowStructure(JSON.parse(again.stdout))).action).toMatchObject({ url: `${BASE}/api/v1/optouts`, headers: { Authorization: `Token ${token}` } });

      // The queued send takes the same options, and its flow is the one buildFlowExport makes for it.
      const queued = companion(['flows:export', '--webhook', 'whatsapp-template-send', '--url', BASE, '--token', token, '--template', 'appointment_reminder', '--param', '@contact.name']);
      expect(said(queued.stderr)).toEqual([]);
      expect(queued.status).toBe(0);
      const queuedExpected = buildFlowExport({ webhook: { kind: 'whatsapp-template-send', template: 'appointment_reminder', params: ['@contact.name'] }, baseUrl: BASE, token });
      expect(withoutUuids(queued.stdout)).toBe(withoutUuids(`${JSON.stringify(queuedExpected, null, 2)}\n`));
      expect(webhookNodeOf(checkFlowStructure(JSON.parse(queued.stdout))).action).toMatchObject({
        url: `${BASE}/api/v1/whatsapp/template-sends?template=appointment_reminder&param=@(url_encode(contact.name))`,
        headers: { 'Idempotency-Key': '@(run.uuid)-@(node.uuid)-@(node.visit_count)' },
      });
      expect((await auditOf(name)).slice(2)).toEqual([
        { actor: 'cli', action: 'flow_generate', details: { webhook: 'optout' } },
        { actor: 'cli', action: 'flow_generate', details: { webhook: 'whatsapp-template-send', template: 'appointment_reminder', language: null } },
      ]);
    });

    it.each([
      ['no --url', ['--webhook', 'optout', '--new-client', 'x'], /^--url BASE_URL is required/],
      ['a --url that is not http', ['--webhook', 'optout', '--url', 'ftp://companion.example.org', '--new-client', 'x'], /^--url must be an http or https URL/],
      ['neither --token nor --new-client', ['--webhook', 'optout', '--url', BASE], /^give one of --token T .* or --new-client NAME$/],
      ['both --token and --new-client', ['--webhook', 'optout', '--url', BASE, '--token', 't', '--new-client', 'x'], /^give one of --token T/],
      ['an unknown --webhook', ['--webhook', 'sms', '--url', BASE, '--new-client', 'x'], /^--webhook: choose the opt-out, the WhatsApp template or the queued WhatsApp template webhook$/],
      ['no --template', ['--webhook', 'whatsapp-template', '--url', BASE, '--new-client', 'x'], /^--template: /],
      ['no --template for the queued send', ['--webhook', 'whatsapp-template-send', '--url', BASE, '--new-client', 'x'], /^--template: /],
      ['a --language that is no WhatsApp code', ['--webhook', 'whatsapp-template', '--template', 't', '--language', 'portuguese', '--url', BASE, '--new-client', 'x'], /^--language: must be a WhatsApp language code/],
      ['template options for the opt-out', ['--webhook', 'optout', '--param', '@contact.name', '--url', BASE, '--new-client', 'x'], /^--template, --language and --param are for --webhook whatsapp-template or whatsapp-template-send$/],
      ['a --new-client name with spaces', ['--webhook', 'optout', '--url', BASE, '--new-client', 'two words'], /^--new-client: letters, digits/],
      ['a --token of no active client', ['--webhook', 'optout', '--url', BASE, '--token', 'cmp_0123456789abcdef_nope'], /^--token does not belong to an active API client/],
    ])('refuses %s in one line on stderr, printing nothing', (_case, args, message) => {
      const result = companion(['flows:export', ...args]);
      expect(result.status).toBe(1);
      expect(result.stdout).toBe('');
      expect(said(result.stderr)).toEqual([expect.stringMatching(message)]);
    });

    it('refuses a --new-client name that is taken', () => {
      const name = `cli-flow-${randomUUID().slice(0, 8)}`;
      expect(companion(['tokens:create', '--name', name]).status).toBe(0);
      const result = companion(['flows:export', '--webhook', 'optout', '--url', BASE, '--new-client', name]);
      expect(result.status).toBe(1);
      expect(result.stdout).toBe('');
      expect(said(result.stderr)).toEqual([`an API client named "${name}" already exists: choose another --new-client NAME, or pass its --token`]);
    });
  });

  it('stops at start-up with one line per invalid variable', () => {
    const result = companion(['serve', '--role', 'web'], { PORT: 'eighty', OPTOUT_BACKOFF_MS: '-1' });
    expect(result.status).toBe(1);
    expect(result.stderr.trim().split('\n')).toEqual([expect.stringMatching(/^configuration error: PORT: /), expect.stringMatching(/^configuration error: OPTOUT_BACKOFF_MS: /)]);
  });

  it('in production, needs the staff sign-in settings only where the staff pages are served (web, all)', async () => {
    const production = { NODE_ENV: 'production' };
    const migrated = companion(['migrate'], production);
    expect(migrated.stderr).toBe('');
    expect(migrated.status).toBe(0);
    expect(companion(['tokens:list'], production).status).toBe(0);
    const worker = startCompanion(['serve', '--role', 'worker'], production);
    await worker.listening;
    worker.child.kill('SIGTERM');
    expect(await worker.exited).toBe(0);

    const missing = ['GOOGLE_CLIENT_ID', 'GOOGLE_CLIENT_SECRET', 'SESSION_SECRET', 'PUBLIC_URL', 'ADMIN_GOOGLE_DOMAINS (or ADMIN_EMAILS)'];
    for (const role of ['web', 'all']) {
      const refused = companion(['serve', '--role', role], production);
      expect(refused.status).toBe(1);
      expect(refused.stderr.trim().split('\n')).toEqual(
        missing.map((name) => `configuration error: ${name}: required when NODE_ENV=production to serve the staff pages (serve --role web or all)`),
      );
    }
  });

  it.each([['serve'], ['migrate']])('%s names the unreachable PostgreSQL, password masked, and says how to start it', (command) => {
    const result = companion([command], { DATABASE_URL: 'postgresql://app:s3cret@127.0.0.1:1/companion' });
    expect(result.status).toBe(1);
    expect(result.stderr.trim().split('\n')).toEqual([expect.stringMatching(/^PostgreSQL is not reachable at postgresql:\/\/app:\*\*\*@127\.0\.0\.1:1\/companion .*pg_ctlcluster/)]);
    expect(result.stderr).not.toContain('s3cret');
  });

  it('reads DATABASE_URL from a .env file in the directory it runs in', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'companion-dotenv-'));
    try {
      fs.writeFileSync(path.join(dir, '.env'), 'DATABASE_URL=postgresql://postgres@127.0.0.1:1/x\n');
      // Nothing in the environment names a database: the .env file is the only source of the URL.
      const result = companion(['tokens:list'], { DATABASE_URL: undefined }, dir); // read-only, whichever database it reaches
      expect(result.status).toBe(1);
      expect(result.stderr.trim().split('\n')).toEqual([expect.stringMatching(/^PostgreSQL is not reachable at postgresql:\/\/postgres@127\.0\.0\.1:1\/x /)]);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it('names the unreachable Redis, password masked, with the cause, and says how to start it', () => {
    const result = companion(['serve'], { REDIS_URL: 'redis://:hunter2@127.0.0.1:1' });
    expect(result.status).toBe(1);
    // One line: not ioredis's "Unhandled error event" and its stack first.
    expect(result.stderr.trim().split('\n')).toEqual([
      expect.stringMatching(/^Redis is not reachable at redis:\/\/:\*\*\*@127\.0\.0\.1:1 \(connect ECONNREFUSED 127\.0\.0\.1:1\)\. .*redis-server/),
    ]);
    expect(result.stderr).not.toContain('hunter2');
  });

  it('serves without partner settings, says which are missing, and stops cleanly on SIGTERM', async () => {
    const companionProcess = startCompanion(['serve', '--role', 'all']);
    await companionProcess.listening;
    expect(companionProcess.output()).toMatch(
      /not submitted until these are set: OPENHIM_URL, OPENHIM_USERNAME, OPENHIM_PASSWORD/,
    );
    companionProcess.child.kill('SIGTERM');
    expect(await companionProcess.exited).toBe(0);
  });
});

describe('npm start', () => {
  it('execs the server, so that the SIGTERM npm passes on reaches node, not a shell that would leave node running', () => {
    const manifest = JSON.parse(fs.readFileSync(path.join(__dirname, '..', 'package.json'), 'utf8')) as { scripts: { start: string } };
    const commands = manifest.scripts.start.split('&&').map((command) => command.trim());
    expect(commands.at(-1)).toMatch(/^exec node .*dist\/main\.js serve --role all$/);
  });
});
