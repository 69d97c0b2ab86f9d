// The pure core: forward identity, plan, conditions, backoff, phase. No I/O, clock or randomness.
export type * from "./types.ts";
export {
  compareForwardKeys,
  describeForwardId,
  formatHostPort,
  localForwardId,
  remoteForwardId,
  sessionKey,
} from "./forward-id.ts";
export { DuplicateForwardError, plan } from "./plan.ts";
export { findCondition, removeCondition, setCondition, type ConditionUpdate } from "./conditions.ts";
export { Backoff, backoffDelay } from "./backoff.ts";
export {
  CONNECTED_CONDITION,
  READY_CONDITION,
  computeConnectedCondition,
  computePhase,
  describeForwardProblem,
  type ForwardHealth,
  type PhaseInput,
  type PhaseResult,
  type SessionHealth,
} from "./phase.ts";
