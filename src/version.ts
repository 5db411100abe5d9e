import fs from 'node:fs';
import path from 'node:path';

/** The package's version, read once; the same path works from src/ and from dist/. */
export const VERSION: string = (JSON.parse(fs.readFileSync(path.resolve(__dirname, '../package.json'), 'utf8')) as { version: string }).version;
