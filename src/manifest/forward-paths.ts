// Where forwards.local[i] of a normalised spec was written: dynamic forwards are kept in the
// local list (one port space), after the manifest's own local forwards. Pure.
import type { FieldPath } from "./field-path.ts";
import type { TunnelSpec } from "./types.ts";

/** ["spec", "forwards", "local", 2] or ["spec", "forwards", "dynamic", 0]. */
export function localForwardPath(spec: TunnelSpec, index: number): FieldPath {
  const firstDynamic = spec.forwards.local.findIndex((f) => f.socks !== undefined);
  return firstDynamic >= 0 && index >= firstDynamic ? ["spec", "forwards", "dynamic", index - firstDynamic] : ["spec", "forwards", "local", index];
}

/** `spec.forwards.local[2]` / `spec.forwards.dynamic[0]`. */
export function localForwardName(spec: TunnelSpec, index: number): string {
  const [, , kind, i] = localForwardPath(spec, index);
  return `spec.forwards.${String(kind)}[${String(i)}]`;
}
