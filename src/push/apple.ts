// What an Apple device accepts, shared by FCM's `apns` block and the direct APNs provider. APNs refuses (or
// silently throttles) a data-only push at priority 10: a push is either a visible alert, or a background
// `content-available` push at priority 5 that iOS delivers when it sees fit. The alert carries `mutable-content`, so
// the app's Notification Service Extension may rewrite it (fetch and show the message, localise the text) before it
// is shown; `thread-id` groups a conversation's notifications on the lock screen.
import type { PushNotification } from "./types.js";

/** `alert`: a visible notification (the default); `silent`: a background push the app turns into one itself. */
export type ApplePushStyle = "alert" | "silent";

export interface ApplePush {
  headers: { "apns-push-type": "alert" | "background"; "apns-priority": "10" | "5" };
  /** The JSON body: `aps` plus the notification's own fields, for the app. */
  payload: Record<string, unknown>;
}

export function applePush(notification: PushNotification, style: ApplePushStyle): ApplePush {
  const data = Object.fromEntries(Object.entries(notification).filter(([, value]) => value !== undefined));
  if (style === "silent") {
    return {
      headers: { "apns-push-type": "background", "apns-priority": "5" },
      payload: { aps: { "content-available": 1 }, ...data },
    };
  }
  return {
    headers: { "apns-push-type": "alert", "apns-priority": "10" },
    payload: {
      aps: {
        alert: alertText(notification),
        "mutable-content": 1,
        sound: "default",
        "thread-id": notification.conversationId,
      },
      ...data,
    },
  };
}

/** The sender and the message with PUSH_INCLUDE_CONTENT=on; otherwise a count, never what was said. */
function alertText(notification: PushNotification): { title: string; body: string } {
  if (notification.type === "reaction") {
    const who = notification.sender?.displayName ?? "Someone";
    const body = notification.body === undefined ? "" : `: ${notification.body}`;
    return { title: "New reaction", body: `${who} reacted ${notification.emoji} to your message${body}` };
  }
  // A pending message request never shows who wrote or what (message-requests.ts).
  if (notification.request === true) return { title: "Message request", body: "Someone wants to chat with you" };
  const count = notification.count === 1 ? "New message" : `${notification.count} new messages`;
  if (notification.body === undefined) return { title: "New message", body: count };
  const sender = notification.sender?.displayName ?? "New message";
  return { title: notification.title ? `${sender} in ${notification.title}` : sender, body: notification.body };
}
