// tunnelctl's entry point: parse the command line, run one command, return its exit code.
// bin/tunnelctl.js calls main(); under tsx this file runs itself (`npm start`).
import { realpathSync } from "node:fs";
import { pathToFileURL } from "node:url";
import { CommanderError } from "commander";
import { EXIT_INVALID, EXIT_OK, EXIT_USAGE, processOutput, type CliOutput } from "./exit-codes.ts";
import { buildProgram, type CommandHandlers } from "./program.ts";

export async function main(argv: string[], output: CliOutput = processOutput): Promise<number> {
  if (output === processOutput) quietOnClosedStdout();
  // Commands load lazily: `validate` and `get` need neither ssh2 nor the controller.
  const handlers: CommandHandlers = {
    run: async (options) => (await import("./run.ts")).runRun(options, output),
    validate: async (options) => (await import("./validate.ts")).runValidate(options, output),
    get: async (options) => (await import("./get.ts")).runGet(options, output),
    schema: async () => (await import("./schema.ts")).runSchema(output),
    diff: async (options) => (await import("./diff.ts")).runDiff(options, output),
    demo: async (options) => (await import("./demo.ts")).runDemo(options, output),
  };
  let code = EXIT_OK;
  const program = buildProgram(handlers, output, (result) => (code = result));
  try {
    await program.parseAsync(argv, { from: "user" });
    return code;
  } catch (err) {
    // --help and --version end with exit code 0; every other commander error is a usage error.
    if (err instanceof CommanderError) return err.exitCode === 0 ? EXIT_OK : EXIT_USAGE;
    output.err(`tunnelctl: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
    return EXIT_INVALID;
  }
}

/** `tunnelctl get | head`: once the reader is gone, stop quietly instead of crashing on EPIPE. */
let stdoutGuarded = false;
function quietOnClosedStdout(): void {
  if (stdoutGuarded) return;
  stdoutGuarded = true;
  process.stdout.on("error", (err: NodeJS.ErrnoException) => {
    if (err.code !== "EPIPE") throw err;
    process.exit(process.exitCode ?? EXIT_OK);
  });
}

function isEntryModule(): boolean {
  const script = process.argv[1];
  if (script === undefined) return false;
  try {
    return import.meta.url === pathToFileURL(realpathSync(script)).href;
  } catch {
    return false;
  }
}

if (isEntryModule()) {
  main(process.argv.slice(2)).then((code) => {
    process.exitCode = code;
  });
}
