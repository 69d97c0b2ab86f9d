// Turn auth references (files, env names, agent socket) into what ssh2 needs. Secrets are read
// here, handed to ssh2 and never put into an error message or a log line.
import { createHash } from "node:crypto";
import { readFile, stat } from "node:fs/promises";
import type { ParsedKey } from "ssh2";
import ssh2 from "./ssh2.ts";
import { AuthError } from "./errors.ts";

export interface AuthOptions {
  privateKeyFile?: string | undefined;
  passphraseFile?: string | undefined;
  passphraseEnv?: string | undefined;
  agent?: boolean | string | undefined;
  passwordFile?: string | undefined;
  passwordEnv?: string | undefined;
}

export interface ResolvedAuth {
  /** Parsed and, when encrypted, already decrypted: ssh2 must not parse it again. */
  privateKey?: ParsedKey;
  agent?: string;
  password?: string;
}

/**
 * Decrypting an OpenSSH key runs bcrypt-pbkdf in JavaScript: ~300 ms with the event loop blocked
 * (every other tunnel's traffic stalls) at ssh-keygen's default 16 rounds. Parse each key file
 * content once per passphrase, not on every connect and every retry of a wrong passphrase. The
 * cache key is a hash; entries hold what an open connection holds anyway.
 */
const parsedKeys = new Map<string, ParsedKey | Error>();
const PARSED_KEYS_MAX = 64;

function parseKeyOnce(key: Buffer, passphrase: string | undefined): ParsedKey | Error {
  const hash = createHash("sha256").update(key);
  if (passphrase !== undefined) hash.update("\0passphrase\0").update(passphrase);
  const id = hash.digest("hex");
  const cached = parsedKeys.get(id);
  if (cached) return cached;
  const result = ssh2.utils.parseKey(key, passphrase);
  // ssh2 types say one key; its OpenSSH parser may return a list (of one).
  const parsed = Array.isArray(result) ? ((result as ParsedKey[])[0] ?? new Error("no key in file")) : result;
  if (parsedKeys.size >= PARSED_KEYS_MAX) parsedKeys.delete(parsedKeys.keys().next().value as string);
  parsedKeys.set(id, parsed);
  return parsed;
}

async function readSecretFile(file: string, what: string): Promise<string> {
  try {
    // A trailing newline is how every editor and `echo` saves a secret; it is never part of it.
    return (await readFile(file, "utf8")).replace(/\r?\n$/, "");
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code ?? "error";
    throw new AuthError(`Cannot read ${what} ${file}: ${code}`, { cause: err, reason: "SecretUnavailable" });
  }
}

function readSecretEnv(name: string, what: string): string {
  const value = process.env[name];
  if (value === undefined || value === "") {
    throw new AuthError(`${what} environment variable ${name} is not set`, { reason: "SecretUnavailable" });
  }
  return value;
}

/** Read and check every configured auth method; throws AuthError with a reason. */
export async function resolveAuth(auth: AuthOptions): Promise<ResolvedAuth> {
  const resolved: ResolvedAuth = {};
  if (auth.privateKeyFile) {
    const file = auth.privateKeyFile;
    let info;
    try {
      info = await stat(file);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code ?? "error";
      throw new AuthError(`Cannot read private key ${file}: ${code}`, { cause: err, reason: "KeyFileError" });
    }
    // Same rule as OpenSSH: a key others can read is refused.
    if ((info.mode & 0o077) !== 0) {
      throw new AuthError(
        `Private key ${file} is accessible by others (mode ${(info.mode & 0o777).toString(8)}); chmod 600 it`,
        { reason: "KeyFileError" },
      );
    }
    let key: Buffer;
    try {
      key = await readFile(file);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code ?? "error";
      throw new AuthError(`Cannot read private key ${file}: ${code}`, { cause: err, reason: "KeyFileError" });
    }
    let passphrase: string | undefined;
    if (auth.passphraseFile) passphrase = await readSecretFile(auth.passphraseFile, "passphrase file");
    else if (auth.passphraseEnv) passphrase = readSecretEnv(auth.passphraseEnv, "passphrase");
    // Parsed here, once, for a clear error (ssh2 would throw "Cannot parse privateKey" from connect()).
    const parsed = parseKeyOnce(key, passphrase);
    if (parsed instanceof Error) {
      const encrypted = /encrypted|passphrase|bad decrypt/i.test(parsed.message);
      throw new AuthError(
        encrypted
          ? passphrase === undefined
            ? `Private key ${file} is encrypted and no passphrase is configured`
            : `Cannot decrypt private key ${file}: wrong passphrase`
          : `Cannot parse private key ${file}: not a supported private key`,
        { reason: encrypted && passphrase !== undefined ? "PassphraseWrong" : "KeyFileError" },
      );
    }
    if (!parsed.isPrivateKey()) {
      throw new AuthError(`Cannot use ${file} as a private key: it holds a public key`, { reason: "KeyFileError" });
    }
    resolved.privateKey = parsed;
  }
  if (auth.agent) {
    const socket = auth.agent === true ? process.env.SSH_AUTH_SOCK : auth.agent;
    if (!socket) {
      throw new AuthError("agent: true but SSH_AUTH_SOCK is not set", { reason: "AgentUnavailable" });
    }
    try {
      const info = await stat(socket);
      if (!info.isSocket()) throw new Error("not a socket");
    } catch (err) {
      throw new AuthError(`SSH agent socket ${socket} is not available`, { cause: err, reason: "AgentUnavailable" });
    }
    resolved.agent = socket;
  }
  if (auth.passwordFile) resolved.password = await readSecretFile(auth.passwordFile, "password file");
  else if (auth.passwordEnv) resolved.password = readSecretEnv(auth.passwordEnv, "password");
  if (!resolved.privateKey && !resolved.agent && resolved.password === undefined) {
    throw new AuthError("No authentication method configured (privateKeyFile, agent or password)", {
      reason: "SecretUnavailable",
    });
  }
  return resolved;
}
