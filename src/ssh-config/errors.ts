// An ssh_config problem: names the file, the line and the directive, as an operator needs to fix it.

export class SshConfigError extends Error {
  readonly file: string;
  /** 1-based; 0 when the problem is the file as a whole. */
  readonly line: number;
  constructor(file: string, line: number, message: string, options?: { cause?: unknown }) {
    super(line > 0 ? `${file}:${line}: ${message}` : `${file}: ${message}`, options);
    this.name = "SshConfigError";
    this.file = file;
    this.line = line;
  }
}
