// What one test file starts and must stop: temp dirs, `tunnelctl run` processes, sshds, and any
// other cleanup, undone in reverse order by dispose() (call it from after()).
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { startRun, type RunningController } from "./controller.ts";
import { destroySshd, startSshd, type Sshd, type SshdOptions } from "./sshd.ts";

export class TestScope {
  private readonly cleanups: Array<() => unknown> = [];
  private readonly prefix: string;

  constructor(prefix = "tunnelctl-test-") {
    this.prefix = prefix;
  }

  /** Run `fn` at dispose(), after everything registered later. */
  readonly defer = (fn: () => unknown): void => {
    this.cleanups.push(fn);
  };

  readonly tempDir = (): string => {
    const dir = mkdtempSync(join(tmpdir(), this.prefix));
    this.defer(() => rmSync(dir, { recursive: true, force: true }));
    return dir;
  };

  /** The real `tunnelctl run` on `dir`, killed at dispose() if the test did not stop it. */
  readonly run = (dir: string, args: string[] = [], env: NodeJS.ProcessEnv = {}): RunningController => {
    const ctl = startRun(dir, args, env);
    this.defer(() => ctl.stop("SIGKILL"));
    return ctl;
  };

  readonly sshd = async (options: SshdOptions = {}): Promise<Sshd> => {
    const server = await startSshd(options);
    this.defer(() => destroySshd(server));
    return server;
  };

  async dispose(): Promise<void> {
    for (const cleanup of this.cleanups.splice(0).reverse()) await cleanup();
  }
}
