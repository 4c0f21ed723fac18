// What counts as "one emoji" for a reaction: exactly one grapheme cluster (Intl.Segmenter, so skin tones, ZWJ
// families and flags stay one), which is pictographic or presented as emoji. Plain letters, digits and symbols such
// as "#" or "©" written without the emoji presentation selector are refused: they are text, not reactions.
const segmenter = new Intl.Segmenter(undefined, { granularity: "grapheme" });
const PICTOGRAPHIC = /\p{Extended_Pictographic}|\p{Emoji_Presentation}/u;
/** A keycap (digit, # or * with U+20E3) or a flag (two regional indicators) is emoji without being pictographic. */
const KEYCAP_OR_FLAG = /^(?:[0-9#*]\uFE0F?\u20E3|\p{Regional_Indicator}{2})$/u;
/** Longer than any real emoji sequence (the longest ZWJ families are about 11 code points). */
const MAX_EMOJI_CODE_UNITS = 32;

export function isSingleEmoji(value: string): boolean {
  if (value.length === 0 || value.length > MAX_EMOJI_CODE_UNITS) return false;
  let count = 0;
  for (const _ of segmenter.segment(value)) if (++count > 1) return false;
  return PICTOGRAPHIC.test(value) || KEYCAP_OR_FLAG.test(value);
}
