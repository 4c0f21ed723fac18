// Client message ids: a fresh one per send, kept across every retry so the gateway can recognise a repeat.

interface MaybeCrypto {
  randomUUID?: () => string;
  getRandomValues?: (array: Uint8Array) => Uint8Array;
}

export function createClientMsgId(): string {
  const crypto = (globalThis as { crypto?: MaybeCrypto }).crypto;
  if (typeof crypto?.randomUUID === "function") return crypto.randomUUID();
  // React Native (without a polyfill) and old browsers have no randomUUID; a v4 UUID from the best randomness there is.
  const bytes = new Uint8Array(16);
  if (typeof crypto?.getRandomValues === "function") crypto.getRandomValues(bytes);
  else for (let i = 0; i < 16; i++) bytes[i] = Math.floor(Math.random() * 256);
  bytes[6] = ((bytes[6] ?? 0) & 0x0f) | 0x40;
  bytes[8] = ((bytes[8] ?? 0) & 0x3f) | 0x80;
  const hex = Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}
