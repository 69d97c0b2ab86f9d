// The library surface: the imperative Session API and its error types.
export { connect, Session, DEFAULT_BIND_ADDRESS, DEFAULT_CONNECT_TIMEOUT_MS } from "./ssh/session.ts";
export type { ConnectOptions, DynamicForwardInput, DynamicForwardSpec, HostKeyInput, JumpHostInput, LocalForwardInput, RemoteForwardInput, RemoteForwardListing } from "./ssh/session.ts";
export type { HopInfo } from "./ssh/dial/route.ts";
export { setWindowBudget, windowBudgetUsage } from "./ssh/window/autotune.ts";
export type { LocalForwardInfo, RemoteForwardInfo } from "./ssh/forward-set.ts";
export type { ForwardCounters } from "./ssh/stats.ts";
export type { AuthOptions } from "./ssh/auth.ts";
export type { HostKeyPolicy } from "./ssh/host-key.ts";
export type { LocalForwardSpec, RemoteForwardSpec } from "./manifest/types.ts";
export {
  TunnelError,
  PortInUseError,
  BindError,
  ForwardRefusedError,
  HostKeyError,
  AuthError,
  ConnectTimeoutError,
  ConnectionError,
  ForwardNotFoundError,
  TargetError,
  CancelRefusedError,
  RequestTimeoutError,
  InvalidArgumentError,
} from "./ssh/errors.ts";
export type { TunnelErrorReason } from "./ssh/errors.ts";
