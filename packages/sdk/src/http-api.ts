// The gateway's REST API (`/v1`) over fetch, which browsers, React Native and Node 18+ all have. Every failure is a
// ChatApiError with the contract's code, whatever produced it: the gateway, a proxy in front of it, or the network.
import type { Attachment, Conversation, Message, PublicUser, UploadTicket, WireError } from "@chat-gateway/protocol";
import { ChatApiError, type ChatErrorCode } from "./errors.js";
import type { AuthTokens } from "./token-manager.js";

type FetchFn = (input: string, init: RequestInit) => Promise<Response>;

export interface ChatHttpApiOptions {
  /** The gateway's origin, e.g. `https://chat.example.com`; `/v1` is added. */
  baseUrl: string;
  /** The access token for authenticated routes. */
  getAccessToken?: () => Promise<string>;
  /** Called once when an authenticated request gets a 401, to retry it with a fresh token. */
  refreshAccessToken?: () => Promise<string>;
  /** @default globalThis.fetch */
  fetch?: FetchFn;
  /** Per request, in ms. @default 15000 */
  timeoutMs?: number;
}

export interface AuthSession extends AuthTokens {
  user: PublicUser;
}

export interface ConversationPage {
  conversations: Conversation[];
  nextCursor: string | null;
}

export interface MessagePage {
  /** Ascending by seq. */
  messages: Message[];
  hasMore: boolean;
}

export interface MessageQuery {
  /** Messages with a seq below this one (scrolling back). */
  before?: number;
  /** Messages with a seq above this one (catching up). */
  after?: number;
  /** 1..100. @default 50 (the gateway's) */
  limit?: number;
}

export interface MessageSearchQuery {
  /** 1..200 characters: words (whole, any case), "quoted phrases", `or`, `-word`; CJK and Hangul match inside words. */
  query: string;
  /** Only this conversation (the caller must be a member, else `not_found`). */
  conversationId?: string;
  /** 1..50. @default 20 (the gateway's) */
  limit?: number;
  /** `nextCursor` of the previous page. */
  cursor?: string;
}

export interface MessageSearchPage {
  /** Newest first. */
  messages: Message[];
  nextCursor: string | null;
}

interface RequestOptions {
  body?: unknown;
  query?: Record<string, string | number | undefined>;
  /** Sends the bearer token; and refreshes it once on a 401. */
  auth?: boolean;
}

const CODE_OF_STATUS: Record<number, ChatErrorCode> = {
  400: "bad_request",
  401: "unauthorized",
  403: "forbidden",
  404: "not_found",
  409: "conflict",
  413: "payload_too_large",
  429: "rate_limited",
  502: "unavailable",
  503: "unavailable",
  504: "unavailable",
};

/**
 * The ChatApiError for a failed HTTP answer: the gateway's `{error: {code, message, details}}` when the body has one,
 * else a code guessed from the status (a load balancer's 502 page has no JSON).
 */
export function errorFromResponse(status: number, body: unknown, retryAfterHeader?: string | null): ChatApiError {
  const wire = (body as { error?: Partial<WireError> } | null)?.error;
  if (wire && typeof wire.code === "string" && typeof wire.message === "string") {
    return ChatApiError.fromWire(wire as WireError, status);
  }
  const code = CODE_OF_STATUS[status] ?? (status >= 500 ? "internal" : "bad_request");
  const retryAfterSeconds = retryAfterHeader ? Number(retryAfterHeader) : NaN;
  const details = Number.isFinite(retryAfterSeconds) ? { retryAfterMs: retryAfterSeconds * 1000 } : undefined;
  return new ChatApiError(code, `HTTP ${status}`, { status, details });
}

export class ChatHttpApi {
  private readonly baseUrl: string;
  private readonly fetchFn: FetchFn;
  private readonly timeoutMs: number;

  constructor(private readonly options: ChatHttpApiOptions) {
    this.baseUrl = options.baseUrl.replace(/\/+$/, "");
    // Browsers refuse a fetch called as another object's method ("Illegal invocation"): bind it to its global.
    const fetchFn = options.fetch ?? (globalThis.fetch?.bind(globalThis) as FetchFn | undefined);
    if (!fetchFn) throw new TypeError("no fetch available: pass options.fetch");
    this.fetchFn = fetchFn;
    this.timeoutMs = options.timeoutMs ?? 15_000;
  }

  register(input: { username: string; password: string; displayName?: string }): Promise<AuthSession> {
    return this.json("POST", "/auth/register", { body: input, auth: false });
  }

  login(input: { username: string; password: string; deviceName?: string }): Promise<AuthSession> {
    return this.json("POST", "/auth/login", { body: input, auth: false });
  }

  /** A new token pair; the refresh token passed in is spent. */
  refresh(refreshToken: string): Promise<AuthTokens> {
    return this.json("POST", "/auth/refresh", { body: { refreshToken }, auth: false });
  }

  /** Ends this login (its refresh token family); other logins of the user stay. */
  async logout(refreshToken: string): Promise<void> {
    await this.request("POST", "/auth/logout", { body: { refreshToken }, auth: false });
  }

  me(): Promise<PublicUser> {
    return this.json("GET", "/users/me");
  }

  /** Users whose username starts with `prefix`. */
  async searchUsers(prefix: string): Promise<PublicUser[]> {
    const { users } = await this.json<{ users: PublicUser[] }>("GET", "/users", { query: { query: prefix } });
    return users;
  }

  /** Most recent activity first; pass `nextCursor` back for the next page. */
  listConversations(page: { limit?: number; cursor?: string } = {}): Promise<ConversationPage> {
    return this.json("GET", "/conversations", { query: { limit: page.limit, cursor: page.cursor } });
  }

  async getConversation(conversationId: string): Promise<Conversation> {
    const { conversation } = await this.json<{ conversation: Conversation }>("GET", this.conv(conversationId));
    return conversation;
  }

  /** The one direct conversation with `userId`, created if it does not exist yet. */
  async openDirectConversation(userId: string): Promise<Conversation> {
    const body = { type: "direct", userId };
    const { conversation } = await this.json<{ conversation: Conversation }>("POST", "/conversations", { body });
    return conversation;
  }

  /** A group of the caller (as admin) and `memberIds`. */
  async createGroup(title: string, memberIds: string[]): Promise<Conversation> {
    const body = { type: "group", title, memberIds };
    const { conversation } = await this.json<{ conversation: Conversation }>("POST", "/conversations", { body });
    return conversation;
  }

  /** Group admins only (`forbidden` for members). */
  async addMember(conversationId: string, userId: string): Promise<void> {
    await this.request("POST", `${this.conv(conversationId)}/members`, { body: { userId } });
  }

  /** Someone else: group admins only (`forbidden` for members). With the caller's own id: leaves (see leave). */
  async removeMember(conversationId: string, userId: string): Promise<void> {
    await this.request("DELETE", this.member(conversationId, userId));
  }

  /** Leaves a group (any member); the last admin leaving promotes the oldest member. */
  async leave(conversationId: string, ownUserId: string): Promise<void> {
    await this.removeMember(conversationId, ownUserId);
  }

  /** Promotes a member to admin or demotes one; group admins only. Demoting the last admin is `conflict`. */
  async setMemberRole(conversationId: string, userId: string, role: "admin" | "member"): Promise<Conversation> {
    const path = this.member(conversationId, userId);
    const { conversation } = await this.json<{ conversation: Conversation }>("PATCH", path, { body: { role } });
    return conversation;
  }

  /** Renames a group; group admins only. */
  async renameGroup(conversationId: string, title: string): Promise<Conversation> {
    const path = this.conv(conversationId);
    const { conversation } = await this.json<{ conversation: Conversation }>("PATCH", path, { body: { title } });
    return conversation;
  }

  /**
   * Reports a message (of a conversation the caller is in) or a user to the operators; `reason` is 1-1000 characters.
   * The message is kept with the report as it is now.
   */
  async report(target: { messageId: string } | { userId: string }, reason: string): Promise<{ id: string }> {
    const { report } = await this.json<{ report: { id: string } }>("POST", "/reports", { body: { ...target, reason } });
    return report;
  }

  async updateConversation(conversationId: string, changes: { muted?: boolean; title?: string }): Promise<void> {
    await this.request("PATCH", this.conv(conversationId), { body: changes });
  }

  /** The recipient accepts a message request (`conversation.request`): presence, typing and receipts flow both ways. */
  async acceptConversation(conversationId: string): Promise<Conversation> {
    const path = `${this.conv(conversationId)}/accept`;
    const { conversation } = await this.json<{ conversation: Conversation }>("POST", path);
    return conversation;
  }

  /** No direct messages from `userId`, no presence or typing either way, no push from them. Idempotent. */
  async blockUser(userId: string): Promise<void> {
    await this.request("PUT", `/users/${encodeURIComponent(userId)}/block`);
  }

  async unblockUser(userId: string): Promise<void> {
    await this.request("DELETE", `/users/${encodeURIComponent(userId)}/block`);
  }

  async listBlockedUsers(): Promise<PublicUser[]> {
    const { users } = await this.json<{ users: PublicUser[] }>("GET", "/users/me/blocks");
    return users;
  }

  /** History: with neither cursor, the newest `limit` messages. */
  getMessages(conversationId: string, query: MessageQuery = {}): Promise<MessagePage> {
    return this.json("GET", `${this.conv(conversationId)}/messages`, {
      query: { before: query.before, after: query.after, limit: query.limit },
    });
  }

  /** Idempotent per `clientMsgId`, like the socket's `message:send` (ChatClient.send is the usual way). */
  async sendMessage(
    conversationId: string,
    input: { clientMsgId: string; content: string; attachmentIds?: string[] },
  ): Promise<Message> {
    const path = `${this.conv(conversationId)}/messages`;
    const { message } = await this.json<{ message: Message }>("POST", path, { body: input });
    return message;
  }

  /** Messages of the caller's conversations that match `query`, newest first; pass `nextCursor` back for more. */
  searchMessages(search: MessageSearchQuery): Promise<MessageSearchPage> {
    const { query, conversationId, limit, cursor } = search;
    return this.json("GET", "/search/messages", { query: { query, conversationId, limit, cursor } });
  }

  /** Declares a file to upload; the answer says where to PUT its bytes (see uploads.ts, `uploadFile`). */
  async createUpload(input: { name: string; mimeType: string; size: number }): Promise<UploadTicket> {
    const { upload } = await this.json<{ upload: UploadTicket }>("POST", "/uploads", { body: input });
    return upload;
  }

  /** An attachment with fresh download URLs (they expire); `not_found` unless the caller is a member. */
  async getAttachment(attachmentId: string): Promise<Attachment> {
    const path = `/attachments/${encodeURIComponent(attachmentId)}`;
    const { attachment } = await this.json<{ attachment: Attachment }>("GET", path);
    return attachment;
  }

  /** A URL the gateway answered, made absolute (embedded storage answers URLs relative to the gateway). */
  resolveUrl(url: string): string {
    return new URL(url, `${this.baseUrl}/`).toString();
  }

  async markRead(conversationId: string, seq: number): Promise<void> {
    await this.request("POST", `${this.conv(conversationId)}/read`, { body: { seq } });
  }

  private conv(conversationId: string): string {
    return `/conversations/${encodeURIComponent(conversationId)}`;
  }

  private member(conversationId: string, userId: string): string {
    return `${this.conv(conversationId)}/members/${encodeURIComponent(userId)}`;
  }

  private async json<T>(method: string, path: string, options: RequestOptions = {}): Promise<T> {
    const body = await this.request(method, path, options);
    if (body === null || typeof body !== "object") {
      throw new ChatApiError("internal", `unexpected answer to ${method} ${path}`);
    }
    return body as T;
  }

  private async request(method: string, path: string, options: RequestOptions = {}): Promise<unknown> {
    const auth = options.auth ?? true;
    const token = auth && this.options.getAccessToken ? await this.options.getAccessToken() : undefined;
    let answer = await this.send(method, path, options, token);
    if (answer.status === 401 && auth && this.options.refreshAccessToken) {
      answer = await this.send(method, path, options, await this.options.refreshAccessToken());
    }
    let body: unknown = undefined;
    if (answer.text.length > 0) {
      try {
        body = JSON.parse(answer.text);
      } catch {
        body = undefined;
      }
    }
    if (answer.status < 200 || answer.status > 299) throw errorFromResponse(answer.status, body, answer.retryAfter);
    return body;
  }

  private async send(method: string, path: string, options: RequestOptions, token?: string): Promise<RawAnswer> {
    const headers: Record<string, string> = { accept: "application/json" };
    if (options.body !== undefined) headers["content-type"] = "application/json";
    if (token) headers.authorization = `Bearer ${token}`;
    const controller = typeof AbortController === "function" ? new AbortController() : undefined;
    const timer = controller ? setTimeout(() => controller.abort(), this.timeoutMs) : undefined;
    try {
      const response = await this.fetchFn(this.baseUrl + "/v1" + path + queryString(options.query), {
        method,
        headers,
        body: options.body === undefined ? undefined : JSON.stringify(options.body),
        signal: controller?.signal,
      });
      // Read inside the timeout too: a proxy can send headers and then stall the body.
      const text = await response.text();
      return { status: response.status, text, retryAfter: response.headers.get("retry-after") };
    } catch (err) {
      if (controller?.signal.aborted) throw new ChatApiError("timeout", `${method} ${path} timed out`);
      throw new ChatApiError("network_error", err instanceof Error ? err.message : String(err));
    } finally {
      if (timer !== undefined) clearTimeout(timer);
    }
  }
}

interface RawAnswer {
  status: number;
  text: string;
  retryAfter: string | null;
}

function queryString(query: RequestOptions["query"]): string {
  if (!query) return "";
  const parts = Object.entries(query)
    .filter((entry): entry is [string, string | number] => entry[1] !== undefined)
    .map(([key, value]) => `${encodeURIComponent(key)}=${encodeURIComponent(String(value))}`);
  return parts.length > 0 ? `?${parts.join("&")}` : "";
}
