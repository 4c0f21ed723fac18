// Dates, names and initials as people read them.
import type { PresenceState } from "@chat-gateway/sdk";

const timeFormat = new Intl.DateTimeFormat(undefined, { hour: "2-digit", minute: "2-digit" });
const dayFormat = new Intl.DateTimeFormat(undefined, { month: "short", day: "numeric" });
const fullDayFormat = new Intl.DateTimeFormat(undefined, { weekday: "long", month: "long", day: "numeric" });

function sameDay(a: Date, b: Date): boolean {
  return a.getFullYear() === b.getFullYear() && a.getMonth() === b.getMonth() && a.getDate() === b.getDate();
}

export function clockTime(iso: string): string {
  return timeFormat.format(new Date(iso));
}

/** For the conversation list: the time today, "Yesterday", or a short date. */
export function listTime(iso: string, now = new Date()): string {
  const date = new Date(iso);
  if (sameDay(date, now)) return timeFormat.format(date);
  const yesterday = new Date(now);
  yesterday.setDate(now.getDate() - 1);
  if (sameDay(date, yesterday)) return "Yesterday";
  return dayFormat.format(date);
}

/** The label of a day separator in the message pane. */
export function dayLabel(iso: string, now = new Date()): string {
  const date = new Date(iso);
  if (sameDay(date, now)) return "Today";
  const yesterday = new Date(now);
  yesterday.setDate(now.getDate() - 1);
  if (sameDay(date, yesterday)) return "Yesterday";
  return fullDayFormat.format(date);
}

export function dayKey(iso: string): string {
  const d = new Date(iso);
  return `${d.getFullYear()}-${d.getMonth()}-${d.getDate()}`;
}

export function presenceLabel(state: PresenceState | undefined, now = new Date()): string {
  if (!state) return "";
  if (state.online) return "online";
  if (!state.lastSeenAt) return "offline";
  const seen = new Date(state.lastSeenAt);
  const minutes = Math.round((now.getTime() - seen.getTime()) / 60_000);
  if (minutes < 1) return "last seen just now";
  if (sameDay(seen, now)) return `last seen today at ${timeFormat.format(seen)}`;
  return `last seen ${dayFormat.format(seen)} at ${timeFormat.format(seen)}`;
}

export function initials(name: string): string {
  const words = name.trim().split(/\s+/).filter(Boolean);
  const letters = words.length > 1 ? [words[0], words[words.length - 1]] : [name.trim()];
  return letters
    .map((w) => Array.from(w ?? "")[0] ?? "")
    .join("")
    .slice(0, 2)
    .toUpperCase();
}

// Dark enough for white initials to stay readable (contrast over 4.5:1 on every one).
const AVATAR_COLORS = ["#4338ca", "#0f766e", "#b45309", "#be185d", "#1d4ed8", "#7e22ce", "#047857", "#b91c1c"];

export function avatarColor(seed: string): string {
  let hash = 0;
  for (let i = 0; i < seed.length; i++) hash = (hash * 31 + seed.charCodeAt(i)) | 0;
  return AVATAR_COLORS[Math.abs(hash) % AVATAR_COLORS.length] ?? "#4338ca";
}
