// The signed-in session, kept in localStorage so a reload stays signed in. Tokens rotate on every refresh and a spent
// refresh token revokes the whole login, so tabs of one browser must not refresh at once with the same token: the
// refresh runs under a Web Lock, and a tab that finds a newer pair in storage (another tab refreshed) just uses it.
import {
  ChatApiError,
  type AuthSession,
  type ChatHttpApi,
  type PublicUser,
  type TokenProvider,
} from "@chat-gateway/sdk";

const KEY = "chat-gateway.session";
/** A stored token closer than this to expiry is refreshed rather than used. */
const FRESH_ENOUGH_MS = 30_000;

export interface StoredSession {
  user: PublicUser;
  accessToken: string;
  refreshToken: string;
  /** Epoch ms when the access token expires. */
  expiresAt: number;
}

export function loadSession(): StoredSession | null {
  try {
    const raw = localStorage.getItem(KEY);
    if (!raw) return null;
    const value = JSON.parse(raw) as Partial<StoredSession>;
    if (!value.user || !value.accessToken || !value.refreshToken || typeof value.expiresAt !== "number") return null;
    return value as StoredSession;
  } catch {
    return null;
  }
}

export function saveSession(session: AuthSession): StoredSession {
  const stored: StoredSession = {
    user: session.user,
    accessToken: session.accessToken,
    refreshToken: session.refreshToken,
    expiresAt: Date.now() + session.expiresIn * 1000,
  };
  localStorage.setItem(KEY, JSON.stringify(stored));
  return stored;
}

export function clearSession(): void {
  localStorage.removeItem(KEY);
}

interface LockManager {
  request<T>(name: string, callback: () => Promise<T>): Promise<T>;
}

function withRefreshLock<T>(work: () => Promise<T>): Promise<T> {
  const locks = (navigator as { locks?: LockManager }).locks;
  // Web Locks need a secure context (https or localhost); elsewhere one tab per browser is the safe use.
  return locks ? locks.request("chat-gateway.refresh", work) : work();
}

/** The SDK's token source: reads the stored pair, and refreshes it once for all tabs. */
export function storedTokenProvider(authApi: ChatHttpApi, user: PublicUser): TokenProvider {
  let lastGiven: string | null = null;
  const current = (): StoredSession => {
    const session = loadSession();
    if (!session || session.user.id !== user.id) throw new ChatApiError("unauthorized", "signed out in another tab");
    return session;
  };
  return {
    async getToken() {
      lastGiven = current().accessToken;
      return lastGiven;
    },
    refresh() {
      const stale = lastGiven;
      return withRefreshLock(async () => {
        const session = current();
        if (session.accessToken !== stale && session.expiresAt - Date.now() > FRESH_ENOUGH_MS) {
          lastGiven = session.accessToken;
          return lastGiven;
        }
        const tokens = await authApi.refresh(session.refreshToken);
        lastGiven = saveSession({ user: session.user, ...tokens }).accessToken;
        return lastGiven;
      });
    },
  };
}
