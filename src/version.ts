// Versions for `tunnelctl --version` and tunnelctl_build_info: read from the package files, so
// they never drift from what is installed (src/ and dist/ both sit two levels below the root).
import { createRequire } from "node:module";

const require = createRequire(import.meta.url);

function versionOf(specifier: string): string {
  try {
    return (require(specifier) as { version?: string }).version ?? "unknown";
  } catch {
    return "unknown";
  }
}

export const TUNNELCTL_VERSION = versionOf("../package.json");
export const SSH2_VERSION = versionOf("ssh2/package.json");
