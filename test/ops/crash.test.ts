import { startCompanion } from '../helpers/process';

describe('a crash', () => {
  it.each([
    ['uncaught exception', 'throw new Error("deliberate crash")'],
    ['unhandled promise rejection', 'Promise.reject(new Error("deliberate crash"))'],
  ])('(%s) is logged as one fatal JSON line, and the process exits 1', async (msg, fault) => {
    // Loaded before the companion: the signal stands for a bug striking the running process.
    const preload = `process.on("SIGUSR2", () => { ${fault}; })`;
    const server = startCompanion(['serve', '--role', 'web'], { NODE_OPTIONS: `--import=data:text/javascript,${encodeURIComponent(preload)}` });
    await server.listening;
    server.child.kill('SIGUSR2');
    expect(await server.exited).toBe(1);
    // Every line is JSON (no bare stack trace), and the last says what happened.
    const lines = server.output().trimEnd().split('\n').map((line) => JSON.parse(line) as unknown);
    expect(lines.at(-1)).toMatchObject({
      level: 'fatal',
      msg,
      err: { type: 'Error', message: 'deliberate crash', stack: expect.stringContaining('deliberate crash') },
    });
  });
});
