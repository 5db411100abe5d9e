import { execFile } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { chromium, type Browser } from 'playwright-core';

const execFileAsync = promisify(execFile);
const ROOT = path.join(__dirname, '..', '..');

/** Debian's Chromium (`apt-get install chromium`), used where it is installed. */
const DEBIAN_CHROMIUM = '/usr/bin/chromium';
/**
 * For either browser. Not @sparticuz/chromium's own flags for serverless platforms: those turn web
 * security off (--disable-web-security, --allow-running-insecure-content), which the pages are tested under.
 */
const ARGS = ['--no-sandbox', '--disable-background-networking', '--disable-gpu', '--no-first-run', '--disable-component-update', '--disable-sync'];

/** Run as an ES module in a child (the package is ESM-only): unpacks the browser into TMPDIR. */
const UNPACK = "import chromium from '@sparticuz/chromium'; await chromium.executablePath();";

interface PackagedChromium {
  executable: string;
  /** A fontconfig file naming the fonts that come with it. */
  fontconfig: string;
}

/**
 * The Chromium that @sparticuz/chromium ships inside its npm package (so `npm ci` installs it), unpacked
 * once per version into a folder of the temporary folder. It unpacks into TMPDIR; here into a folder of
 * this process's own, renamed into place once complete, so that a run at the same time never starts a
 * half-written browser and one stopped halfway leaves nothing that looks complete.
 */
async function packagedChromium(): Promise<PackagedChromium> {
  const { version } = JSON.parse(fs.readFileSync(path.join(ROOT, 'node_modules', '@sparticuz', 'chromium', 'package.json'), 'utf8')) as { version: string };
  const dir = path.join(os.tmpdir(), `companion-chromium-${version}`);
  const packaged = { executable: path.join(dir, 'chromium'), fontconfig: path.join(dir, 'fonts.conf') };
  if (fs.existsSync(dir)) return packaged;
  const scratch = fs.mkdtempSync(`${dir}-`);
  try {
    await execFileAsync(process.execPath, ['--input-type=module', '-e', UNPACK], { cwd: ROOT, env: { ...process.env, TMPDIR: scratch }, timeout: 120_000 });
    // Its own fonts.conf names /tmp/fonts; these fonts are in dir/fonts/fonts.
    fs.writeFileSync(
      path.join(scratch, 'fonts.conf'),
      `<?xml version="1.0"?>\n<!DOCTYPE fontconfig SYSTEM "fonts.dtd">\n<fontconfig><dir>${dir}/fonts/fonts</dir><cachedir>${dir}/fonts-cache</cachedir></fontconfig>\n`,
    );
    try {
      fs.renameSync(scratch, dir);
    } catch (error) {
      if (!fs.existsSync(dir)) throw error; // else a run at the same time was first: its copy is as good
    }
    return packaged;
  } finally {
    fs.rmSync(scratch, { recursive: true, force: true });
  }
}

/**
 * A headless Chromium for the browser tests, never a downloaded build: TEST_CHROMIUM when set (the path
 * of a Chromium, or `packaged`), else Debian's where installed, else the one @sparticuz/chromium ships.
 * Fails, never skips, when there is none.
 */
export async function launchChromium(): Promise<Browser> {
  const choice = process.env.TEST_CHROMIUM || (fs.existsSync(DEBIAN_CHROMIUM) ? DEBIAN_CHROMIUM : 'packaged');
  if (choice !== 'packaged') {
    if (!fs.existsSync(choice)) throw new Error(`no Chromium at ${choice} (TEST_CHROMIUM)`);
    return chromium.launch({ executablePath: choice, args: ARGS, headless: true });
  }
  let packaged: PackagedChromium;
  try {
    packaged = await packagedChromium();
  } catch (error) {
    throw new Error(
      `no Chromium for the browser tests: ${DEBIAN_CHROMIUM} is not installed, and the one in the npm package @sparticuz/chromium ` +
        `could not be unpacked (npm ci installs it): ${(error as Error).message}`,
      { cause: error },
    );
  }
  return chromium.launch({ executablePath: packaged.executable, args: ARGS, headless: true, env: { ...process.env, FONTCONFIG_FILE: packaged.fontconfig } });
}
