// Reads a JWT's `exp` without verifying it (the gateway verifies); only to know when to refresh a token the app gave
// us as a bare string. Hand-written base64url, since `atob` and Buffer are not everywhere the SDK runs.

const ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

function decodeBase64Url(input: string): string | null {
  let bits = 0;
  let value = 0;
  const bytes: number[] = [];
  for (const char of input.replace(/=+$/, "")) {
    const index = ALPHABET.indexOf(char === "+" ? "-" : char === "/" ? "_" : char);
    if (index === -1) return null;
    value = (value << 6) | index;
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      bytes.push((value >> bits) & 0xff);
    }
  }
  if (typeof TextDecoder === "function") return new TextDecoder().decode(new Uint8Array(bytes));
  // Without TextDecoder (older React Native) non-ASCII text in other claims comes out garbled, but the JSON still
  // parses: UTF-8 continuation bytes are never quotes or backslashes, and `exp` is plain digits.
  return String.fromCharCode(...bytes);
}

/** The token's expiry as epoch milliseconds, or undefined when it is not a JWT with a numeric `exp`. */
export function jwtExpiresAt(token: string): number | undefined {
  const payload = token.split(".")[1];
  if (payload === undefined) return undefined;
  const json = decodeBase64Url(payload);
  if (json === null) return undefined;
  try {
    const claims = JSON.parse(json) as { exp?: unknown };
    return typeof claims.exp === "number" && Number.isFinite(claims.exp) ? claims.exp * 1000 : undefined;
  } catch {
    return undefined;
  }
}
