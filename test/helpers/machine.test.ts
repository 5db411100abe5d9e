import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { missingPrograms } from './machine';

describe('the check of what the tests need from the machine', () => {
  it('finds everything on this machine, where the tests run', () => {
    expect(missingPrograms()).toEqual([]);
  });

  it('names every program that is missing, each once', () => {
    // A PATH with only redis-cli and id on it (no pg_config, so no PostgreSQL bindir either).
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'companion-path-'));
    try {
      for (const program of ['redis-cli', 'id']) fs.symlinkSync(execFileSync('sh', ['-c', `command -v ${program}`], { encoding: 'utf8' }).trim(), path.join(dir, program));
      const asRoot = process.getuid?.() === 0;
      expect(missingPrograms(dir)).toEqual([
        "initdb (PostgreSQL's server programs)",
        "pg_ctl (PostgreSQL's server programs)",
        "postgres (PostgreSQL's server programs)",
        'redis-server',
        ...(asRoot ? ['runuser (to run initdb and pg_ctl as postgres)'] : []),
      ]);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
