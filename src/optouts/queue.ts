import { jobIdOf, type RowKind } from '../jobs/queue';

/** Opt-outs' jobs: src/jobs holds the queue, the worker and the reconciler they run on. */
export const OPTOUT_JOBS: RowKind = { queueName: 'optouts', jobIdPrefix: 'optout', label: 'opt-out' };

export const jobIdFor = (optoutId: string) => jobIdOf(OPTOUT_JOBS, optoutId);
