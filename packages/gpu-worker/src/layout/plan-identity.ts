import type { RetrievePlan, StorePlan } from '../api.js';
import { checkInt, describe, KvValidationError } from './validation-error.js';

/** The fields that name an operation in events and results. */
export interface PlanIdentity {
  readonly opId: number;
  readonly sessionId: string;
  readonly workerId: number | undefined;
  readonly instanceId: string;
  readonly modelName: string;
  readonly engineId: string;
}

/**
 * Best-effort identity for events, even for a malformed plan: END must be published for every
 * operation the caller announced with SUBMITTED, so this never throws.
 */
export function planIdentity(plan: StorePlan | RetrievePlan): PlanIdentity {
  const p = (plan ?? {}) as Partial<StorePlan>;
  return {
    opId: typeof p.opId === 'number' && Number.isInteger(p.opId) && p.opId >= 0 ? p.opId >>> 0 : 0,
    sessionId: typeof p.sessionId === 'string' ? p.sessionId : '',
    workerId:
      typeof p.workerId === 'number' && Number.isInteger(p.workerId) && p.workerId >= 0 ? p.workerId >>> 0 : undefined,
    instanceId: typeof p.instanceId === 'string' ? p.instanceId : '',
    modelName: typeof p.modelName === 'string' ? p.modelName : '',
    engineId: typeof p.engineId === 'string' ? p.engineId : '',
  };
}

/** Strict check of the identity fields (after {@link planIdentity} made them publishable). */
export function checkPlanIdentity(plan: StorePlan | RetrievePlan): void {
  if (plan === null || typeof plan !== 'object')
    throw new KvValidationError('plan', `expected an object, got ${describe(plan)}`);
  checkInt('opId', plan.opId, 0, 0xffffffff);
  if (plan.workerId !== undefined) checkInt('workerId', plan.workerId, 0, 0xffffffff);
  for (const field of ['instanceId', 'sessionId', 'modelName', 'engineId'] as const) {
    if (typeof plan[field] !== 'string')
      throw new KvValidationError(field, `must be a string, got ${describe(plan[field])}`);
  }
}
