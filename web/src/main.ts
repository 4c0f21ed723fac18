// The chat page's entry point: signed in (a stored session) means the chat, otherwise the sign-in form.
import { ChatHttpApi } from "@chat-gateway/sdk";
import { renderAuth } from "./auth-view.js";
import { ChatApp } from "./chat-app.js";
import { boundFetch, byId } from "./dom.js";
import { loadSession, type StoredSession } from "./session.js";

const root = byId("app");

function showChat(session: StoredSession): void {
  const app = new ChatApp(root, session, showSignIn);
  void app.start();
}

function showSignIn(): void {
  renderAuth(root, new ChatHttpApi({ baseUrl: window.location.origin, fetch: boundFetch }), showChat);
}

const session = loadSession();
if (session) showChat(session);
else showSignIn();
