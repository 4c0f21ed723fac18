// The SDK's front door: one object per signed-in device that keeps a Socket.IO connection to the gateway alive and
// turns the wire contract's guarantee (every acked message reaches every device, live or on the next sync) into what an
// app wants: each message exactly once, in order, and sends that are never lost.
import { io } from "socket.io-client";
import type {
  Conversation,
  MarkerCounts,
  MarkerEvent,
  MarkersEvent,
  Message,
  MessageUpdate,
  PresenceState,
} from "@chat-gateway/protocol";
import { backoffDelay } from "./backoff.js";
import { type Clock, systemClock, TimerSet } from "./clock.js";
import { TypedEmitter, type Listener } from "./emitter.js";
import { ChatApiError, toChatApiError } from "./errors.js";
import { ChatHttpApi, type ChatHttpApiOptions } from "./http-api.js";
import { MarkerBatcher } from "./marker-batcher.js";
import { ChangeQueue, type ChangeRequest, ChangeTracker } from "./message-changes.js";
import { MessageSequencer } from "./message-sequencer.js";
import { Outbox } from "./outbox.js";
import { PresenceFollower } from "./presence-follower.js";
import { retrying } from "./retry.js";
import {
  type ChatSocket,
  request,
  type RequestEvent,
  type RequestPayload,
  type RequestResult,
} from "./socket-request.js";
import {
  CoalescingWriter,
  type CursorStorage,
  MemoryCursorStorage,
  type OutboxEntry,
  type OutboxStorage,
} from "./storage.js";
import { type AuthTokens, type SignedOutReason, TokenManager, type TokenSource } from "./token-manager.js";
import { TypingThrottle } from "./typing-throttle.js";
import { type UploadedFile, uploadFile, type UploadOptions, type UploadSource } from "./uploads.js";

export type ConnectionState = "connecting" | "connected" | "reconnecting" | "disconnected";

/** What went wrong in the background, where no call of the app could receive the error. */
export interface ChatClientErrorEvent {
  operation: "sync" | "gap-fill" | "marker" | "presence" | "auth-refresh" | "storage";
  /** A ChatApiError, except for `storage`, where it is whatever the app's storage threw. */
  error: Error;
  conversationId?: string;
}

export interface ChatClientEvents {
  state: { state: ConnectionState; previous: ConnectionState };
  /** A message for the app: each exactly once, per conversation in `seq` order, the user's own included. */
  message: Message;
  /**
   * A message the app already has changed (edited, deleted, reacted to): the whole message as it is now. Each state
   * once, oldest to newest (by `changeSeq`). Replies to it show `replyPreviewOf(message)` from now on.
   */
  messageUpdated: Message;
  /** The gateway stored a message from `send()`; it also arrives as a `message`. */
  sent: { entry: OutboxEntry; message: Message };
  /** The gateway refused a message from `send()` for good; it will not be retried. */
  sendFailed: { entry: OutboxEntry; error: ChatApiError };
  /** A (re)connection caught up: every message up to now has been delivered. Conversations with news, full objects. */
  synced: { conversations: Conversation[] };
  /** A member's read marker moved (also from the gateway's coalesced `conversation:markers`, one per member). */
  conversationRead: MarkerEvent;
  conversationDelivered: MarkerEvent;
  /**
   * A conversation too large for per-member receipts: how many members have read / received each recent seq, highest
   * seq first. Each replaces the previous one for that conversation.
   */
  conversationReceipts: { conversationId: string; readCounts: MarkerCounts; deliveredCounts: MarkerCounts };
  conversationUpdated: Conversation;
  typing: { conversationId: string; userId: string; isTyping: boolean };
  presence: { userId: string } & PresenceState;
  /** The SDK rotated the token pair: store the new refresh token now, the old one no longer works. */
  tokens: AuthTokens;
  /**
   * The gateway disconnected this client because the user opened too many connections (`too_many_sockets`: a newer
   * one displaced it). The client stays disconnected rather than displace another device in turn; call
   * `reconnect()` when the user comes back to this one.
   */
  displaced: { reason: "too_many_sockets" };
  /** The user has to sign in again; the client has stopped. Unsent messages stay in the outbox storage. */
  signedOut: { reason: SignedOutReason; error?: ChatApiError };
  error: ChatClientErrorEvent;
}

export interface ChatClientOptions {
  /** The gateway's origin, e.g. `https://chat.example.com`, for both Socket.IO and the REST API. */
  url: string;
  /** A token pair from login/register (the SDK refreshes and rotates it), or the app's own token provider. */
  auth: TokenSource;
  /**
   * Socket.IO transports. Behind a load balancer without sticky sessions use `["websocket"]`: polling needs every
   * request of a session to reach the same pod. @default socket.io-client's (polling, upgraded to websocket)
   */
  transports?: ("polling" | "websocket" | "webtransport")[];
  /** Socket.IO path. @default "/socket.io" */
  path?: string;
  /** First reconnection delay in ms, doubled per attempt. @default 1000 */
  reconnectionDelay?: number;
  /** Longest reconnection delay in ms. @default 10000 */
  reconnectionDelayMax?: number;
  /** Jitter, 0..1, so clients dropped together do not come back together. @default 0.5 */
  randomizationFactor?: number;
  /** Where unsent messages live between runs. @default in memory */
  outboxStorage?: OutboxStorage;
  /** Where the per-conversation cursors live between runs. @default in memory */
  cursorStorage?: CursorStorage;
  /** How long to wait for an ack before retrying, in ms. @default 10000 */
  ackTimeoutMs?: number;
  /** Messages per `sync` page (the gateway allows up to 1000). @default 500 */
  syncPageSize?: number;
  /**
   * Grace for an out-of-order message to fill a hole by itself before history is fetched, in ms. Messages of one
   * conversation sent through different pods can arrive out of order by hundreds of ms when the pods are busy, and a
   * publish the gateway failed to make is announced with `sync:required`, so waiting a second saves HTTP requests
   * exactly when the gateway is busiest (measured: 19,000 needless gap fills in 20 s of overload at 250 ms).
   * @default 1000
   */
  gapFillDelayMs?: number;
  /** How long read and delivery markers are gathered before one is sent per conversation, in ms. @default 250 */
  markerDelayMs?: number;
  /** Typing throttle. @default { throttleMs: 3000, idleMs: 5000 } */
  typing?: { throttleMs?: number; idleMs?: number };
  /** For environments without a global fetch. */
  fetch?: ChatHttpApiOptions["fetch"];
  /** @internal tests only */
  clock?: Clock;
}

const GAP_FILL_PAGE = 100;
/** Refused handshakes in a row, each after a successful refresh, before the SDK gives up and signs out. */
const MAX_AUTH_REJECTIONS = 3;

export class ChatClient {
  /** The REST API, authenticated with this client's tokens. */
  readonly api: ChatHttpApi;

  private readonly events = new TypedEmitter<ChatClientEvents>();
  private readonly tokens: TokenManager;
  private readonly outbox: Outbox;
  private readonly sequencer = new MessageSequencer();
  private readonly cursorStorage: CursorStorage;
  private readonly cursorWriter: CoalescingWriter<Record<string, number>>;
  private readonly delivered: MarkerBatcher;
  private readonly reads: MarkerBatcher;
  private readonly typingThrottle: TypingThrottle;
  private readonly timers: TimerSet;
  private readonly presence: PresenceFollower;
  private readonly gapFills = new Set<string>();
  private readonly changes = new ChangeTracker();
  private changeQueue!: ChangeQueue;
  /** Conversations whose hole in the live change numbers is being waited on (watchChangeHole). */
  private readonly changeHoleChecks = new Set<string>();
  private readonly typingChains = new Map<string, Promise<void>>();

  private socket: ChatSocket | null = null;
  /**
   * The signed-in user's id, asked of the gateway once (`GET /users/me`) after the first connection: with it the
   * client sends no markers the gateway already holds (its own messages, another of its devices' markers). Until it
   * is known every marker is sent, which is only more requests.
   */
  private ownUserId: string | null = null;
  private learningUserId = false;
  private currentState: ConnectionState = "disconnected";
  /** Bumped on every connect and disconnect, so work started for one connection stops when it ends. */
  private epoch = 0;
  private everConnected = false;
  private closed = false;
  private socketToken: string | null = null;
  /** Whether the last handshake presented a token we believed valid, rather than a stale one because refresh failed. */
  private handshakeTokenFresh = false;
  private sessionEndReason: string | null = null;
  /** Disconnected as `too_many_sockets`: no automatic reconnection until reconnect(). */
  private displacedNow = false;
  private reconnectAttempts = 0;
  private authRejections = 0;
  private firstSync: Promise<void> | null = null;
  private settleFirstSync: { resolve: () => void; reject: (error: ChatApiError) => void } | null = null;

  constructor(private readonly options: ChatClientOptions) {
    const clock = options.clock ?? systemClock;
    this.timers = new TimerSet(clock);
    this.api = new ChatHttpApi({
      baseUrl: options.url,
      fetch: options.fetch,
      getAccessToken: () => this.tokens.getAccessToken(),
      refreshAccessToken: () => this.tokens.refresh(),
    });
    // A separate, unauthenticated API for refreshing, so a 401 there never triggers another refresh.
    const authApi = new ChatHttpApi({ baseUrl: options.url, fetch: options.fetch });
    this.tokens = new TokenManager({
      source: options.auth,
      refreshTokens: (refreshToken) => authApi.refresh(refreshToken),
      onAccessToken: (token) => this.sendTokenToSocket(token),
      onTokens: (tokens) => this.events.emit("tokens", tokens),
      onSignedOut: (reason, error) => this.handleSignedOut(reason, error),
      clock,
    });
    this.outbox = new Outbox({
      storage: options.outboxStorage,
      transmit: (entry) =>
        this.request("message:send", {
          conversationId: entry.conversationId,
          clientMsgId: entry.clientMsgId,
          content: entry.content,
          ...(entry.replyToId !== undefined ? { replyToId: entry.replyToId } : {}),
          ...(entry.attachmentIds !== undefined ? { attachmentIds: entry.attachmentIds } : {}),
        }).then((answer) => answer.message),
      onSent: (entry, message) => {
        this.events.emit("sent", { entry, message });
        this.ingest([message]);
      },
      onFailed: (entry, error) => this.events.emit("sendFailed", { entry, error }),
      onStorageError: (error) => this.reportError("storage", error),
      clock,
    });
    this.presence = new PresenceFollower({
      subscribe: (userIds) => this.request("presence:subscribe", { userIds }),
      timers: this.timers,
      epoch: () => this.epoch,
      connected: () => this.currentState === "connected",
      emit: (event) => this.events.emit("presence", event),
      failed: (error) => this.events.emit("error", { operation: "presence", error }),
    });
    this.changeQueue = new ChangeQueue({
      send: (change: ChangeRequest) => this.sendChange(change),
      timers: this.timers,
      onAcked: (message) => this.applyUpdate(message),
    });
    this.cursorStorage = options.cursorStorage ?? new MemoryCursorStorage();
    this.cursorWriter = new CoalescingWriter(
      () => this.sequencer.cursors(),
      (cursors) => this.cursorStorage.save(cursors),
      (error) => this.reportError("storage", error),
    );
    const markerDelayMs = options.markerDelayMs ?? 250;
    const onMarkerError = (conversationId: string, _seq: number, error: ChatApiError) =>
      this.events.emit("error", { operation: "marker", error, conversationId });
    this.delivered = new MarkerBatcher({
      send: (conversationId, seq) => this.request("message:delivered", { conversationId, seq }).then(() => undefined),
      delayMs: markerDelayMs,
      onError: onMarkerError,
      clock,
    });
    this.reads = new MarkerBatcher({
      send: (conversationId, seq) => this.request("message:read", { conversationId, seq }).then(() => undefined),
      delayMs: markerDelayMs,
      onError: onMarkerError,
      clock,
    });
    this.typingThrottle = new TypingThrottle({
      send: (conversationId, isTyping) => this.sendTyping(conversationId, isTyping),
      throttleMs: options.typing?.throttleMs,
      idleMs: options.typing?.idleMs,
      clock,
    });
  }

  get state(): ConnectionState {
    return this.currentState;
  }

  /** The signed-in user's id, once the client has asked the gateway (shortly after the first connection). */
  get userId(): string | null {
    return this.ownUserId;
  }

  on<K extends keyof ChatClientEvents>(event: K, listener: Listener<ChatClientEvents[K]>): () => void {
    return this.events.on(event, listener);
  }

  once<K extends keyof ChatClientEvents>(event: K, listener: Listener<ChatClientEvents[K]>): () => void {
    return this.events.once(event, listener);
  }

  off<K extends keyof ChatClientEvents>(event: K, listener: Listener<ChatClientEvents[K]>): void {
    this.events.off(event, listener);
  }

  /**
   * Loads the outbox and cursors from storage and connects. Resolves after the first connection has caught up
   * (`synced`); rejects if the user is signed out or the client closed first. Until then it keeps retrying in the
   * background, so an app that starts offline can call it and not wait.
   */
  connect(): Promise<void> {
    if (this.firstSync) return this.firstSync;
    if (this.closed) return Promise.reject(new ChatApiError("unavailable", "the client was closed"));
    this.firstSync = new Promise<void>((resolve, reject) => {
      this.settleFirstSync = { resolve, reject };
    });
    // Handled here so an app that does not await connect() gets no unhandled rejection; one that awaits still sees it.
    this.firstSync.catch(() => undefined);
    void this.start();
    return this.firstSync;
  }

  /**
   * Queues a message for `conversationId` and resolves once the outbox storage holds it. The gateway gets it as soon
   * as there is a connection, in order with the other sends to that conversation, retried until acknowledged; the
   * outcome comes as `sent` or `sendFailed`, and the stored message as a `message`.
   */
  send(
    conversationId: string,
    content: string,
    options: { replyToId?: string | undefined; attachmentIds?: string[] | undefined } = {},
  ): Promise<OutboxEntry> {
    return this.outbox.enqueue(conversationId, content, undefined, options);
  }

  /**
   * Uploads a file straight to the gateway's storage (never through a gateway pod), for `send(..., {attachmentIds})`.
   * Progress comes through `onProgress` where the platform reports it (XMLHttpRequest in browsers).
   */
  uploadFile(file: UploadSource, options: UploadOptions = {}): Promise<UploadedFile> {
    return uploadFile(this.api, file, options);
  }

  /**
   * Replaces a message's content (the sender's own, within the gateway's edit window). Queued in order with the
   * user's other changes and retried until acknowledged; resolves with the message as the gateway answered it, or
   * rejects with a ChatApiError it refused it with (`forbidden`, `conflict`, ...). See message-changes.ts for why a
   * retried change is applied once.
   */
  editMessage(conversationId: string, messageId: string, content: string): Promise<Message> {
    return this.changeQueue.enqueue({ event: "message:edit", payload: { conversationId, messageId, content } });
  }

  /** Deletes a message (the user's own, or any as a group admin); resolves with the tombstone. */
  deleteMessage(conversationId: string, messageId: string): Promise<Message> {
    return this.changeQueue.enqueue({ event: "message:delete", payload: { conversationId, messageId } });
  }

  /** Adds (`on`, the default) or removes the user's reaction with one emoji. */
  react(conversationId: string, messageId: string, emoji: string, on = true): Promise<Message> {
    return this.changeQueue.enqueue({ event: "message:react", payload: { conversationId, messageId, emoji, on } });
  }

  /** The change cursor sync sends for a conversation: every change up to it has been applied. */
  changeCursor(conversationId: string): number {
    return this.changes.cursor(conversationId);
  }

  /** Stops retrying an unsent message. Returns false when it is no longer in the outbox. */
  cancelSend(clientMsgId: string): Promise<boolean> {
    return this.outbox.cancel(clientMsgId);
  }

  /** Messages sent but not yet acknowledged, oldest first (to show as "sending"). */
  pendingSends(): OutboxEntry[] {
    return this.outbox.pending();
  }

  /** The user has read `conversationId` up to `seq`. Coalesced, and sent when connected. */
  markRead(conversationId: string, seq: number): void {
    this.reads.note(conversationId, seq);
  }

  /** Call on every keystroke with true and on blur/send with false; the SDK throttles and stops it when idle. */
  setTyping(conversationId: string, isTyping: boolean): void {
    if (this.currentState !== "connected") return;
    this.typingThrottle.set(conversationId, isTyping);
  }

  /** Follows these users' presence: the current state and every change arrive as `presence` events. */
  subscribePresence(userIds: string[]): void {
    this.presence.follow(userIds);
  }

  /** Stops reporting these users' presence (the gateway forgets them on the next reconnect). */
  unsubscribePresence(userIds: string[]): void {
    this.presence.unfollow(userIds);
  }

  /** The last presence known for a subscribed user. */
  presenceOf(userId: string): PresenceState | undefined {
    return this.presence.stateOf(userId);
  }

  /**
   * Accepts a message request sent to this user (`conversation.request.state === "pending"`, requested by the other
   * member): the requester now sees this user's presence, typing and receipts. Resolves with the updated conversation.
   */
  acceptConversation(conversationId: string): Promise<Conversation> {
    return this.api.acceptConversation(conversationId);
  }

  /** The highest seq of `conversationId` delivered to the app with nothing missing below it. */
  cursor(conversationId: string): number {
    return this.sequencer.cursor(conversationId);
  }

  /**
   * Connects again after `displaced` (this connection then displaces the user's oldest one). Does nothing while
   * connected or connecting, after `close()`, or once signed out.
   */
  reconnect(): void {
    if (this.closed || this.tokens.signedOut || !this.socket || this.socket.connected || !this.displacedNow) return;
    this.displacedNow = false;
    this.setState("reconnecting");
    this.scheduleReconnect(0);
  }

  /** Ends this login on the gateway (when the SDK holds the refresh token), then closes the client. */
  async logout(): Promise<void> {
    const refreshToken = this.tokens.currentRefreshToken;
    try {
      if (refreshToken) await this.api.logout(refreshToken);
    } finally {
      this.tokens.signOut("logged_out");
      await this.close();
    }
  }

  /** Disconnects and stops every timer; resolves once the outbox and cursors are saved. */
  async close(): Promise<void> {
    if (!this.closed) {
      this.closed = true;
      this.epoch += 1;
      this.timers.clearAll();
      this.typingThrottle.reset();
      this.delivered.close();
      this.reads.close();
      this.tokens.close();
      this.socket?.disconnect();
      this.setState("disconnected");
      this.settleFirstSync?.reject(new ChatApiError("unavailable", "the client was closed"));
      this.settleFirstSync = null;
    }
    await Promise.all([this.outbox.close(), this.cursorWriter.flush()]);
  }

  private async start(): Promise<void> {
    this.setState("connecting");
    await Promise.all([
      this.outbox.ready(),
      this.cursorStorage.load().then(
        (cursors) => this.sequencer.restore(cursors),
        (error: unknown) => this.reportError("storage", error),
      ),
    ]);
    if (this.closed || this.tokens.signedOut) return;
    const { options } = this;
    const socket: ChatSocket = io(options.url, {
      autoConnect: false,
      forceNew: true,
      path: options.path ?? "/socket.io",
      ...(options.transports ? { transports: options.transports } : {}),
      reconnection: true,
      reconnectionDelay: options.reconnectionDelay ?? 1000,
      reconnectionDelayMax: options.reconnectionDelayMax ?? 10_000,
      randomizationFactor: options.randomizationFactor ?? 0.5,
      // A function, so every reconnection presents the freshest token rather than the one we started with.
      auth: (cb) => {
        this.tokens.getAccessToken().then(
          (token) => {
            this.socketToken = token;
            this.handshakeTokenFresh = true;
            cb({ token });
          },
          // The refresh could not get through (offline?): try the last token; a refusal lands in connect_error.
          () => {
            this.handshakeTokenFresh = false;
            cb({ token: this.tokens.lastKnownToken() ?? "" });
          },
        );
      },
    });
    this.socket = socket;
    this.listen(socket);
    socket.connect();
  }

  private listen(socket: ChatSocket): void {
    socket.on("connect", () => this.handleConnect());
    socket.on("disconnect", (reason) => this.handleDisconnect(reason));
    socket.on("connect_error", (error) => this.handleConnectError(socket, error));
    socket.on("message:new", (message) => this.ingest([message]));
    socket.on("message:updated", (message) => this.receiveUpdate(message));
    socket.on("conversation:read", (event) => {
      if (event.userId === this.ownUserId) this.reads.heldAt(event.conversationId, event.seq);
      this.events.emit("conversationRead", event);
    });
    socket.on("conversation:delivered", (event) => {
      if (event.userId === this.ownUserId) this.delivered.heldAt(event.conversationId, event.seq);
      this.events.emit("conversationDelivered", event);
    });
    socket.on("conversation:markers", (event) => this.receiveMarkers(event));
    socket.on("conversation:updated", (event) => {
      this.events.emit("conversationUpdated", event.conversation);
      this.presence.watchAgainIfAccepted(event.conversation);
    });
    socket.on("typing", (event) => this.events.emit("typing", event));
    socket.on("presence", (event) => this.presence.receive(event));
    socket.on("auth:expiring", () => void this.renewSocketToken());
    // The gateway lost Redis for a while, so live delivery may have skipped messages: catch up as after a reconnect.
    socket.on("sync:required", () => void this.syncUntilCaughtUp(this.epoch));
    socket.on("session:ended", ({ reason }) => {
      this.sessionEndReason = reason;
      if (reason === "logged_out" || reason === "revoked" || reason === "suspended") this.tokens.signOut(reason);
      // An expired token: start the refresh now so the reconnect after the coming disconnect can use it.
      else if (reason === "token_expired") this.tokens.refresh().catch(() => undefined);
    });
  }

  private handleConnect(): void {
    this.epoch += 1;
    const epoch = this.epoch;
    this.everConnected = true;
    this.reconnectAttempts = 0;
    this.authRejections = 0;
    this.sessionEndReason = null;
    this.displacedNow = false;
    this.setState("connected");
    this.outbox.setOnline(true);
    this.changeQueue.setOnline(true);
    this.delivered.setOnline(true);
    this.reads.setOnline(true);
    this.presence.connected(epoch);
    void this.syncUntilCaughtUp(epoch);
    this.learnUserId();
  }

  private learnUserId(): void {
    if (this.ownUserId !== null || this.learningUserId) return;
    this.learningUserId = true;
    this.api.me().then(
      (user) => {
        this.ownUserId = user.id;
        this.learningUserId = false;
      },
      () => {
        this.learningUserId = false; // asked again on the next connection
      },
    );
  }

  private handleDisconnect(reason: string): void {
    this.epoch += 1;
    this.outbox.setOnline(false);
    this.changeQueue.setOnline(false);
    this.delivered.setOnline(false);
    this.reads.setOnline(false);
    this.typingThrottle.reset();
    if (this.closed || this.tokens.signedOut) {
      this.setState("disconnected");
      return;
    }
    this.setState("reconnecting");
    // socket.io-client reconnects by itself after a network failure, but not when the server closed the socket on
    // purpose; then `session:ended` (sent just before) says whether and how to come back.
    if (reason !== "io server disconnect") return;
    const ended = this.sessionEndReason;
    this.sessionEndReason = null;
    if (ended === "too_many_sockets") {
      // Reconnecting would displace the user's oldest device, which would reconnect and displace this one: a loop.
      this.displacedNow = true;
      this.setState("disconnected");
      this.events.emit("displaced", { reason: "too_many_sockets" });
    } else if (ended === "draining") {
      // The whole pod's clients are told at once: spread them over the first reconnection delay.
      this.scheduleReconnect(Math.random() * (this.options.reconnectionDelay ?? 1000));
    } else if (ended === "token_expired") {
      this.tokens.refresh().then(
        () => this.scheduleReconnect(0),
        () => this.scheduleReconnect(this.nextReconnectDelay()),
      );
    } else {
      this.scheduleReconnect(this.nextReconnectDelay());
    }
  }

  private handleConnectError(socket: ChatSocket, error: Error): void {
    if (this.closed || this.tokens.signedOut) return;
    this.setState(this.everConnected ? "reconnecting" : "connecting");
    // While the socket is active, socket.io-client retries by itself (the network, not the gateway, failed).
    if (socket.active) return;
    if (error.message !== "unauthorized") {
      this.scheduleReconnect(this.nextReconnectDelay());
      return;
    }
    // Refusing a stale token (the refresh endpoint was unreachable) says nothing about the login itself.
    if (this.handshakeTokenFresh) this.authRejections += 1;
    if (this.authRejections > MAX_AUTH_REJECTIONS) {
      this.tokens.signOut("unauthorized", new ChatApiError("unauthorized", "the gateway refused every fresh token"));
      return;
    }
    // A refresh that fails with unauthorized signs out inside the token manager; otherwise try again.
    this.tokens.refresh().then(
      () => this.scheduleReconnect(this.authRejections === 1 ? 0 : this.nextReconnectDelay()),
      () => {
        if (!this.tokens.signedOut) this.scheduleReconnect(this.nextReconnectDelay());
      },
    );
  }

  private handleSignedOut(reason: SignedOutReason, error?: ChatApiError): void {
    this.epoch += 1;
    this.timers.clearAll();
    this.outbox.setOnline(false);
    this.changeQueue.setOnline(false);
    this.delivered.setOnline(false);
    this.reads.setOnline(false);
    this.typingThrottle.reset();
    this.socket?.disconnect();
    this.setState("disconnected");
    this.settleFirstSync?.reject(error ?? new ChatApiError("unauthorized", `signed out (${reason})`));
    this.settleFirstSync = null;
    this.events.emit("signedOut", error ? { reason, error } : { reason });
  }

  private scheduleReconnect(delayMs: number): void {
    this.timers.set(() => {
      if (!this.closed && !this.tokens.signedOut && this.socket && !this.socket.connected) this.socket.connect();
    }, delayMs);
  }

  private nextReconnectDelay(): number {
    this.reconnectAttempts += 1;
    const { reconnectionDelay = 1000, reconnectionDelayMax = 10_000 } = this.options;
    return backoffDelay(this.reconnectAttempts, {
      initialDelayMs: reconnectionDelay,
      maxDelayMs: reconnectionDelayMax,
    });
  }

  /** Pages through `sync` with the current cursors until the gateway has nothing more, then reports `synced`. */
  private async syncUntilCaughtUp(epoch: number): Promise<void> {
    const conversations = new Map<string, Conversation>();
    while (epoch === this.epoch) {
      const cursors = this.sequencer.cursors();
      // Object cursors: the messages after each seq, and the changes after each change cursor.
      const withChanges = Object.fromEntries(
        Object.entries(cursors).map(([id, seq]) => [id, { seq, changes: this.changes.cursor(id) }]),
      );
      const changesBefore = { ...withChanges };
      const outcome = await retrying(
        () => this.request("sync", { cursors: withChanges, limit: this.options.syncPageSize ?? 500 }),
        { timers: this.timers, active: () => epoch === this.epoch },
      );
      if (outcome.status === "failed") return this.events.emit("error", { operation: "sync", error: outcome.error });
      if (outcome.status === "stopped" || epoch !== this.epoch) return;
      const page = outcome.value;
      for (const conversation of page.conversations) conversations.set(conversation.id, conversation);
      this.ingest(page.messages);
      for (const message of page.changes ?? []) this.applyUpdate(message);
      for (const [id, changeSeq] of Object.entries(page.changeCursors ?? {})) this.changes.advance(id, changeSeq);
      const advanced =
        Object.entries(this.sequencer.cursors()).some(([id, seq]) => seq > (cursors[id] ?? 0)) ||
        Object.entries(changesBefore).some(([id, c]) => this.changes.cursor(id) > c.changes);
      // Without progress another page would be the same page; whatever is missing, the gap fill fetches.
      if (!page.hasMore || !advanced) break;
    }
    if (epoch !== this.epoch) return;
    this.events.emit("synced", { conversations: [...conversations.values()] });
    this.settleFirstSync?.resolve();
    this.settleFirstSync = null;
  }

  /**
   * A live change: applied at once (the app never sees `changeRanges`), its change numbers counted; a hole in them
   * that stays open is filled by a sync.
   */
  private receiveUpdate(update: MessageUpdate): void {
    const { changeRanges, ...message } = update;
    this.applyUpdate(message);
    this.changes.noteLive(message.conversationId, changeRanges ?? [[message.changeSeq, message.changeSeq]]);
    this.watchChangeHole(message.conversationId);
  }

  /**
   * Holes in a conversation's change numbers are normal for a moment (pods coalesce reactions and deliver out of
   * order): one is lost only if the cursor has not reached, after `gapFillDelayMs`, the highest number seen when the
   * hole was found. Holes found meanwhile are checked after their own wait, so a steady storm never syncs needlessly.
   */
  private watchChangeHole(conversationId: string): void {
    if (this.changeHoleChecks.has(conversationId)) return;
    const mark = this.changes.holeMark(conversationId);
    if (mark === undefined) return;
    this.changeHoleChecks.add(conversationId);
    this.timers.set(() => {
      this.changeHoleChecks.delete(conversationId);
      if (this.changes.reached(conversationId, mark)) this.watchChangeHole(conversationId);
      else void this.syncUntilCaughtUp(this.epoch);
    }, this.options.gapFillDelayMs ?? 1000);
  }

  /** Any copy of a changed message (live, sync, an ack): given to the app when it is newer than what it has. */
  private applyUpdate(message: Message): void {
    const delivered = message.seq <= this.sequencer.cursor(message.conversationId);
    if (this.changes.accept(message, delivered)) this.events.emit("messageUpdated", message);
  }

  private sendChange(change: ChangeRequest): Promise<{ message: Message }> {
    switch (change.event) {
      case "message:edit":
        return this.request("message:edit", change.payload);
      case "message:delete":
        return this.request("message:delete", change.payload);
      case "message:react":
        return this.request("message:react", change.payload);
    }
  }

  /** Coalesced receipts: the per-member shape becomes the usual per-member events, so apps need only one path. */
  private receiveMarkers(event: MarkersEvent): void {
    const { conversationId } = event;
    if ("readCounts" in event) {
      this.events.emit("conversationReceipts", {
        conversationId,
        readCounts: event.readCounts,
        deliveredCounts: event.deliveredCounts,
      });
      return;
    }
    const own = this.ownUserId;
    if (own !== null) {
      const delivered = event.delivered[own];
      if (delivered !== undefined) this.delivered.heldAt(conversationId, delivered);
      const read = event.read[own];
      if (read !== undefined) this.reads.heldAt(conversationId, read);
    }
    for (const [userId, seq] of Object.entries(event.delivered))
      this.events.emit("conversationDelivered", { conversationId, userId, seq });
    for (const [userId, seq] of Object.entries(event.read))
      this.events.emit("conversationRead", { conversationId, userId, seq });
  }

  /** Every message from any source comes through here, and leaves in order and once. */
  private ingest(messages: readonly Message[]): void {
    const touched = new Set<string>();
    let deliveredAny = false;
    for (const message of messages) {
      touched.add(message.conversationId);
      for (const accepted of this.sequencer.accept(message)) {
        // A change that arrived before the message itself: the app gets the newest copy, once.
        const ready = this.changes.latest(accepted);
        deliveredAny = true;
        this.events.emit("message", ready);
        // Sending moved the sender's own read and delivered markers to the message: nothing to send for it.
        if (ready.senderId === this.ownUserId) {
          this.delivered.heldAt(ready.conversationId, ready.seq);
          this.reads.heldAt(ready.conversationId, ready.seq);
        } else this.delivered.note(ready.conversationId, ready.seq);
      }
    }
    if (deliveredAny) void this.cursorWriter.write();
    for (const conversationId of touched) {
      if (this.sequencer.gap(conversationId)) this.scheduleGapFill(conversationId);
    }
  }

  /**
   * Fetches a hole over HTTP (`GET …/messages?after=cursor`), not with `sync`: a sync counts every conversation it
   * does not list as cursor 0, so a one-conversation sync would replay all the others; this touches only the one.
   */
  private scheduleGapFill(conversationId: string): void {
    if (this.gapFills.has(conversationId) || this.closed) return;
    this.gapFills.add(conversationId);
    this.timers.set(() => {
      void this.fillGap(conversationId).finally(() => this.gapFills.delete(conversationId));
    }, this.options.gapFillDelayMs ?? 1000);
  }

  private async fillGap(conversationId: string): Promise<void> {
    const stillMissing = () => !this.closed && !this.tokens.signedOut && this.sequencer.gap(conversationId) !== null;
    while (stillMissing()) {
      let after = 0;
      const outcome = await retrying(
        () => {
          after = this.sequencer.cursor(conversationId);
          return this.api.getMessages(conversationId, { after, limit: GAP_FILL_PAGE });
        },
        // A refused token is the token manager's business (it refreshes or signs out), not a reason to spin here.
        { timers: this.timers, active: stillMissing, giveUpOn: (error) => error.code === "unauthorized" },
      );
      if (outcome.status === "failed") {
        return this.events.emit("error", { operation: "gap-fill", error: outcome.error, conversationId });
      }
      if (outcome.status === "stopped") return;
      this.ingest(outcome.value.messages);
      // No progress: leave the rest to the next message or the next sync instead of spinning.
      if (this.sequencer.cursor(conversationId) === after) return;
    }
  }

  /** Answers `auth:expiring`: a token newer than the socket's if there is one, else a refresh. */
  private async renewSocketToken(): Promise<void> {
    try {
      const current = await this.tokens.getAccessToken();
      if (current !== this.socketToken) this.sendTokenToSocket(current);
      else await this.tokens.refresh(); // onAccessToken sends it
    } catch (err) {
      this.reportError("auth-refresh", err);
    }
  }

  /** Extends the live connection with a new token, so it is not cut at the old token's expiry. */
  private sendTokenToSocket(token: string): void {
    if (this.currentState !== "connected") return;
    this.request("auth:refresh", { token }).then(
      () => {
        this.socketToken = token;
      },
      // Not fatal: at expiry the gateway disconnects and the reconnection presents the new token.
      (err: unknown) => this.reportError("auth-refresh", err),
    );
  }

  /**
   * One typing event per conversation in flight at a time: the gateway handles events concurrently, and a `false`
   * overtaking its `true` would leave the others seeing "typing…" until their own timeout.
   */
  private sendTyping(conversationId: string, isTyping: boolean): void {
    const previous = this.typingChains.get(conversationId) ?? Promise.resolve();
    // Typing is a hint: a lost one is not worth a retry or an error event.
    const next = previous
      .then(() => this.request("typing", { conversationId, isTyping }))
      .then(
        () => undefined,
        () => undefined,
      );
    this.typingChains.set(conversationId, next);
    void next.then(() => {
      if (this.typingChains.get(conversationId) === next) this.typingChains.delete(conversationId);
    });
  }

  private request<E extends RequestEvent>(event: E, payload: RequestPayload<E>): Promise<RequestResult<E>> {
    return request(this.socket, event, payload, this.options.ackTimeoutMs ?? 10_000);
  }

  private reportError(operation: ChatClientErrorEvent["operation"], error: unknown): void {
    const asError =
      operation === "storage" ? (error instanceof Error ? error : new Error(String(error))) : toChatApiError(error);
    this.events.emit("error", { operation, error: asError });
  }

  private setState(state: ConnectionState): void {
    if (state === this.currentState) return;
    const previous = this.currentState;
    this.currentState = state;
    this.events.emit("state", { state, previous });
  }
}
