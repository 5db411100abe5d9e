// Dependency hygiene for CI, where `npm audit` cannot run (the registry's audit endpoint answers 405 on
// the build machines): every runtime dependency is on the current major of its package, and the
// install printed no "deprecated" warning. Deployments that reach the audit endpoint run
// `npm audit --omit=dev` as well (see docs/OPERATIONS.md, Dependencies).
// Usage: tsx scripts/check-deps.ts [file holding the output of `npm ci`]
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';

interface Outdated {
  current?: string;
  wanted: string;
  latest: string;
  location?: string;
}

const major = (version: string | undefined) => Number.parseInt(version ?? '', 10);

function runtimeDependencies(): string[] {
  const manifest = JSON.parse(fs.readFileSync('package.json', 'utf8')) as { dependencies?: Record<string, string> };
  return Object.keys(manifest.dependencies ?? {});
}

/** Runtime dependencies whose installed major is behind the registry's latest one. */
function behindOnMajor(names: string[]): string[] {
  let output: string;
  try {
    output = execFileSync('npm', ['outdated', '--json', ...names], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] });
  } catch (error) {
    // npm outdated exits 1 when anything is outdated; its JSON is on stdout all the same.
    output = (error as { stdout?: string }).stdout ?? '';
    if (!output.trim()) throw error;
  }
  // One entry per package name, or a list of them when several copies are outdated.
  const outdated = JSON.parse(output.trim() || '{}') as Record<string, Outdated | Outdated[]>;
  return Object.entries(outdated)
    .flatMap(([name, found]) => (Array.isArray(found) ? found : [found]).map((info): [string, Outdated] => [name, info]))
    // Our own copy only: npm also reports a copy that another package pins for itself.
    .filter(([name, info]) => !info.location || info.location === path.join(process.cwd(), 'node_modules', name))
    .filter(([, info]) => major(info.current ?? info.wanted) < major(info.latest))
    .map(([name, info]) => `${name} ${info.current ?? info.wanted} (latest ${info.latest})`);
}

function deprecationWarnings(installLog: string | undefined): string[] {
  if (!installLog) return [];
  return fs
    .readFileSync(installLog, 'utf8')
    .split('\n')
    .filter((line) => /\bwarn deprecated\b/i.test(line));
}

const names = runtimeDependencies();
const behind = behindOnMajor(names);
const deprecated = deprecationWarnings(process.argv[2]);
for (const line of behind) process.stderr.write(`runtime dependency behind its current major: ${line}\n`);
for (const line of deprecated) process.stderr.write(`deprecated package installed: ${line}\n`);
if (behind.length > 0 || deprecated.length > 0) process.exit(1);
process.stdout.write(`dependencies: ${names.length} runtime dependencies on their current major, no deprecated package installed\n`);
