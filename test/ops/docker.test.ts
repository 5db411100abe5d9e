import fs from 'node:fs';
import path from 'node:path';
import dotenv from 'dotenv';
import { parse } from 'yaml';
import { loadConfig } from '../../src/config';

/**
 * No Docker engine runs where the tests run, so the Dockerfile and compose file are checked as text
 * against what the README promises: stages, base image major, unprivileged user, role commands.
 */
const root = path.join(__dirname, '..', '..');
const read = (file: string) => fs.readFileSync(path.join(root, file), 'utf8');

interface Stage {
  from: string;
  name: string | undefined;
  instructions: string[];
}

function stagesOf(dockerfile: string): Stage[] {
  const args = Object.fromEntries([...dockerfile.matchAll(/^ARG (\w+)=(\S+)$/gm)].map((match) => [match[1], match[2]]));
  const logical = dockerfile.replace(/\s*\\\n\s*/g, ' ').split('\n').filter((line) => line.trim() && !line.startsWith('#'));
  const stages: Stage[] = [];
  for (const line of logical) {
    const from = /^FROM\s+(\S+)(?:\s+AS\s+(\S+))?/i.exec(line);
    if (from) stages.push({ from: from[1]!.replace(/\$\{(\w+)\}/g, (_m, name: string) => args[name] ?? ''), name: from[2], instructions: [] });
    else stages.at(-1)?.instructions.push(line.trim());
  }
  return stages;
}

describe('Dockerfile', () => {
  const stages = stagesOf(read('Dockerfile'));
  const runtime = stages.at(-1)!;

  it('builds in stages and ships only the runtime stage', () => {
    expect(stages.map((stage) => stage.name)).toEqual(['build', 'runtime-deps', 'runtime']);
    expect(runtime.instructions.filter((line) => line.startsWith('COPY --from='))).toEqual([
      'COPY --from=runtime-deps /app/node_modules ./node_modules',
      'COPY --from=build /app/dist ./dist',
    ]);
  });

  it('ships no devDependency', () => {
    const install = stages.find((stage) => stage.name === 'runtime-deps')!.instructions.filter((line) => line.includes('npm ci'));
    // --omit=dev alone keeps what the lockfile marks devOptional: devDependencies that are also optional
    // peers of a runtime dependency (prisma and typescript, of @prisma/client), with all they pull in.
    // With no devDependencies in the manifest, npm ci leaves them out.
    expect(install).toEqual([expect.stringMatching(/^RUN npm pkg delete devDependencies && npm ci --omit=dev /)]);
  });

  it('runs on the Node major the tests run on', () => {
    const pkg = JSON.parse(read('package.json')) as { devDependencies: Record<string, string>; engines: { node: string } };
    const testedMajor = /\d+/.exec(pkg.devDependencies.node!)![0];
    for (const stage of stages) expect(stage.from).toMatch(new RegExp(`^node:${testedMajor}[-.]`));
    expect(process.versions.node.split('.')[0]).toBe(testedMajor);
    expect(pkg.engines.node).toBe(`>=${testedMajor}`);
  });

  it('runs as an unprivileged user with the role as its command', () => {
    expect(runtime.instructions).toContain('USER node');
    expect(runtime.instructions).toContain('ENTRYPOINT ["/usr/bin/tini", "--", "node", "dist/main.js"]');
    expect(runtime.instructions).toContain('CMD ["serve", "--role", "web"]');
    expect(runtime.instructions).toContain('ENV NODE_ENV=production PORT=3000');
    expect(runtime.instructions.some((line) => line.startsWith('HEALTHCHECK') && line.includes('/healthz'))).toBe(true);
  });

  it('runs node under tini, so that a stop reaches it before it has a SIGTERM handler (as PID 1 it would ignore the signal)', () => {
    expect(runtime.instructions).toContainEqual(expect.stringMatching(/^RUN apt-get update && apt-get install -y --no-install-recommends tini /));
    expect(runtime.instructions.find((line) => line.startsWith('ENTRYPOINT'))).toMatch(/^ENTRYPOINT \["\/usr\/bin\/tini", "--", "node", /);
  });

  it('keeps its ENV settings when a .env copied from .env.example is passed with --env-file', () => {
    const imageEnv = Object.fromEntries(
      runtime.instructions.filter((line) => line.startsWith('ENV ')).flatMap((line) => [...line.matchAll(/(\w+)=("[^"]*"|\S+)/g)].map((match) => [match[1], match[2]!.replace(/^"|"$/g, '')])),
    );
    expect(imageEnv.NODE_ENV).toBe('production');
    const copied = dotenv.parse(read('.env.example'));
    for (const [name, value] of Object.entries(imageEnv)) {
      if (name in copied) expect(`${name}=${copied[name]}`).toBe(`${name}=${value}`);
    }
  });

  it('ships the migrations where the migration runner looks for them', () => {
    expect(runtime.instructions).toContain('COPY prisma ./prisma');
    expect(read('src/db/migrate.ts')).toContain("path.resolve(__dirname, '../../prisma/migrations')");
  });

  it("ships the staff pages' stylesheet where they look for it", () => {
    expect(runtime.instructions).toContain('COPY static ./static');
    expect(read('src/admin/routes.ts')).toContain("path.resolve(__dirname, '../../static')");
  });

  it('is what the README says', () => {
    const readme = read('README.md');
    for (const command of ['docker run --rm --env-file .env companion migrate', 'serve --role web', 'serve --role worker']) {
      expect(readme).toContain(command);
    }
    expect(readme).toMatch(/multi-stage/i);
    expect(readme).toMatch(/user `node`/);
  });
});

describe('docker-compose.yml', () => {
  const compose = parse(read('docker-compose.yml'), { merge: true }) as {
    services: Record<
      string,
      { command?: string[]; depends_on?: Record<string, { condition: string }>; restart?: string; environment?: Record<string, string>; ports?: string[]; stop_grace_period?: string }
    >;
  };

  it('has PostgreSQL, Redis, a one-shot migration, web and worker', () => {
    expect(Object.keys(compose.services).sort()).toEqual(['migrate', 'postgres', 'redis', 'web', 'worker']);
    expect(compose.services.migrate!.command).toEqual(['migrate']);
    expect(compose.services.migrate!.restart).toBe('no');
    expect(compose.services.web!.command).toEqual(['serve', '--role', 'web']);
    expect(compose.services.worker!.command).toEqual(['serve', '--role', 'worker']);
  });

  it("wires every companion service to PostgreSQL and Redis, and leaves V8's heap sizes at Node's defaults", () => {
    for (const role of ['migrate', 'web', 'worker']) {
      expect(compose.services[role]!.environment).toMatchObject({ DATABASE_URL: expect.stringMatching(/^postgresql:\/\/.+@postgres:5432\//), REDIS_URL: 'redis://redis:6379' });
    }
    for (const role of ['migrate', 'web', 'worker']) expect(compose.services[role]!.environment!.NODE_OPTIONS).toBeUndefined();
  });

  it('believes no X-Forwarded-For on the directly published web port unless .env says proxies stand in front', () => {
    expect(compose.services.web!.ports).toEqual(['3000:3000']);
    // TRUST_PROXY comes from .env alone, and one copied from .env.example leaves it at its default, 0.
    expect(compose.services.web!.environment!.TRUST_PROXY).toBeUndefined();
    expect(dotenv.parse(read('.env.example')).TRUST_PROXY).toBeUndefined();
    expect(loadConfig({}).trustedProxies).toBe(0);
  });

  it('lets the companion finish its graceful shutdown (SHUTDOWN_TIMEOUT_MS) before Docker kills it', () => {
    const seconds = (duration: string) => Number(/^(\d+)s$/.exec(duration)?.[1]);
    for (const role of ['migrate', 'web', 'worker']) {
      expect(seconds(compose.services[role]!.stop_grace_period!) * 1000).toBeGreaterThan(loadConfig({}).shutdownTimeoutMs);
    }
  });

  it('starts web and worker only after the migration succeeded', () => {
    for (const role of ['web', 'worker']) {
      expect(compose.services[role]!.depends_on!.migrate).toEqual({ condition: 'service_completed_successfully' });
    }
  });

  it('gives Redis persistence and noeviction', () => {
    const command = compose.services.redis!.command!.join(' ');
    expect(command).toMatch(/--appendonly yes/);
    expect(command).toMatch(/--maxmemory-policy noeviction/);
  });
});
