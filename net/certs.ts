/**
 * The server's TLS key and certificate: made on first start (an ECDSA P-256 key, and a
 * self-signed v3 certificate for the machine's names and addresses, valid for years), kept in two
 * files, and made again from the same key when the certificate is missing, expired or names
 * addresses the machine no longer has. People recognise the server by the fingerprint of its
 * public key (the SHA-256 of its SubjectPublicKeyInfo, shown as OpenSSH shows key fingerprints),
 * not of its certificate, so a renewed certificate changes nothing for them.
 *
 * The certificate is made with `npm:@peculiar/x509` on WebCrypto (no hand-written ASN.1, no
 * `openssl`). rustls refuses a CA certificate as a server's (`CaUsedAsEndEntity`), so it is marked
 * `CA:FALSE`, for server authentication, with subjectAltName entries.
 *
 * @module
 */

// The x509 library resolves its parts with tsyringe, which needs the reflect polyfill first.
import "reflect-metadata";
import * as x509 from "@peculiar/x509";
import { createPrivateKey, createPublicKey } from "node:crypto";
import { fail, ok, type Result } from "../protocol.ts";
import { errorText } from "./conn.ts";
import { fingerprintOf } from "./tls.ts";

export { fingerprintOf };

x509.cryptoProvider.set(crypto);

/** The key algorithm: ECDSA on P-256, signing with SHA-256. */
const ALGORITHM = { name: "ECDSA", namedCurve: "P-256", hash: "SHA-256" } as const;
/** How long a made certificate is valid, in years. */
export const CERTIFICATE_YEARS = 10;
/** How long before its end a certificate is made again, in milliseconds (30 days). */
const RENEW_BEFORE_MS = 30 * 24 * 60 * 60 * 1000;

/** A server's TLS credentials, as PEM, and what people know it by. */
export interface ServerCertificate {
  /** The certificate (chain), PEM. */
  certPem: string;
  /** The private key, PKCS#8 PEM. */
  keyPem: string;
  /** `SHA256:` and the base64 SHA-256 of the public key's SubjectPublicKeyInfo. */
  fingerprint: string;
  /** When the certificate stops being valid. */
  notAfter: Date;
  /** The names and addresses it is for. */
  names: string[];
}

/** Where a made key and certificate are kept. */
export interface CertificatePaths {
  key: string;
  cert: string;
}

/** What {@linkcode loadOrMakeCertificate} did. */
export type CertificateOrigin = "made" | "renewed" | "loaded";

/** The names and addresses a certificate is made for. */
export interface CertificateNames {
  /** Host names (`localhost`, the machine's name). */
  dns: string[];
  /** IPv4 and IPv6 addresses. */
  ips: string[];
}

/**
 * `SHA256:` and the base64 SHA-256 of a certificate's SubjectPublicKeyInfo: the server's
 * identity, the same for every certificate made for the same key.
 */
export function spkiFingerprint(cert: x509.X509Certificate | string): Promise<string> {
  const parsed = typeof cert === "string" ? new x509.X509Certificate(cert) : cert;
  return fingerprintOf(parsed.publicKey.rawData);
}

/**
 * Makes a certificate for `names`, with a new key, or with `keys` (renewal keeps the key and so
 * the fingerprint).
 */
export async function makeCertificate(
  names: CertificateNames,
  keys?: CryptoKeyPair,
): Promise<ServerCertificate> {
  const pair = keys ??
    await crypto.subtle.generateKey(ALGORITHM, true, ["sign", "verify"]) as CryptoKeyPair;
  const now = Date.now();
  const notAfter = new Date(now + CERTIFICATE_YEARS * 365.25 * 24 * 60 * 60 * 1000);
  const serial = crypto.getRandomValues(new Uint8Array(16));
  serial[0]! &= 0x7f; // a positive number
  const cert = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: [...serial].map((b) => b.toString(16).padStart(2, "0")).join(""),
    name: `CN=${names.dns[0] ?? "chat"}`,
    notBefore: new Date(now - 60_000), // a clock a minute behind still accepts it
    notAfter,
    signingAlgorithm: ALGORITHM,
    keys: pair,
    extensions: [
      new x509.BasicConstraintsExtension(false, undefined, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature, true),
      new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.serverAuth]),
      new x509.SubjectAlternativeNameExtension([
        ...names.dns.map((value) => ({ type: "dns" as const, value })),
        ...names.ips.map((value) => ({ type: "ip" as const, value })),
      ]),
    ],
  });
  const pkcs8 = await crypto.subtle.exportKey("pkcs8", pair.privateKey);
  return {
    certPem: cert.toString("pem"),
    keyPem: x509.PemConverter.encode(pkcs8, "PRIVATE KEY"),
    fingerprint: await spkiFingerprint(cert),
    notAfter,
    names: [...names.dns, ...names.ips],
  };
}

/**
 * The server's certificate from `paths`: the key and certificate kept there; a new certificate
 * for the kept key when the certificate is missing, ends within 30 days, or lacks one of
 * `names`; or, the first time, a new key and certificate, written there (the key readable by
 * this user only, mode 0600).
 * @returns an error when the files cannot be read or written, or hold no usable key.
 */
export async function loadOrMakeCertificate(
  paths: CertificatePaths,
  names: CertificateNames,
): Promise<Result<{ certificate: ServerCertificate; origin: CertificateOrigin }>> {
  let keyPem: string;
  try {
    keyPem = await Deno.readTextFile(paths.key);
  } catch (error) {
    if (!(error instanceof Deno.errors.NotFound)) {
      return fail(`Cannot read the TLS key ${paths.key}: ${errorText(error)}`);
    }
    const certificate = await makeCertificate(names);
    const written = await writeCertificate(paths, certificate, { key: true });
    return written.ok ? ok({ certificate, origin: "made" }) : written;
  }
  const keys = await importKeyPair(keyPem);
  if (!keys.ok) return fail(`The TLS key ${paths.key} is not usable: ${keys.error}`);
  const kept = await readKeptCertificate(paths.cert, keyPem);
  if (kept && usable(kept, names)) return ok({ certificate: kept, origin: "loaded" });
  const certificate = await makeCertificate(names, keys.value);
  const written = await writeCertificate(paths, certificate, { key: false });
  return written.ok ? ok({ certificate, origin: "renewed" }) : written;
}

/**
 * A certificate and key from PEM files (from a public CA, say), checked to belong together.
 * @returns an error that names the file at fault.
 */
export async function loadCertificateFiles(
  certPath: string,
  keyPath: string,
): Promise<Result<ServerCertificate>> {
  let certPem: string, keyPem: string;
  try {
    certPem = await Deno.readTextFile(certPath);
  } catch (error) {
    return fail(`Cannot read the certificate ${certPath}: ${errorText(error)}`);
  }
  try {
    keyPem = await Deno.readTextFile(keyPath);
  } catch (error) {
    return fail(`Cannot read the key ${keyPath}: ${errorText(error)}`);
  }
  let leaf: x509.X509Certificate;
  try {
    leaf = new x509.X509Certificate(firstPem(certPem));
  } catch (error) {
    return fail(`${certPath} holds no certificate in PEM: ${errorText(error)}`);
  }
  // The key's public half (RSA, EC or Ed25519; PKCS#8, PKCS#1 or SEC1) must be the certificate's.
  let keySpki: Uint8Array;
  try {
    keySpki = new Uint8Array(
      createPublicKey(createPrivateKey(keyPem)).export({ type: "spki", format: "der" }),
    );
  } catch (error) {
    return fail(`${keyPath} holds no private key in PEM: ${errorText(error)}`);
  }
  const fingerprint = await spkiFingerprint(leaf);
  if (await fingerprintOf(keySpki) !== fingerprint) {
    return fail(`The key ${keyPath} does not belong to the certificate ${certPath}`);
  }
  return ok({
    certPem,
    keyPem,
    fingerprint,
    notAfter: leaf.notAfter,
    names: leaf.getExtension(x509.SubjectAlternativeNameExtension)?.names.toJSON()
      .map((n) => n.value) ?? [],
  });
}

/** The first PEM block of a chain: the server's own certificate. */
function firstPem(pem: string): string {
  const end = "-----END CERTIFICATE-----";
  const at = pem.indexOf(end);
  return at === -1 ? pem : pem.slice(0, at + end.length);
}

/** Whether a kept certificate can go on: valid for 30 days more, for every name wanted. */
function usable(certificate: ServerCertificate, names: CertificateNames): boolean {
  if (certificate.notAfter.getTime() - Date.now() < RENEW_BEFORE_MS) return false;
  const has = new Set(certificate.names.map((n) => n.toLowerCase()));
  return [...names.dns, ...names.ips].every((n) => has.has(n.toLowerCase()));
}

/** The certificate kept at `path` if it is there and made for `keyPem`'s key; else `undefined`. */
async function readKeptCertificate(
  path: string,
  keyPem: string,
): Promise<ServerCertificate | undefined> {
  let certPem: string;
  try {
    certPem = await Deno.readTextFile(path);
  } catch {
    return undefined;
  }
  try {
    const cert = new x509.X509Certificate(certPem);
    const keys = await importKeyPair(keyPem);
    if (!keys.ok) return undefined;
    const spki = new Uint8Array(await crypto.subtle.exportKey("spki", keys.value.publicKey));
    const fingerprint = await spkiFingerprint(cert);
    if (fingerprint !== await fingerprintOf(spki)) return undefined;
    return {
      certPem,
      keyPem,
      fingerprint,
      notAfter: cert.notAfter,
      names: cert.getExtension(x509.SubjectAlternativeNameExtension)?.names.toJSON()
        .map((n) => n.value) ?? [],
    };
  } catch {
    return undefined;
  }
}

/** The key pair of a PKCS#8 PEM P-256 private key (its public half derived from it). */
async function importKeyPair(keyPem: string): Promise<Result<CryptoKeyPair>> {
  try {
    const der = x509.PemConverter.decodeFirst(keyPem);
    const privateKey = await crypto.subtle.importKey("pkcs8", der, ALGORITHM, true, ["sign"]);
    // The public half, from the private key's JWK (x and y are in it).
    const jwk = await crypto.subtle.exportKey("jwk", privateKey);
    const { d: _private, ...publicJwk } = jwk;
    const publicKey = await crypto.subtle.importKey(
      "jwk",
      { ...publicJwk, key_ops: ["verify"] },
      ALGORITHM,
      true,
      ["verify"],
    );
    return ok({ privateKey, publicKey });
  } catch (error) {
    return fail(`not a P-256 private key in PKCS#8 PEM (${errorText(error)})`);
  }
}

/** Writes a certificate, and (with `key`) its key, mode 0600; the key file is never replaced. */
async function writeCertificate(
  paths: CertificatePaths,
  certificate: ServerCertificate,
  options: { key: boolean },
): Promise<Result<void>> {
  try {
    if (options.key) {
      await Deno.writeTextFile(paths.key, certificate.keyPem, { mode: 0o600, createNew: true });
    }
    await Deno.writeTextFile(paths.cert, certificate.certPem, { mode: 0o644 });
    return ok(undefined);
  } catch (error) {
    return fail(
      `Cannot write the TLS key and certificate beside ${paths.key}: ${errorText(error)}`,
    );
  }
}
