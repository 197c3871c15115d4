/**
 * Tests for the server's TLS key and certificate: what a made certificate holds (v3, not a CA,
 * for server authentication, the names and addresses asked for, ten years), the fingerprint of
 * its key, and the files kept between starts: made once, loaded after, renewed from the same key
 * when the certificate is missing or lacks a name, and clear errors for files that cannot be used.
 *
 * @module
 */

import "reflect-metadata";
import * as x509 from "@peculiar/x509";
import assert from "node:assert/strict";
import { createPrivateKey, X509Certificate } from "node:crypto";
import { withTempDir } from "../test_util.ts";
import {
  CERTIFICATE_YEARS,
  type CertificatePaths,
  fingerprintOf,
  loadCertificateFiles,
  loadOrMakeCertificate,
  makeCertificate,
  spkiFingerprint,
} from "./certs.ts";

const NAMES = { dns: ["localhost", "chat.lan"], ips: ["127.0.0.1", "::1", "192.168.1.20"] };
const DAY_MS = 24 * 60 * 60 * 1000;
const FINGERPRINT_REGEXP = /^SHA256:[A-Za-z0-9+/]{43}$/;

/** A key pair like the ones certificates are made with. */
async function newKeys(): Promise<CryptoKeyPair> {
  return await crypto.subtle.generateKey(
    { name: "ECDSA", namedCurve: "P-256" },
    true,
    ["sign", "verify"],
  ) as CryptoKeyPair;
}

/**
 * The version field of a DER certificate: `Certificate ::= SEQUENCE { tbsCertificate SEQUENCE {
 * [0] EXPLICIT INTEGER version ... } ... }`, where 2 means v3 (a v1 certificate leaves it out).
 */
function certificateVersion(der: Uint8Array): number {
  let at = 0;
  const header = (tag: number): number => {
    assert.equal(der[at], tag, `tag ${tag.toString(16)} at ${at}`);
    const first = der[at + 1]!;
    const lengthBytes = first & 0x80 ? first & 0x7f : 0;
    at += 2 + lengthBytes;
    return lengthBytes;
  };
  header(0x30); // Certificate
  header(0x30); // TBSCertificate
  if (der[at] !== 0xa0) return 0; // no version: v1
  header(0xa0);
  header(0x02);
  return der[at]!;
}

/** The key and certificate paths inside a folder. */
function pathsIn(dir: string): CertificatePaths {
  return { key: `${dir}/chat-key.pem`, cert: `${dir}/chat-cert.pem` };
}

// ==== makeCertificate ====

Deno.test("makeCertificate() makes a v3 end-entity certificate for server authentication", async () => {
  const made = await makeCertificate(NAMES);
  const cert = new x509.X509Certificate(made.certPem);
  assert.equal(certificateVersion(new Uint8Array(cert.rawData)), 2, "v3");
  const constraints = cert.getExtension(x509.BasicConstraintsExtension);
  assert.ok(constraints, "it has basicConstraints");
  assert.equal(constraints.ca, false, "CA:FALSE, or rustls refuses it (CaUsedAsEndEntity)");
  assert.equal(constraints.critical, true);
  assert.deepEqual(
    [...(cert.getExtension(x509.ExtendedKeyUsageExtension)?.usages ?? [])],
    [x509.ExtendedKeyUsage.serverAuth],
  );
  assert.ok(await cert.isSelfSigned(), "self-signed");
  // node:crypto reads it the same way.
  const node = new X509Certificate(made.certPem);
  assert.equal(node.ca, false);
  assert.equal(node.checkHost("chat.lan"), "chat.lan");
  assert.equal(node.checkIP("192.168.1.20"), "192.168.1.20");
});

Deno.test("makeCertificate() lists every name and address asked for in subjectAltName", async () => {
  const made = await makeCertificate(NAMES);
  const cert = new x509.X509Certificate(made.certPem);
  const names = cert.getExtension(x509.SubjectAlternativeNameExtension)?.names.toJSON();
  assert.deepEqual(names, [
    { type: "dns", value: "localhost" },
    { type: "dns", value: "chat.lan" },
    { type: "ip", value: "127.0.0.1" },
    { type: "ip", value: "::1" },
    { type: "ip", value: "192.168.1.20" },
  ]);
  assert.deepEqual(made.names, ["localhost", "chat.lan", "127.0.0.1", "::1", "192.168.1.20"]);
  assert.equal(cert.subject, "CN=localhost");
});

Deno.test("makeCertificate() makes a certificate valid from now for about ten years", async () => {
  const before = Date.now();
  const made = await makeCertificate(NAMES);
  const cert = new x509.X509Certificate(made.certPem);
  assert.equal(CERTIFICATE_YEARS, 10);
  assert.ok(cert.notBefore.getTime() <= before, "already valid");
  assert.ok(before - cert.notBefore.getTime() < 5 * 60_000, "valid from a few minutes ago");
  const years = (cert.notAfter.getTime() - before) / (365.25 * DAY_MS);
  assert.ok(years > 9.99 && years < 10.01, `${years} years`);
  // The certificate holds whole seconds; what is returned is the same moment within a second.
  assert.ok(Math.abs(cert.notAfter.getTime() - made.notAfter.getTime()) < 1000);
});

Deno.test("makeCertificate()'s fingerprint is SHA256: and the unpadded base64 SHA-256 of the SPKI", async () => {
  const made = await makeCertificate(NAMES);
  assert.match(made.fingerprint, FINGERPRINT_REGEXP);
  const spki = new X509Certificate(made.certPem).publicKey.export({ type: "spki", format: "der" });
  const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", new Uint8Array(spki)));
  const expected = `SHA256:${btoa(String.fromCharCode(...digest)).replace(/=+$/, "")}`;
  assert.equal(made.fingerprint, expected);
  assert.equal(await spkiFingerprint(made.certPem), made.fingerprint);
  assert.equal(
    await spkiFingerprint(new x509.X509Certificate(made.certPem)),
    made.fingerprint,
    "a parsed certificate too",
  );
  assert.equal(await fingerprintOf(new Uint8Array(spki)), made.fingerprint);
  assert.equal(await fingerprintOf(new Uint8Array(spki).buffer), made.fingerprint, "ArrayBuffer");
  // It is the key's fingerprint, not the certificate's.
  const certDigest = new Uint8Array(
    await crypto.subtle.digest(
      "SHA-256",
      new Uint8Array(new x509.X509Certificate(made.certPem).rawData),
    ),
  );
  assert.notEqual(made.fingerprint.slice(7), btoa(String.fromCharCode(...certDigest)));
});

Deno.test("makeCertificate() with the same keys keeps the fingerprint in a new certificate", async () => {
  const keys = await newKeys();
  const first = await makeCertificate(NAMES, keys);
  const second = await makeCertificate({ dns: ["other.lan"], ips: [] }, keys);
  assert.equal(second.fingerprint, first.fingerprint);
  assert.notEqual(second.certPem, first.certPem);
  assert.notEqual(
    new x509.X509Certificate(second.certPem).serialNumber,
    new x509.X509Certificate(first.certPem).serialNumber,
    "a new serial number",
  );
  const spki = new Uint8Array(await crypto.subtle.exportKey("spki", keys.publicKey));
  assert.equal(first.fingerprint, await fingerprintOf(spki));
  const fresh = await makeCertificate(NAMES);
  assert.notEqual(fresh.fingerprint, first.fingerprint, "a new key without keys");
});

Deno.test("makeCertificate()'s key is PKCS#8 PEM that Deno.listenTls takes", async () => {
  const made = await makeCertificate({ dns: ["localhost"], ips: ["127.0.0.1"] });
  assert.match(made.keyPem, /^-----BEGIN PRIVATE KEY-----\r?\n/);
  assert.match(made.certPem, /^-----BEGIN CERTIFICATE-----\r?\n/);
  const listener = Deno.listenTls({
    hostname: "127.0.0.1",
    port: 0,
    cert: made.certPem,
    key: made.keyPem,
  });
  listener.close();
});

// ==== loadOrMakeCertificate ====

Deno.test("loadOrMakeCertificate() makes a key (mode 0600) the first time and loads it after", async () => {
  await withTempDir(async (dir) => {
    const paths = pathsIn(dir);
    const first = await loadOrMakeCertificate(paths, NAMES);
    assert.ok(first.ok, first.ok ? "" : first.error);
    assert.equal(first.value.origin, "made");
    assert.match(first.value.certificate.fingerprint, FINGERPRINT_REGEXP);
    assert.equal(await Deno.readTextFile(paths.key), first.value.certificate.keyPem);
    assert.equal(await Deno.readTextFile(paths.cert), first.value.certificate.certPem);
    if (Deno.build.os !== "windows") {
      assert.equal((await Deno.stat(paths.key)).mode! & 0o777, 0o600);
    }
    const second = await loadOrMakeCertificate(paths, NAMES);
    assert.ok(second.ok, second.ok ? "" : second.error);
    assert.equal(second.value.origin, "loaded");
    assert.equal(second.value.certificate.fingerprint, first.value.certificate.fingerprint);
    assert.equal(second.value.certificate.certPem, first.value.certificate.certPem);
    assert.equal(second.value.certificate.keyPem, first.value.certificate.keyPem);
    assert.deepEqual(second.value.certificate.names, first.value.certificate.names);
    assert.equal(
      second.value.certificate.notAfter.getTime(),
      Math.floor(first.value.certificate.notAfter.getTime() / 1000) * 1000,
    );
  });
});

Deno.test("loadOrMakeCertificate() renews a missing certificate with the same key", async () => {
  await withTempDir(async (dir) => {
    const paths = pathsIn(dir);
    const first = await loadOrMakeCertificate(paths, NAMES);
    assert.ok(first.ok);
    await Deno.remove(paths.cert);
    const renewed = await loadOrMakeCertificate(paths, NAMES);
    assert.ok(renewed.ok, renewed.ok ? "" : renewed.error);
    assert.equal(renewed.value.origin, "renewed");
    assert.equal(renewed.value.certificate.fingerprint, first.value.certificate.fingerprint);
    assert.equal(await Deno.readTextFile(paths.key), first.value.certificate.keyPem, "key kept");
    assert.equal(await Deno.readTextFile(paths.cert), renewed.value.certificate.certPem);
    assert.equal(
      await spkiFingerprint(renewed.value.certificate.certPem),
      first.value.certificate.fingerprint,
    );
    const after = await loadOrMakeCertificate(paths, NAMES);
    assert.ok(after.ok);
    assert.equal(after.value.origin, "loaded", "written back, so loaded next time");
  });
});

Deno.test("loadOrMakeCertificate() renews a certificate that lacks a name now wanted", async () => {
  await withTempDir(async (dir) => {
    const paths = pathsIn(dir);
    const first = await loadOrMakeCertificate(paths, { dns: ["localhost"], ips: ["127.0.0.1"] });
    assert.ok(first.ok);
    const wanted = { dns: ["localhost"], ips: ["127.0.0.1", "10.0.0.5"] };
    const renewed = await loadOrMakeCertificate(paths, wanted);
    assert.ok(renewed.ok, renewed.ok ? "" : renewed.error);
    assert.equal(renewed.value.origin, "renewed");
    assert.equal(renewed.value.certificate.fingerprint, first.value.certificate.fingerprint);
    assert.equal(renewed.value.certificate.keyPem, first.value.certificate.keyPem);
    assert.ok(renewed.value.certificate.names.includes("10.0.0.5"));
    assert.equal(
      new X509Certificate(renewed.value.certificate.certPem).checkIP("10.0.0.5"),
      "10.0.0.5",
    );
    // Fewer names than the certificate has, and names in another case, need nothing new.
    const fewer = await loadOrMakeCertificate(paths, { dns: ["LOCALHOST"], ips: ["10.0.0.5"] });
    assert.ok(fewer.ok);
    assert.equal(fewer.value.origin, "loaded");
  });
});

Deno.test("loadOrMakeCertificate() renews a certificate made for another key, or broken", async () => {
  await withTempDir(async (dir) => {
    const paths = pathsIn(dir);
    const first = await loadOrMakeCertificate(paths, NAMES);
    assert.ok(first.ok);
    const stranger = await makeCertificate(NAMES);
    for (const certText of [stranger.certPem, "not a certificate\n", ""]) {
      await Deno.writeTextFile(paths.cert, certText);
      const renewed = await loadOrMakeCertificate(paths, NAMES);
      assert.ok(renewed.ok, renewed.ok ? "" : renewed.error);
      assert.equal(renewed.value.origin, "renewed", JSON.stringify(certText.slice(0, 30)));
      assert.equal(renewed.value.certificate.fingerprint, first.value.certificate.fingerprint);
    }
  });
});

Deno.test("loadOrMakeCertificate() refuses a broken key file in one line, and keeps the file", async () => {
  await withTempDir(async (dir) => {
    const paths = pathsIn(dir);
    const rsa = await crypto.subtle.generateKey(
      {
        name: "RSASSA-PKCS1-v1_5",
        modulusLength: 2048,
        publicExponent: new Uint8Array([1, 0, 1]),
        hash: "SHA-256",
      },
      true,
      ["sign", "verify"],
    );
    const rsaPem = x509.PemConverter.encode(
      await crypto.subtle.exportKey("pkcs8", rsa.privateKey),
      "PRIVATE KEY",
    );
    for (const keyText of ["garbage\n", "", rsaPem]) {
      await Deno.writeTextFile(paths.key, keyText);
      const result = await loadOrMakeCertificate(paths, NAMES);
      assert.ok(!result.ok, "a broken key is an error, not a new key");
      assert.match(
        result.error,
        /^The TLS key .*chat-key\.pem is not usable: not a P-256 private key/,
      );
      assert.doesNotMatch(result.error, /\n/);
      assert.equal(await Deno.readTextFile(paths.key), keyText, "the key file is left alone");
    }
  });
});

Deno.test("loadOrMakeCertificate() says when the key cannot be read or written", async () => {
  await withTempDir(async (dir) => {
    // A folder where the key should be: it exists, but it cannot be read as a file.
    await Deno.mkdir(`${dir}/chat-key.pem`);
    const unreadable = await loadOrMakeCertificate(pathsIn(dir), NAMES);
    assert.ok(!unreadable.ok);
    assert.match(unreadable.error, /^Cannot read the TLS key .*chat-key\.pem: /);
    assert.doesNotMatch(unreadable.error, /\n/);
    // A folder that does not exist: the new key cannot be written.
    const missing = await loadOrMakeCertificate(pathsIn(`${dir}/nowhere`), NAMES);
    assert.ok(!missing.ok);
    assert.match(missing.error, /^Cannot write the TLS key and certificate beside .*nowhere/);
    assert.doesNotMatch(missing.error, /\n/);
  });
});

// ==== loadCertificateFiles ====

Deno.test("loadCertificateFiles() reads a certificate and its key", async () => {
  await withTempDir(async (dir) => {
    const made = await makeCertificate(NAMES);
    const other = await makeCertificate({ dns: ["ca.example"], ips: [] });
    await Deno.writeTextFile(`${dir}/cert.pem`, made.certPem + other.certPem); // a chain
    await Deno.writeTextFile(`${dir}/key.pem`, made.keyPem);
    const loaded = await loadCertificateFiles(`${dir}/cert.pem`, `${dir}/key.pem`);
    assert.ok(loaded.ok, loaded.ok ? "" : loaded.error);
    assert.equal(loaded.value.fingerprint, made.fingerprint, "the first certificate's key");
    assert.deepEqual(loaded.value.names, made.names);
    assert.equal(loaded.value.certPem, made.certPem + other.certPem, "the whole chain is served");
    assert.equal(loaded.value.keyPem, made.keyPem);
    assert.ok(Math.abs(loaded.value.notAfter.getTime() - made.notAfter.getTime()) < 1000);
  });
});

Deno.test("loadCertificateFiles() names the missing or broken file in one line", async () => {
  await withTempDir(async (dir) => {
    const made = await makeCertificate(NAMES);
    await Deno.writeTextFile(`${dir}/cert.pem`, made.certPem);
    await Deno.writeTextFile(`${dir}/key.pem`, made.keyPem);
    await Deno.writeTextFile(`${dir}/garbage.pem`, "hello\nworld\n");
    const cases: [string, string, RegExp][] = [
      [`${dir}/none.pem`, `${dir}/key.pem`, /^Cannot read the certificate .*none\.pem: /],
      [`${dir}/cert.pem`, `${dir}/none.pem`, /^Cannot read the key .*none\.pem: /],
      [`${dir}/garbage.pem`, `${dir}/key.pem`, /garbage\.pem holds no certificate in PEM/],
      [`${dir}/key.pem`, `${dir}/key.pem`, /key\.pem holds no certificate in PEM/],
    ];
    for (const [cert, key, why] of cases) {
      const result = await loadCertificateFiles(cert, key);
      assert.ok(!result.ok, `${cert} ${key}`);
      assert.match(result.error, why);
      assert.doesNotMatch(result.error, /\n/);
    }
  });
});

Deno.test("loadCertificateFiles() refuses a key that does not belong to the certificate", async () => {
  await withTempDir(async (dir) => {
    const made = await makeCertificate(NAMES);
    const other = await makeCertificate(NAMES);
    await Deno.writeTextFile(`${dir}/cert.pem`, made.certPem);
    await Deno.writeTextFile(`${dir}/other-key.pem`, other.keyPem);
    await Deno.writeTextFile(`${dir}/garbage-key.pem`, "not a key\n");
    const cases: [string, RegExp][] = [
      [
        "other-key.pem",
        /^The key .*other-key\.pem does not belong to the certificate .*cert\.pem$/,
      ],
      ["garbage-key.pem", /garbage-key\.pem holds no private key in PEM/],
    ];
    for (const [key, why] of cases) {
      const result = await loadCertificateFiles(`${dir}/cert.pem`, `${dir}/${key}`);
      assert.ok(!result.ok, `${key} is not the certificate's key`);
      assert.match(result.error, why);
      assert.doesNotMatch(result.error, /\n/);
    }
  });
});

Deno.test("loadCertificateFiles() takes an EC key in SEC1 form and an RSA key, as CAs issue them", async () => {
  await withTempDir(async (dir) => {
    const made = await makeCertificate(NAMES);
    const sec1 = createPrivateKey(made.keyPem).export({ type: "sec1", format: "pem" }).toString();
    assert.match(sec1, /^-----BEGIN EC PRIVATE KEY-----/);
    await Deno.writeTextFile(`${dir}/cert.pem`, made.certPem);
    await Deno.writeTextFile(`${dir}/key.pem`, sec1);
    const ec = await loadCertificateFiles(`${dir}/cert.pem`, `${dir}/key.pem`);
    assert.ok(ec.ok, ec.ok ? "" : ec.error);
    assert.equal(ec.value.fingerprint, made.fingerprint);

    const algorithm = {
      name: "RSASSA-PKCS1-v1_5",
      modulusLength: 2048,
      publicExponent: new Uint8Array([1, 0, 1]),
      hash: "SHA-256",
    };
    const keys = await crypto.subtle.generateKey(algorithm, true, ["sign", "verify"]);
    const rsaCert = await x509.X509CertificateGenerator.createSelfSigned({
      serialNumber: "01",
      name: "CN=chat.example",
      notBefore: new Date(Date.now() - 60_000),
      notAfter: new Date(Date.now() + 90 * DAY_MS),
      signingAlgorithm: algorithm,
      keys,
      extensions: [
        new x509.SubjectAlternativeNameExtension([{ type: "dns", value: "chat.example" }]),
      ],
    });
    const rsaKey = createPrivateKey(
      x509.PemConverter.encode(
        await crypto.subtle.exportKey("pkcs8", keys.privateKey),
        "PRIVATE KEY",
      ),
    ).export({ type: "pkcs1", format: "pem" }).toString();
    assert.match(rsaKey, /^-----BEGIN RSA PRIVATE KEY-----/);
    await Deno.writeTextFile(`${dir}/rsa-cert.pem`, rsaCert.toString("pem"));
    await Deno.writeTextFile(`${dir}/rsa-key.pem`, rsaKey);
    const rsa = await loadCertificateFiles(`${dir}/rsa-cert.pem`, `${dir}/rsa-key.pem`);
    assert.ok(rsa.ok, rsa.ok ? "" : rsa.error);
    assert.equal(rsa.value.fingerprint, await spkiFingerprint(rsaCert));
    assert.deepEqual(rsa.value.names, ["chat.example"]);
  });
});
