import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';

/** A PostgreSQL server program (initdb, pg_ctl, postgres): in pg_config's bindir, else as found on PATH. */
export function postgresBinary(name: string, searchPath = process.env.PATH): string {
  try {
    return path.join(execFileSync('pg_config', ['--bindir'], { encoding: 'utf8', env: { ...process.env, PATH: searchPath } }).trim(), name);
  } catch {
    return name;
  }
}

/** Whether `program` (a path, or a name looked up on `searchPath`) is an executable file. */
function runnable(program: string, searchPath: string): boolean {
  const candidates = path.isAbsolute(program) ? [program] : searchPath.split(path.delimiter).filter(Boolean).map((dir) => path.join(dir, program));
  return candidates.some((candidate) => {
    try {
      fs.accessSync(candidate, fs.constants.X_OK);
      return fs.statSync(candidate).isFile();
    } catch {
      return false;
    }
  });
}

function userExists(name: string, searchPath: string): boolean {
  try {
    execFileSync('id', ['-u', name], { stdio: 'ignore', env: { ...process.env, PATH: searchPath } });
    return true;
  } catch {
    return false;
  }
}

/** What the machine lacks of what the tests that run a PostgreSQL or Redis server of their own need, with programs looked up on `searchPath`. */
export function missingPrograms(searchPath = process.env.PATH ?? ''): string[] {
  const missing = [
    ...['initdb', 'pg_ctl', 'postgres'].filter((name) => !runnable(postgresBinary(name, searchPath), searchPath)).map((name) => `${name} (PostgreSQL's server programs)`),
    ...['redis-server', 'redis-cli'].filter((name) => !runnable(name, searchPath)),
  ];
  // initdb refuses to run as root: then the test clusters belong to the postgres user (postgres-server.ts).
  if (process.getuid?.() === 0) {
    if (!runnable('runuser', searchPath)) missing.push('runuser (to run initdb and pg_ctl as postgres)');
    if (!userExists('postgres', searchPath)) missing.push('a user named postgres (to run initdb and pg_ctl as root)');
  }
  return missing;
}

/**
 * Checked before any test runs (jest's global setup, the fault scenarios' too): fails the run with one
 * message naming all that the machine lacks of what the tests need.
 */
export default function checkMachine(): void {
  const missing = missingPrograms();
  if (missing.length > 0) {
    throw new Error(
      `this machine lacks what the tests need to run PostgreSQL and Redis servers of their own: ${missing.join(', ')}. ` +
        'Install them (on Debian: apt-get install postgresql redis-server) and run the tests again.',
    );
  }
}
