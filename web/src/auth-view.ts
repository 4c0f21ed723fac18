// Sign in / create account. On success the session is stored and handed to the chat.
import { ChatApiError, ChatHttpApi } from "@chat-gateway/sdk";
import { h } from "./dom.js";
import { icon } from "./icons.js";
import { saveSession, type StoredSession } from "./session.js";

type Mode = "login" | "register";

function describeError(error: unknown, mode: Mode): string {
  if (!(error instanceof ChatApiError)) return "Something went wrong. Please try again.";
  switch (error.code) {
    case "unauthorized":
      return "Wrong username or password.";
    case "conflict":
      return "That username is taken. Try another one.";
    case "rate_limited":
      return "Too many attempts. Wait a moment and try again.";
    case "network_error":
    case "timeout":
    case "unavailable":
      return "Can't reach the server. Check your connection and try again.";
    case "bad_request": {
      const first = (error.details as { field?: string; problem?: string }[] | undefined)?.[0];
      if (first?.field && first.problem)
        return `${first.field[0]?.toUpperCase() ?? ""}${first.field.slice(1)}: ${first.problem}.`;
      return mode === "register" ? "Check the username and password." : error.message;
    }
    default:
      return error.message;
  }
}

export function renderAuth(root: HTMLElement, api: ChatHttpApi, onSignedIn: (session: StoredSession) => void): void {
  let mode: Mode = "login";
  const error = h("p", { class: "form-error", attrs: { role: "alert", id: "auth-error" } });
  const username = h("input", {
    attrs: { id: "auth-username", name: "username", autocomplete: "username", required: true, spellcheck: "false" },
  });
  const password = h("input", {
    attrs: { id: "auth-password", name: "password", type: "password", required: true, minlength: "8" },
  });
  const displayName = h("input", { attrs: { id: "auth-display-name", name: "displayName", autocomplete: "name" } });
  const nameField = h(
    "div",
    { class: "field", attrs: { hidden: true } },
    h("label", { attrs: { for: "auth-display-name" } }, "Display name"),
    displayName,
  );
  const submit = h("button", { class: "btn btn-primary btn-block", attrs: { type: "submit" } }, "Sign in");
  const loginTab = h("button", { class: "tab", attrs: { type: "button", role: "tab", "aria-selected": "true" } });
  const registerTab = h("button", { class: "tab", attrs: { type: "button", role: "tab", "aria-selected": "false" } });
  loginTab.textContent = "Sign in";
  registerTab.textContent = "Create account";

  const setMode = (next: Mode) => {
    mode = next;
    loginTab.setAttribute("aria-selected", String(mode === "login"));
    registerTab.setAttribute("aria-selected", String(mode === "register"));
    nameField.hidden = mode === "login";
    submit.textContent = mode === "login" ? "Sign in" : "Create account";
    password.autocomplete = mode === "login" ? "current-password" : "new-password";
    error.textContent = "";
  };
  loginTab.addEventListener("click", () => setMode("login"));
  registerTab.addEventListener("click", () => setMode("register"));

  const form = h(
    "form",
    {
      class: "auth-form",
      attrs: { "aria-labelledby": "auth-title", novalidate: true },
      on: {
        submit: (event) => {
          event.preventDefault();
          error.textContent = "";
          if (!username.value.trim() || password.value.length < 8) {
            error.textContent = "Enter a username and a password of at least 8 characters.";
            return;
          }
          submit.disabled = true;
          const credentials = { username: username.value.trim(), password: password.value };
          const name = displayName.value.trim();
          const call =
            mode === "login"
              ? api.login({ ...credentials, deviceName: navigator.userAgent.slice(0, 64) })
              : api.register(name ? { ...credentials, displayName: name } : credentials);
          call.then(
            (session) => onSignedIn(saveSession(session)),
            (err: unknown) => {
              error.textContent = describeError(err, mode);
              submit.disabled = false;
            },
          );
        },
      },
    },
    h("div", { class: "tabs", attrs: { role: "tablist" } }, loginTab, registerTab),
    h("div", { class: "field" }, h("label", { attrs: { for: "auth-username" } }, "Username"), username),
    nameField,
    h("div", { class: "field" }, h("label", { attrs: { for: "auth-password" } }, "Password"), password),
    error,
    submit,
  );
  setMode("login");

  root.replaceChildren(
    h(
      "main",
      { class: "auth" },
      h(
        "section",
        { class: "auth-card" },
        h("div", { class: "brand" }, h("span", { class: "brand-mark" }, icon("chat")), "Relay"),
        h("h1", { attrs: { id: "auth-title" } }, "Chat with your people"),
        h("p", { class: "muted" }, "Messages arrive on every device, in order, even after a bad connection."),
        form,
      ),
    ),
  );
  username.focus();
}
