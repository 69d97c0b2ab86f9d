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

// ssh2 1.17's generateKeyPairSync("ed25519") strips every leading zero byte of the public key, so
// one key in 256 comes out with a 31-byte public key that neither ssh2 nor OpenSSH accepts
// (mscdex/ssh2#1390, open). Such a pair is thrown away and another drawn: eight bad draws in a row
// happen once in 256^8.
const KEYGEN_ATTEMPTS = 8;

export function generateKeyPair(comment: string): KeyPair {
  for (let attempt = 0; attempt < KEYGEN_ATTEMPTS; attempt++) {
    const pair = utils.generateKeyPairSync("ed25519", { comment });
    if (isUsablePair(pair.private, pair.public)) return { privateKey: pair.private, publicKey: pair.public };
  }
  throw new Error(`ssh2 produced ${KEYGEN_ATTEMPTS} malformed ed25519 key pairs in a row`);
}

/** Both halves parse, and the private key's public half is the public key. */
function isUsablePair(privateKey: string, publicKey: string): boolean {
  const priv = utils.parseKey(privateKey);
  const pub = utils.parseKey(publicKey);
  if (priv instanceof Error || pub instanceof Error) return false;
  return priv.getPublicSSH().equals(pub.getPublicSSH());
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
