import type { Request } from 'express';

/** RapidPro's flow simulator sends `X-Mailroom-Mode: simulation`: validate and answer, store and send nothing. */
export function isSimulation(req: Request): boolean {
  return req.get('x-mailroom-mode')?.trim().toLowerCase() === 'simulation';
}
