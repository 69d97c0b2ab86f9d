// Kubernetes-style conditions (apimachinery meta.SetStatusCondition): lastTransitionTime moves
// only when status flips; reason and message follow the latest observation without moving it.
import type { Condition } from "./types.ts";

export type ConditionUpdate = Omit<Condition, "lastTransitionTime">;

/**
 * Returns a new array with `next` set: replaced in place when a condition of that type exists
 * (keeping its lastTransitionTime unless the status changed), appended otherwise.
 * `now` is an ISO 8601 timestamp supplied by the caller (the core reads no clock).
 */
export function setCondition(conditions: readonly Condition[], next: ConditionUpdate, now: string): Condition[] {
  const index = conditions.findIndex((condition) => condition.type === next.type);
  const existing = conditions[index];
  if (existing === undefined) return [...conditions, { ...next, lastTransitionTime: now }];
  const lastTransitionTime = existing.status === next.status ? existing.lastTransitionTime : now;
  const updated = [...conditions];
  updated[index] = { ...next, lastTransitionTime };
  return updated;
}

export function findCondition(conditions: readonly Condition[], type: string): Condition | undefined {
  return conditions.find((condition) => condition.type === type);
}

/** Returns a new array without the condition of that type (unchanged copy when absent). */
export function removeCondition(conditions: readonly Condition[], type: string): Condition[] {
  return conditions.filter((condition) => condition.type !== type);
}
