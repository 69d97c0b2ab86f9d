// Throwaway keys for the demo, made in-process so the demo needs no ssh-keygen.
import { createHash } from "node:crypto";
import type { ParsedKey } from "ssh2";
import ssh2 from "../ssh/ssh2.ts";

// ssh2 comes from src/ssh/ssh2.ts, which loads it once and exports the module as its default.
const { utils } = ssh2;

export interface KeyPair {
  /** OpenSSH private key ("-----BEGIN OPENSSH PRIVATE KEY-----"), unencrypted. */
  privateKey: string;
  /** OpenSSH public key line: "ssh-ed25519 AAAA... comment". */
  publicKey: string;
}

export interface DemoKeys {
  host: KeyPair;
  client: KeyPair;
}

export function generateKeyPair(comment: string): KeyPair {
  const pair = utils.generateKeyPairSync("ed25519", { comment });
  return { privateKey: pair.private, publicKey: pair.public };
}

export function generateDemoKeys(): DemoKeys {
  return { host: generateKeyPair("tunnelctl-demo-host"), client: generateKeyPair("tunnelctl-demo-client") };
}

/** The OpenSSH public key line of a private key (PEM or OpenSSH format, unencrypted). */
export function publicKeyOf(privateKey: string): string {
  const key = parseKeyOrThrow(privateKey, "private key");
  return `${key.type} ${key.getPublicSSH().toString("base64")}`;
}

/** "SHA256:<base64, no padding>" of the key blob, exactly as `ssh-keygen -lf` prints it. */
export function fingerprintOf(publicKeyOpenSSH: string): string {
  return fingerprintOfBlob(parseKeyOrThrow(publicKeyOpenSSH, "public key").getPublicSSH());
}

export function fingerprintOfBlob(blob: Buffer): string {
  return `SHA256:${createHash("sha256").update(blob).digest("base64").replace(/=+$/, "")}`;
}

/** ssh2's parseKey returns its Error; throw it instead. The message never contains the key itself. */
export function parseKeyOrThrow(key: string, what: string): ParsedKey {
  const parsed = utils.parseKey(key);
  if (parsed instanceof Error) throw new Error(`Cannot parse ${what}: ${parsed.message}`, { cause: parsed });
  return parsed;
}
