// Exit codes (SPEC §5): 0 ok, 1 invalid input or a failed check, 2 usage error.
export const EXIT_OK = 0;
export const EXIT_INVALID = 1;
export const EXIT_USAGE = 2;

/** What each command writes to; main() passes the process streams, tests may pass their own. */
export interface CliOutput {
  out(text: string): void;
  err(text: string): void;
}

export const processOutput: CliOutput = {
  out: (text) => void process.stdout.write(text),
  err: (text) => void process.stderr.write(text),
};
