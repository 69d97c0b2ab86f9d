// Host key checking the way OpenSSH does it: known_hosts (plain, hashed |1| entries, [host]:port,
// wildcards, negation, @revoked) plus optional SHA256 fingerprint pins.
import { createHash, createHmac } from "node:crypto";
import { appendFile, mkdir, readFile } from "node:fs/promises";
import { dirname } from "node:path";
import { HostKeyError } from "./errors.ts";

export type HostKeyPolicy = "strict" | "accept-new" | "insecure-accept-any";

export interface HostKeyOptions {
  knownHostsFile?: string | undefined;
  fingerprints?: string[] | undefined;
  policy?: HostKeyPolicy | undefined;
}

export interface HostKeyVerdict {
  ok: boolean;
  fingerprint: string;
  error?: HostKeyError;
  /** accept-new: the line to append to known_hosts once the handshake has succeeded. */
  learn?: string;
}

interface KnownHostEntry {
  marker: "" | "@revoked" | "@cert-authority";
  patterns: string; // raw host field
  keyType: string;
  keyBlob: Buffer;
}

/** SHA256 fingerprint as `ssh-keygen -l` prints it: base64 without padding. */
export function fingerprintOf(keyBlob: Buffer): string {
  return `SHA256:${createHash("sha256").update(keyBlob).digest("base64").replace(/=+$/, "")}`;
}

/** The key type name inside an SSH public key blob (first string). */
export function keyTypeOf(keyBlob: Buffer): string {
  if (keyBlob.length < 4) return "";
  const len = keyBlob.readUInt32BE(0);
  return keyBlob.subarray(4, 4 + len).toString("latin1");
}

/** The name known_hosts uses for a host: `host` on port 22, `[host]:port` otherwise. */
export function knownHostName(host: string, port: number): string {
  return port === 22 ? host : `[${host}]:${port}`;
}

export function parseKnownHosts(text: string): KnownHostEntry[] {
  const entries: KnownHostEntry[] = [];
  for (const raw of text.split("\n")) {
    const line = raw.trim();
    if (line === "" || line.startsWith("#")) continue;
    const fields = line.split(/\s+/);
    let marker: KnownHostEntry["marker"] = "";
    if (fields[0] === "@revoked" || fields[0] === "@cert-authority") marker = fields.shift() as KnownHostEntry["marker"];
    const [patterns, keyType, keyB64] = fields;
    if (!patterns || !keyType || !keyB64) continue;
    entries.push({ marker, patterns, keyType, keyBlob: Buffer.from(keyB64, "base64") });
  }
  return entries;
}

function globToRegExp(glob: string): RegExp {
  const escaped = glob.replace(/[.+^${}()|[\]\\]/g, "\\$&").replace(/\*/g, ".*").replace(/\?/g, ".");
  return new RegExp(`^${escaped}$`, "i");
}

function hashedMatches(pattern: string, name: string): boolean {
  // |1|base64(salt)|base64(HMAC-SHA1(salt, name))
  const [, kind, salt, hash] = pattern.split("|");
  if (kind !== "1" || !salt || !hash) return false;
  const digest = createHmac("sha1", Buffer.from(salt, "base64")).update(name).digest("base64");
  return digest === hash;
}

/** Does the host field of a known_hosts line match `name` (already in [host]:port form)? */
export function hostFieldMatches(field: string, name: string): boolean {
  if (field.startsWith("|")) return hashedMatches(field, name);
  let matched = false;
  for (const pattern of field.split(",")) {
    if (pattern.startsWith("!")) {
      if (globToRegExp(pattern.slice(1)).test(name)) return false;
    } else if (globToRegExp(pattern).test(name)) {
      matched = true;
    }
  }
  return matched;
}

/**
 * Decide whether to trust a host key. Pure apart from reading known_hosts (done by the caller).
 * Pins, when given, are authoritative: the key must match one of them and known_hosts is not
 * consulted. Otherwise: a matching known_hosts entry accepts; an entry for this host with the
 * same key type but another key is a mismatch (refused under every policy but
 * insecure-accept-any); no entry is unknown (strict refuses, accept-new learns it).
 */
export function judgeHostKey(
  host: string,
  port: number,
  keyBlob: Buffer,
  /** The known_hosts file's text; undefined when the file does not exist. */
  knownHostsText: string | undefined,
  options: HostKeyOptions,
): HostKeyVerdict {
  const fingerprint = fingerprintOf(keyBlob);
  const display = knownHostName(host, port);
  const policy = options.policy ?? "strict";
  if (policy === "insecure-accept-any") return { ok: true, fingerprint };

  if (options.fingerprints && options.fingerprints.length > 0) {
    const pinned = options.fingerprints.some((pin) => pin.replace(/=+$/, "") === fingerprint);
    if (pinned) return { ok: true, fingerprint };
    return {
      ok: false,
      fingerprint,
      error: new HostKeyError(
        "HostKeyMismatch",
        display,
        fingerprint,
        `matches none of the pinned fingerprints`,
        "if the server's key changed on purpose, check the new fingerprint out of band and pin it in hostKey.fingerprints",
      ),
    };
  }

  const name = knownHostName(host, port);
  const entries = parseKnownHosts(knownHostsText ?? "").filter((e) => hostFieldMatches(e.patterns, name));
  const type = keyTypeOf(keyBlob);
  if (entries.some((e) => e.marker === "@revoked" && e.keyBlob.equals(keyBlob))) {
    return {
      ok: false,
      fingerprint,
      error: new HostKeyError("HostKeyRevoked", display, fingerprint, `is marked @revoked in ${options.knownHostsFile ?? "known_hosts"}`, "the server must present another key"),
    };
  }
  const plain = entries.filter((e) => e.marker === "");
  if (plain.some((e) => e.keyBlob.equals(keyBlob))) return { ok: true, fingerprint };
  if (plain.some((e) => e.keyType === type)) {
    return {
      ok: false,
      fingerprint,
      error: new HostKeyError(
        "HostKeyMismatch",
        display,
        fingerprint,
        `does not match ${options.knownHostsFile ?? "known_hosts"} (possible man-in-the-middle, or the host was reinstalled)`,
        `if the host was reinstalled, check the new fingerprint out of band, then remove the old entry (ssh-keygen -R "${display}" -f ${options.knownHostsFile ?? "~/.ssh/known_hosts"}) or pin the new fingerprint in hostKey.fingerprints`,
      ),
    };
  }
  if (policy === "accept-new") {
    return { ok: true, fingerprint, learn: `${name} ${type} ${keyBlob.toString("base64")}\n` };
  }
  return {
    ok: false,
    fingerprint,
    error: new HostKeyError(
      "HostKeyUnknown",
      display,
      fingerprint,
      knownHostsText === undefined
        ? `is unknown: ${options.knownHostsFile ?? "known_hosts"} does not exist (policy strict)`
        : `is not in ${options.knownHostsFile ?? "known_hosts"} (policy strict)`,
      `to trust it, check the fingerprint out of band, then pin it in hostKey.fingerprints, add the host's key to ${options.knownHostsFile ?? "known_hosts"}, or set hostKey.policy: accept-new`,
    ),
  };
}

/**
 * Key types (known_hosts names: ssh-ed25519, ecdsa-sha2-nistp256, ssh-rsa, ...) already trusted
 * for this host, to be offered first (see host-key-algorithms.ts). Pins carry no type: a pin
 * contributes the type of a known_hosts key with that fingerprint, if the file has one.
 */
export function knownKeyTypes(host: string, port: number, knownHostsText: string | undefined, options: HostKeyOptions): string[] {
  if (options.policy === "insecure-accept-any") return [];
  const entries = parseKnownHosts(knownHostsText ?? "").filter((e) => e.marker === "");
  const pins = options.fingerprints ?? [];
  const trusted =
    pins.length > 0
      ? entries.filter((e) => pins.some((pin) => pin.replace(/=+$/, "") === fingerprintOf(e.keyBlob)))
      : entries.filter((e) => hostFieldMatches(e.patterns, knownHostName(host, port)));
  return [...new Set(trusted.map((e) => e.keyType))];
}

/** The known_hosts text; undefined when there is no such file. */
export async function readKnownHosts(file: string | undefined): Promise<string | undefined> {
  if (!file) return undefined;
  try {
    return await readFile(file, "utf8");
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return undefined;
    throw err;
  }
}

export async function learnHostKey(file: string, line: string): Promise<void> {
  await mkdir(dirname(file), { recursive: true, mode: 0o700 });
  await appendFile(file, line, { mode: 0o600 });
}
