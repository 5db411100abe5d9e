/**
 * What `work` resolves to, or undefined when it fails or takes longer than `timeoutMs`. The work is
 * not cancelled: whatever it comes to later is ignored. For reads of something that may be away at
 * any moment (Redis, PostgreSQL) that must not hold up the answer that needs them.
 */
export async function resultWithin<T>(work: () => Promise<T>, timeoutMs: number): Promise<{ value: T } | undefined> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<undefined>((resolve) => {
    timer = setTimeout(() => resolve(undefined), timeoutMs);
  });
  try {
    return await Promise.race([work().then((value) => ({ value })), timeout]);
  } catch {
    return undefined;
  } finally {
    clearTimeout(timer);
  }
}
