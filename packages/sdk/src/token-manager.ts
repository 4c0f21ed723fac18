// Keeps a valid access token at hand: refreshes it shortly before it expires, on demand when the gateway says it is
// expiring, and at most one refresh at a time, because refresh tokens rotate and presenting a spent one revokes the
// whole login.
import type { AuthResult } from "@chat-gateway/protocol";
import { backoffDelay } from "./backoff.js";
import { type Clock, systemClock, TimerSet, type TimerHandle } from "./clock.js";
import { ChatApiError, toChatApiError } from "./errors.js";
import { jwtExpiresAt } from "./jwt.js";

/** A session as the auth endpoints return it; `expiresIn` in seconds. */
export type AuthTokens = Pick<AuthResult, "accessToken" | "refreshToken" | "expiresIn">;

/**
 * For apps that manage tokens themselves. `refresh()` must return a new access token, or throw an error whose `code`
 * is `"unauthorized"` (a ChatApiError from the SDK's HTTP API is) when the user has to sign in again.
 */
export interface TokenProvider {
  getToken(): Promise<string>;
  refresh(): Promise<string>;
}

export type TokenSource = AuthTokens | TokenProvider;

/** Why the app has to sign the user in again: the gateway's `session:ended` reasons, or a refused refresh. */
export type SignedOutReason = "token_expired" | "logged_out" | "revoked" | "suspended" | "unauthorized";

export interface TokenManagerOptions {
  source: TokenSource;
  /** Exchanges a refresh token for a new pair (`POST /v1/auth/refresh`); required when `source` is a token pair. */
  refreshTokens?: (refreshToken: string) => Promise<AuthTokens>;
  /** A new access token after a refresh. */
  onAccessToken?: (accessToken: string) => void;
  /** A rotated token pair: the app must store the new refresh token, the old one is spent. */
  onTokens?: (tokens: AuthTokens) => void;
  onSignedOut?: (reason: SignedOutReason, error?: ChatApiError) => void;
  clock?: Clock;
  random?: () => number;
}

/** A token closer than this to expiry is refreshed before use rather than sent to be refused. */
const EXPIRY_MARGIN_MS = 5_000;

/**
 * How long to wait before refreshing a token valid for `remainingMs` more: with 30% of its life left, but never more
 * than 90 s early, so a 15-minute token is refreshed after 13.5 minutes and a 20-second one after 14 seconds. That is
 * just before the gateway's own `auth:expiring` warning (a minute, or a quarter of the life, before expiry), so the
 * live socket has its new token before the warning would go out.
 */
export function refreshDelayMs(remainingMs: number): number {
  if (remainingMs <= 0) return 0;
  return Math.round(remainingMs - Math.min(90_000, remainingMs * 0.3));
}

function isProvider(source: TokenSource): source is TokenProvider {
  return typeof (source as TokenProvider).getToken === "function";
}

export class TokenManager {
  private accessToken: string | null = null;
  private expiresAt: number | undefined;
  private refreshToken: string | undefined;
  private inFlight: Promise<string> | null = null;
  private signedOutReason: SignedOutReason | null = null;
  private refreshTimer: TimerHandle | undefined;
  private failures = 0;
  private readonly clock: Clock;
  private readonly timers: TimerSet;

  constructor(private readonly options: TokenManagerOptions) {
    this.clock = options.clock ?? systemClock;
    this.timers = new TimerSet(this.clock);
    const { source } = options;
    if (!isProvider(source)) {
      if (!options.refreshTokens) throw new TypeError("refreshTokens is required with a token pair");
      this.accept(source.accessToken, this.clock.now() + source.expiresIn * 1000);
      this.refreshToken = source.refreshToken;
    }
  }

  get signedOut(): SignedOutReason | null {
    return this.signedOutReason;
  }

  /** The refresh token the SDK currently holds (a token pair source only), for logout. */
  get currentRefreshToken(): string | undefined {
    return this.refreshToken;
  }

  /** When the current access token expires, epoch ms, if known. */
  get accessTokenExpiresAt(): number | undefined {
    return this.expiresAt;
  }

  /** A token good for at least a few more seconds, refreshing first when needed. */
  async getAccessToken(): Promise<string> {
    this.assertSignedIn();
    // A refresh under way was started because the gateway or the clock said the current token is done for.
    if (this.inFlight) return this.inFlight;
    if (isProvider(this.options.source)) {
      const token = await this.options.source.getToken();
      if (token !== this.accessToken) this.accept(token, jwtExpiresAt(token));
    }
    if (this.accessToken !== null && !this.expiresSoon()) return this.accessToken;
    return this.refresh();
  }

  /** The token the SDK last had, even if stale: better than nothing when a refresh cannot get through right now. */
  lastKnownToken(): string | null {
    return this.accessToken;
  }

  /** Gets a new access token now; concurrent callers share one refresh. */
  refresh(): Promise<string> {
    if (this.signedOutReason) return Promise.reject(this.signedOutError());
    this.inFlight ??= this.runRefresh().finally(() => {
      this.inFlight = null;
    });
    return this.inFlight;
  }

  /** Stops refreshing for good and tells the app, once. */
  signOut(reason: SignedOutReason, error?: ChatApiError): void {
    if (this.signedOutReason) return;
    this.signedOutReason = reason;
    this.timers.clearAll();
    this.options.onSignedOut?.(reason, error);
  }

  close(): void {
    this.timers.clearAll();
    this.refreshTimer = undefined;
  }

  private async runRefresh(): Promise<string> {
    const { source } = this.options;
    try {
      let token: string;
      if (isProvider(source)) {
        token = await source.refresh();
        this.accept(token, jwtExpiresAt(token));
      } else {
        const exchange = this.options.refreshTokens;
        if (!exchange) throw new TypeError("refreshTokens is required with a token pair");
        const tokens = await exchange(this.refreshToken ?? "");
        this.refreshToken = tokens.refreshToken;
        token = tokens.accessToken;
        this.accept(token, this.clock.now() + tokens.expiresIn * 1000);
        this.options.onTokens?.({ ...tokens });
      }
      this.failures = 0;
      this.options.onAccessToken?.(token);
      return token;
    } catch (err) {
      const error = toChatApiError(err);
      if (error.code === "unauthorized") {
        this.signOut("unauthorized", error);
      } else if (!this.signedOutReason) {
        // The network or the gateway is down: the current token may well outlive the outage, so keep trying.
        this.failures += 1;
        this.schedule(backoffDelay(this.failures, {}, this.options.random));
      }
      throw error;
    }
  }

  private accept(token: string, expiresAt: number | undefined): void {
    this.accessToken = token;
    this.expiresAt = expiresAt;
    if (expiresAt !== undefined) this.schedule(refreshDelayMs(expiresAt - this.clock.now()));
  }

  private schedule(delayMs: number): void {
    this.timers.clear(this.refreshTimer);
    this.refreshTimer = this.timers.set(() => {
      this.refreshTimer = undefined;
      // Failures are handled (and retried) inside runRefresh; nobody awaits a scheduled refresh.
      this.refresh().catch(() => undefined);
    }, delayMs);
  }

  private expiresSoon(): boolean {
    return this.expiresAt !== undefined && this.expiresAt - this.clock.now() < EXPIRY_MARGIN_MS;
  }

  private assertSignedIn(): void {
    if (this.signedOutReason) throw this.signedOutError();
  }

  private signedOutError(): ChatApiError {
    return new ChatApiError("unauthorized", `signed out (${this.signedOutReason ?? "unknown"})`);
  }
}
