import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';

/** A PostgreSQL server program (initdb, pg_ctl, postgres): in pg_config's bindir, else as found on PATH. */
export function postgresBinary(name: string): string {
  try {
    return path.join(execFileSync('pg_config', ['--bindir'], { encoding: 'utf8' }).trim(), name);
  } catch {
    return name;
  }
}

/** Whether `program` (a path, or a name looked up on PATH) is an executable file. */
function runnable(program: string): boolean {
  const candidates = path.isAbsolute(program) ? [program] : (process.env.PATH ?? '').split(path.delimiter).filter(Boolean).map((dir) => path.join(dir, program));
  return candidates.some((candidate) => {
    try {
      fs.accessSync(candidate, fs.constants.X_OK);
      return fs.statSync(candidate).isFile();
    } catch {
      return false;
    }
  });
}

function userExists(name: string): boolean {
  try {
    execFileSync('id', ['-u', name], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

/**
 * Checked before any test runs: the programs that the tests which start a PostgreSQL or Redis server of
 * their own need (so do the fault scenarios). Fails the run with one message naming all that is missing.
 */
export default function checkMachine(): void {
  const missing = [
    ...['initdb', 'pg_ctl', 'postgres'].filter((name) => !runnable(postgresBinary(name))).map((name) => `${name} (PostgreSQL's server programs)`),
    ...['redis-server', 'redis-cli'].filter((name) => !runnable(name)),
  ];
  // initdb refuses to run as root: then the test clusters belong to the postgres user (postgres-server.ts).
  if (process.getuid?.() === 0) {
    if (!runnable('runuser')) missing.push('runuser (to run initdb and pg_ctl as postgres)');
    if (!userExists('postgres')) missing.push('a user named postgres (to run initdb and pg_ctl as root)');
  }
  if (missing.length > 0) {
    throw new Error(
      `this machine lacks what the tests need to run PostgreSQL and Redis servers of their own: ${missing.join(', ')}. ` +
        'Install them (on Debian: apt-get install postgresql redis-server) and run the tests again.',
    );
  }
}
