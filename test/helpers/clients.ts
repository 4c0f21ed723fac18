// Real clients for tests: HTTP calls with fetch, devices with socket.io-client, and small waiting helpers.
import { randomBytes } from "node:crypto";
import { io, type Socket } from "socket.io-client";
import type { ClientToServerEvents, ServerToClientEvents, AuthResult, WireError } from "@chat-gateway/protocol";

export type Device = Socket<ServerToClientEvents, ClientToServerEvents>;

export interface ApiResponse<T = Record<string, unknown>> {
  status: number;
  body: T;
}

export async function api<T = Record<string, unknown>>(
  baseUrl: string,
  method: string,
  path: string,
  options: { token?: string; body?: unknown; rawBody?: string; headers?: Record<string, string> } = {},
): Promise<ApiResponse<T>> {
  const headers: Record<string, string> = { ...options.headers };
  if (options.token) headers.authorization = `Bearer ${options.token}`;
  let body: string | undefined = options.rawBody;
  if (options.body !== undefined) {
    headers["content-type"] = "application/json";
    body = JSON.stringify(options.body);
  } else if (body !== undefined) headers["content-type"] ??= "application/json";
  const res = await fetch(`${baseUrl}${path}`, { method, headers, body });
  const text = await res.text();
  return { status: res.status, body: (text ? JSON.parse(text) : {}) as T };
}

export const uniqueName = (prefix = "u") => `${prefix}${randomBytes(4).toString("hex")}`;

export async function registerUser(baseUrl: string, username = uniqueName()): Promise<AuthResult> {
  const res = await api<AuthResult>(baseUrl, "POST", "/v1/auth/register", {
    body: { username, password: "correct horse battery", displayName: username },
  });
  if (res.status !== 201) throw new Error(`register failed: ${res.status} ${JSON.stringify(res.body)}`);
  return res.body;
}

export async function createConversation(
  baseUrl: string,
  token: string,
  body: { type: "direct"; userId: string } | { type: "group"; title: string; memberIds: string[] },
): Promise<{ id: string }> {
  const res = await api<{ conversation: { id: string } }>(baseUrl, "POST", "/v1/conversations", { token, body });
  if (res.status !== 201 && res.status !== 200)
    throw new Error(`create failed: ${res.status} ${JSON.stringify(res.body)}`);
  return res.body.conversation;
}

/**
 * The recipient accepts a direct conversation (a message request until then): for tests about what accepted
 * conversations do (pushes with content, presence, receipts both ways).
 */
export async function acceptConversation(baseUrl: string, token: string, conversationId: string): Promise<void> {
  const res = await api(baseUrl, "POST", `/v1/conversations/${conversationId}/accept`, { token });
  if (res.status !== 200) throw new Error(`accept failed: ${res.status} ${JSON.stringify(res.body)}`);
}

/** Connects a device and waits until the handshake succeeded (or rejects with the connect_error message). */
export function connectDevice(
  baseUrl: string,
  token: string,
  options: { transports?: ("websocket" | "polling")[]; reconnection?: boolean } = {},
): Promise<Device> {
  const socket: Device = io(baseUrl, {
    auth: { token },
    transports: options.transports ?? ["websocket"],
    reconnection: options.reconnection ?? false,
    forceNew: true,
  });
  return new Promise((resolve, reject) => {
    socket.once("connect", () => resolve(socket));
    socket.once("connect_error", (err) => {
      socket.close();
      reject(err);
    });
  });
}

/** Resolves with the first matching event, or rejects after `timeoutMs`. */
export function waitForEvent<E extends keyof ServerToClientEvents>(
  socket: Device,
  event: E,
  predicate: (...args: Parameters<ServerToClientEvents[E]>) => boolean = () => true,
  timeoutMs = 5_000,
): Promise<Parameters<ServerToClientEvents[E]>[0]> {
  return new Promise((resolve, reject) => {
    const listener = ((...args: Parameters<ServerToClientEvents[E]>) => {
      if (!predicate(...args)) return;
      clearTimeout(timer);
      socket.off(event, listener as never);
      resolve(args[0]);
    }) as never;
    const timer = setTimeout(() => {
      socket.off(event, listener);
      reject(new Error(`timed out waiting for ${String(event)}`));
    }, timeoutMs);
    socket.on(event, listener);
  });
}

/** An event a device sends with an ack, and its payload and answer, all read from the protocol's map. */
export type ClientEvent = keyof ClientToServerEvents;
export type PayloadOf<E extends ClientEvent> = Parameters<ClientToServerEvents[E]>[0];
export type AckOf<E extends ClientEvent> = Parameters<Parameters<ClientToServerEvents[E]>[1]>[0];
/** The answer's fields when `ok` is true. */
export type AckedOf<E extends ClientEvent> = Extract<AckOf<E>, { ok: true }>;

/** Emits `event` with its ack and resolves with the server's answer (within 10 s, else rejects). */
export function emitWithAck<E extends ClientEvent>(
  socket: Device,
  event: E,
  payload: PayloadOf<E>,
  timeoutMs = 10_000,
): Promise<AckOf<E>> {
  // socket.io-client's typed emitWithAck resolves its overloads per event; one generic call needs the plain form.
  const raw = socket as unknown as {
    timeout(ms: number): { emitWithAck(event: string, payload: unknown): Promise<AckOf<E>> };
  };
  return raw.timeout(timeoutMs).emitWithAck(event, payload);
}

/**
 * `emitWithAck` for tests that check `ok` themselves: the answer with both sides' fields present in its type (the
 * success fields from the protocol's map, and `error`), so a test reads `answer.message` after asserting `ok`, or
 * `answer.error.code` after asserting a refusal, without narrowing.
 */
export type LooseAck<E extends ClientEvent> = Omit<AckedOf<E>, "ok"> & { ok: boolean; error: WireError };

export function request<E extends ClientEvent>(socket: Device, event: E, payload: PayloadOf<E>): Promise<LooseAck<E>> {
  return emitWithAck(socket, event, payload) as Promise<never>;
}

/** For malformed input on purpose (a fuzz case, a wrong type): any event name and payload; the answer unchecked. */
export function requestUnchecked(
  socket: Device,
  event: string,
  payload: unknown,
): Promise<{ ok: boolean; error?: WireError } & Record<string, unknown>> {
  return emitWithAck(socket, event as ClientEvent, payload as never) as Promise<never>;
}

/** Emits and asserts the answer is `ok`, resolving with its fields; a refusal rejects with its error code. */
export async function requestOk<E extends ClientEvent>(
  socket: Device,
  event: E,
  payload: PayloadOf<E>,
): Promise<AckedOf<E>> {
  const answer = await emitWithAck(socket, event, payload);
  if (!answer.ok) throw new Error(`${event} refused: ${answer.error.code} ${answer.error.message}`);
  return answer as AckedOf<E>;
}

/** Collects every event of one kind until stopped. */
export function collect<E extends keyof ServerToClientEvents>(
  socket: Device,
  event: E,
): Parameters<ServerToClientEvents[E]>[0][] {
  const items: Parameters<ServerToClientEvents[E]>[0][] = [];
  socket.on(event, ((payload: Parameters<ServerToClientEvents[E]>[0]) => items.push(payload)) as never);
  return items;
}

export async function eventually(check: () => boolean | Promise<boolean>, timeoutMs = 10_000, what = "condition") {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await check()) return;
    await new Promise((r) => setTimeout(r, 25));
  }
  throw new Error(`timed out waiting for ${what}`);
}

/** One labelled sample of a gateway's /metrics, e.g. `metricValue(url, "chat_resyncs_total", 'reason="x"')`; 0 if absent. */
export async function metricValue(url: string, name: string, labels: string): Promise<number> {
  const text = await (await fetch(`${url}/metrics`)).text();
  const line = text.split("\n").find((l) => l.startsWith(`${name}{${labels}}`));
  return line === undefined ? 0 : Number(line.split(" ").at(-1));
}
