// The command line (SPEC §5): commander definitions, help text, and turning what was typed into
// typed options. No effects here: each action hands its options to the command's run function.
import { SSH2_VERSION, TUNNELCTL_VERSION } from "../version.ts";
import { Command, Option } from "commander";
import type { DemoOptions } from "./demo.ts";
import type { DiffOptions } from "./diff.ts";
import type { CliOutput } from "./exit-codes.ts";
import type { GetOptions } from "./get.ts";
import {
  durationOption,
  parseListenAddress,
  parseHandshakeLimit,
  parseLogLevel,
  parseOutputFormat,
  parseSelector,
  type LogLevel,
  type OutputFormat,
} from "./options.ts";
import type { RunOptions } from "./run.ts";
import type { ValidateOptions } from "./validate.ts";

/** What a command does once its options are parsed; the run functions are passed in by main. */
export interface CommandHandlers {
  run(options: RunOptions): Promise<number>;
  validate(options: ValidateOptions): Promise<number>;
  get(options: GetOptions): Promise<number>;
  schema(): Promise<number>;
  diff(options: DiffOptions): Promise<number>;
  demo(options: DemoOptions): Promise<number>;
}

const DEFAULT_DIR = "./manifests";

/** Builds the program; the exit code of the command that ran is passed to `done`. */
export function buildProgram(handlers: CommandHandlers, output: CliOutput, done: (code: number) => void): Command {
  const program = new Command("tunnelctl")
    .description("Keep SSH port forwards converged to YAML manifests.")
    .version(TUNNELCTL_VERSION, "-V, --version", "print the version")
    .helpOption("-h, --help", "show help")
    .configureOutput({ writeOut: output.out, writeErr: output.err })
    .showHelpAfterError("(add --help for usage)")
    .exitOverride();
  program.addHelpText(
    "after",
    `
Exit codes: 0 ok, 1 invalid input or failed check, 2 usage error.
Try it with nothing else installed: tunnelctl demo`,
  );

  program
    .command("run")
    .description("watch DIR and keep one SSH session per manifest, with its forwards, until SIGINT/SIGTERM")
    .argument("[dir]", "manifest directory (*.yaml, *.yml, recursively)", DEFAULT_DIR)
    .option("--status-dir <dir>", "write status files under this directory (same relative paths) instead of beside the manifests")
    .option("--selector <k=v[,k=v]>", "only manage tunnels whose labels match all of these; repeatable", parseSelector)
    .addOption(new Option("--resync <duration>", "compare actual with desired state and repair this often").argParser(durationOption(1000)).default(30_000, "30s"))
    .addOption(
      new Option("--status-interval <duration>", "refresh traffic counters in status files at most this often")
        .argParser(durationOption(100))
        .default(10_000, "10s"),
    )
    .addOption(new Option("--log-level <level>", "fatal, error, warn, info, debug, trace or silent").argParser(parseLogLevel).default("info"))
    .option("--metrics-address <host:port>", "serve Prometheus /metrics, /healthz and /readyz on this address (e.g. 127.0.0.1:9464)", parseListenAddress)
    .addOption(
      new Option("--handshakes-per-server <n>", "SSH handshakes under way at once per server at most; lowered while a server drops them")
        .argParser(parseHandshakeLimit)
        .default(8),
    )
    .addHelpText(
      "after",
      `
Logs are JSON lines on stdout (human-readable when stdout is a terminal).
Signals: SIGTERM/SIGINT stop cleanly within 5 s (a second one exits at once); SIGHUP forces a resync.

Examples:
  tunnelctl run /etc/tunnelctl/manifests
  tunnelctl run ./manifests --status-dir /var/lib/tunnelctl --selector env=prod,team=db`,
    )
    .action(async (dir: string, opts: RawRunOptions) => {
      done(
        await handlers.run({
          dir,
          statusDir: opts.statusDir,
          selector: opts.selector,
          resyncMs: opts.resync,
          statusIntervalMs: opts.statusInterval,
          logLevel: opts.logLevel,
          metricsAddress: opts.metricsAddress,
          handshakesPerServer: opts.handshakesPerServer,
        }),
      );
    });

  program
    .command("validate")
    .description("check manifests: schema, then tunnel names and local ports across all files")
    .argument("<path...>", "manifest files, or directories to search for *.yaml and *.yml")
    .addHelpText(
      "after",
      `
Prints each problem as file:line:column: message (one per line, on stdout) and exits 1
if there is any; otherwise prints a summary and exits 0.

Examples:
  tunnelctl validate ./manifests
  tunnelctl validate db.yaml cache.yaml`,
    )
    .action(async (paths: string[]) => done(await handlers.validate({ paths })));

  program
    .command("get")
    .description("show tunnels and their state, from the status files the controller writes")
    .argument("[dir]", "manifest directory", DEFAULT_DIR)
    .option("--status-dir <dir>", "read status files from here (as given to tunnelctl run --status-dir)")
    .option("-o, --output <format>", "wide (more columns and one row per forward), yaml or json", parseOutputFormat)
    .option("-w, --watch", "keep running: show the table again whenever a status file changes (Ctrl-C stops)")
    .addHelpText(
      "after",
      `
Columns: NAME, PHASE (Pending, Ready, Degraded, Failed, Invalid, Suspended, Stopped; Unknown
when no running controller has confirmed the status for 3 of its confirm intervals), SESSION,
FORWARDS (active/total), AGE (of the SSH session) and MESSAGE (what needs attention).`,
    )
    .action(async (dir: string, opts: RawGetOptions) =>
      done(await handlers.get({ dir, statusDir: opts.statusDir, output: opts.output ?? "table", watch: opts.watch === true })),
    );

  program
    .command("diff")
    .description("show what `run` would do if DIR were the manifests it watches; never connects")
    .argument("[dir]", "manifest directory (e.g. the checkout of a pull request)", DEFAULT_DIR)
    .option("--against <dir>", "compare with this manifest directory instead of the running state (e.g. the base branch)")
    .option("--status-dir <dir>", "the running controller's status files (as given to tunnelctl run --status-dir); default: beside the manifests")
    .addOption(new Option("-o, --output <format>", "text or json").choices(["text", "json"]).default("text"))
    .addHelpText(
      "after",
      `
Per tunnel: create, update or delete, with the actions the controller would take (open, update
or close forwards, open, replace or close the session), exactly what its reconciler plans.
Without --against the running state comes from the status files; with it, DIR is compared with
OTHERDIR as if OTHERDIR were running.

Exit codes (as kubectl diff): 0 no changes, 1 changes, 2 errors (a manifest that does not
validate is printed as file:line:column: message).

Examples:
  tunnelctl diff ./manifests --status-dir /var/lib/tunnelctl
  tunnelctl diff head/manifests --against base/manifests -o json`,
    )
    .action(async (dir: string, opts: { against?: string; statusDir?: string; output: "text" | "json" }) =>
      done(await handlers.diff({ dir, against: opts.against, statusDir: opts.statusDir, output: opts.output })),
    );

  program
    .command("version")
    .description("print the version of tunnelctl, and of Node.js and ssh2 under it")
    .action(() => {
      output.out(`tunnelctl ${TUNNELCTL_VERSION} (Node.js ${process.version}, ssh2 ${SSH2_VERSION})\n`);
      done(0);
    });

  program
    .command("schema")
    .description("print the JSON Schema of Tunnel manifests (for editors and CI)")
    .action(async () => done(await handlers.schema()));

  program
    .command("demo")
    .description("run an embedded SSH server, an echo service and a tunnel on 127.0.0.1: nothing else needed")
    .option("--dir <dir>", "where to write the demo manifest and client key (reused if it exists)", "./demo")
    .addHelpText(
      "after",
      `
Writes DIR/demo.yaml and DIR/client_ed25519, starts the controller on DIR and reprints
the status table when it changes. Edit DIR/demo.yaml while it runs. Ctrl-C to stop.`,
    )
    .action(async (opts: { dir: string }) => done(await handlers.demo({ dir: opts.dir })));

  return program;
}

interface RawRunOptions {
  handshakesPerServer: number;
  statusDir?: string;
  selector?: Record<string, string>;
  resync: number;
  statusInterval: number;
  logLevel: LogLevel;
  metricsAddress?: string;
}

interface RawGetOptions {
  statusDir?: string;
  output?: OutputFormat;
  watch?: boolean;
}


