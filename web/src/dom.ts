// A tiny element builder. Strings always become text nodes, so user data can never turn into markup: there is no
// innerHTML anywhere in the page.

type Child = Node | string | number | null | undefined | false;

export interface Props {
  class?: string;
  /** Attributes set with setAttribute (aria-*, data-*, type, …); `false` or undefined leaves one out. */
  attrs?: Record<string, string | boolean | undefined>;
  on?: { [K in keyof HTMLElementEventMap]?: (event: HTMLElementEventMap[K]) => void };
}

export function h<K extends keyof HTMLElementTagNameMap>(
  tag: K,
  props: Props | null = null,
  ...children: Child[]
): HTMLElementTagNameMap[K] {
  const el = document.createElement(tag);
  if (props?.class) el.className = props.class;
  for (const [name, value] of Object.entries(props?.attrs ?? {})) {
    if (value === true) el.setAttribute(name, "");
    else if (typeof value === "string") el.setAttribute(name, value);
  }
  for (const [name, listener] of Object.entries(props?.on ?? {})) {
    el.addEventListener(name, listener as EventListener);
  }
  append(el, children);
  return el;
}

export function append(parent: Node, children: Child[]): void {
  for (const child of children) {
    if (child === null || child === undefined || child === false) continue;
    parent.appendChild(typeof child === "object" ? child : document.createTextNode(String(child)));
  }
}

export function byId<T extends HTMLElement = HTMLElement>(id: string): T {
  const el = document.getElementById(id);
  if (!el) throw new Error(`#${id} is missing from the page`);
  return el as T;
}

/**
 * window.fetch bound to window: the SDK calls the fetch it is given as a method of its own object, and browsers
 * refuse a fetch called on anything but window ("Illegal invocation").
 */
export const boundFetch = (input: string, init: RequestInit): Promise<Response> => window.fetch(input, init);
