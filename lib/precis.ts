// PRECIS (RFC 8264) and the two profiles of RFC 8265 that XMPP addresses
// use (RFC 7622): UsernameCaseMapped for localparts and OpaqueString for
// resourceparts. No maintained npm library implements PRECIS, so the string
// classes are derived here from Unicode properties as RFC 8264 §8 and §9 say,
// on the Unicode version of Node's ICU; Bidi_Class, which JavaScript regexes
// do not expose, comes from bidi-js.
//
// One deviation, on the strict side: ZERO WIDTH NON-JOINER is accepted only
// after a virama. RFC 5892 A.1 also accepts it between letters of certain
// Joining_Types (Persian words), a property JavaScript cannot see.

import bidiJs from "bidi-js";

/** A code point's derived property in both string classes (RFC 8264 §8). */
const enum Prop {
  Unknown = 0,
  /** Valid in IdentifierClass and FreeformClass. */
  Valid,
  /** ID_DIS / FREE_PVAL: valid in FreeformClass only. */
  FreeOnly,
  /** Valid only where RFC 5892 Appendix A's rule for it holds. */
  ContextJ,
  ContextO,
  Disallowed,
}

// RFC 5892 §2.6: the exceptions, decided before any other rule.
const EXCEPTIONS = new Map<number, Prop>([
  ...[0x00df, 0x03c2, 0x06fd, 0x06fe, 0x0f0b, 0x3007].map((cp) => [cp, Prop.Valid] as const),
  ...[0x00b7, 0x0375, 0x05f3, 0x05f4, 0x30fb].map((cp) => [cp, Prop.ContextO] as const),
  ...range(0x0660, 0x0669).map((cp) => [cp, Prop.ContextO] as const),
  ...range(0x06f0, 0x06f9).map((cp) => [cp, Prop.ContextO] as const),
  ...[0x0640, 0x07fa, 0x302e, 0x302f, 0x3031, 0x3032, 0x3033, 0x3034, 0x3035, 0x303b].map((cp) => [cp, Prop.Disallowed] as const),
]);

function range(from: number, to: number): number[] {
  return Array.from({ length: to - from + 1 }, (_, i) => from + i);
}

const UNASSIGNED = /^\p{Cn}$/u;
const IGNORABLE = /^[\p{Default_Ignorable_Code_Point}\p{Noncharacter_Code_Point}]$/u;
const CONTROL = /^\p{Cc}$/u;
const LETTER_DIGITS = /^[\p{Ll}\p{Lu}\p{Lo}\p{Nd}\p{Lm}\p{Mn}\p{Mc}]$/u;
// OtherLetterDigits, Spaces, Symbols, Punctuation (RFC 8264 §9.12-9.15).
const FREE_ONLY = /^[\p{Lt}\p{Nl}\p{No}\p{Me}\p{Zs}\p{Sm}\p{Sc}\p{Sk}\p{So}\p{Pc}\p{Pd}\p{Ps}\p{Pe}\p{Pi}\p{Pf}\p{Po}]$/u;

// Hangul_Syllable_Type L, V and T (RFC 8264 §9.9), which regexes cannot name.
function oldHangulJamo(cp: number): boolean {
  return (cp >= 0x1100 && cp <= 0x11ff) || (cp >= 0xa960 && cp <= 0xa97c) || (cp >= 0xd7b0 && cp <= 0xd7c6) || (cp >= 0xd7cb && cp <= 0xd7fb);
}

/** RFC 8264 §8, in its order. */
function derive(cp: number): Prop {
  const exception = EXCEPTIONS.get(cp);
  if (exception !== undefined) return exception;
  const ch = String.fromCodePoint(cp);
  if (UNASSIGNED.test(ch) && !IGNORABLE.test(ch)) return Prop.Disallowed;
  if (cp >= 0x21 && cp <= 0x7e) return Prop.Valid; // ASCII7
  if (cp === 0x200c || cp === 0x200d) return Prop.ContextJ;
  if (oldHangulJamo(cp) || IGNORABLE.test(ch) || CONTROL.test(ch)) return Prop.Disallowed;
  if (ch.normalize("NFKC") !== ch) return Prop.FreeOnly; // HasCompat
  if (LETTER_DIGITS.test(ch)) return Prop.Valid;
  if (FREE_ONLY.test(ch)) return Prop.FreeOnly;
  return Prop.Disallowed;
}

// Filled as code points are met: a megabyte of address space, of which only
// the pages of scripts in use are ever touched.
const props = new Uint8Array(0x110000);

function prop(cp: number): Prop {
  let p = props[cp] as Prop;
  if (p === Prop.Unknown) props[cp] = p = derive(cp);
  return p;
}

// Canonical_Combining_Class is not exposed to JavaScript either, but canonical
// reordering reveals it: a mark of class 9 (Virama) sorts after one of class 8
// (U+3099) and before one of class 10 (U+05B0).
function isVirama(ch: string | undefined): boolean {
  if (ch === undefined || ch.normalize("NFD") !== ch) return false;
  return (ch + "\u3099").normalize("NFD") !== ch + "\u3099" && ("\u05b0" + ch).normalize("NFD") !== "\u05b0" + ch;
}

const GREEK = /^\p{Script=Greek}$/u;
const HEBREW = /^\p{Script=Hebrew}$/u;
const KANA_HAN = /[\p{Script=Hiragana}\p{Script=Katakana}\p{Script=Han}]/u;

/** What the rules for KATAKANA MIDDLE DOT and the two kinds of Arabic digits ask of the whole string, found once. */
interface Whole {
  kanaHan: boolean;
  arabicIndic: boolean;
  extendedArabicIndic: boolean;
}

function whole(cps: string[]): Whole {
  const has = (lo: number, hi: number) => cps.some((c) => c.codePointAt(0)! >= lo && c.codePointAt(0)! <= hi);
  return { kanaHan: cps.some((c) => KANA_HAN.test(c)), arabicIndic: has(0x0660, 0x0669), extendedArabicIndic: has(0x06f0, 0x06f9) };
}

/** RFC 5892 Appendix A: whether the contextual code point at `i` of `cps` may stand there. */
function contextHolds(cps: string[], i: number, all: () => Whole): boolean {
  const cp = cps[i]!.codePointAt(0)!;
  const before = cps[i - 1];
  const after = cps[i + 1];
  switch (cp) {
    case 0x200c: // ZERO WIDTH NON-JOINER (see the note at the top)
    case 0x200d: // ZERO WIDTH JOINER
      return isVirama(before);
    case 0x00b7: // MIDDLE DOT: only in "l·l" (Catalan)
      return before === "l" && after === "l";
    case 0x0375: // GREEK LOWER NUMERAL SIGN: before a Greek character
      return after !== undefined && GREEK.test(after);
    case 0x05f3: // HEBREW PUNCTUATION GERESH and GERSHAYIM: after a Hebrew character
    case 0x05f4:
      return before !== undefined && HEBREW.test(before);
    case 0x30fb: // KATAKANA MIDDLE DOT: with some Hiragana, Katakana or Han
      return all().kanaHan;
    default:
      // ARABIC-INDIC and EXTENDED ARABIC-INDIC digits must not mix.
      return !(all().arabicIndic && all().extendedArabicIndic);
  }
}

/** Whether every code point of `s` is valid in the class (FreeformClass when `free`). */
function inClass(s: string, free: boolean): boolean {
  const cps = Array.from(s);
  let found: Whole | undefined;
  const all = () => (found ??= whole(cps));
  for (let i = 0; i < cps.length; i++) {
    const p = prop(cps[i]!.codePointAt(0)!);
    if (p === Prop.Valid || (p === Prop.FreeOnly && free)) continue;
    if ((p === Prop.ContextJ || p === Prop.ContextO) && contextHolds(cps, i, all)) continue;
    return false;
  }
  return true;
}

const bidi = (bidiJs as unknown as typeof bidiJs.default)();
const RTL_CLASSES = new Set(["R", "AL", "AN"]);
const RTL_ALLOWED = new Set(["R", "AL", "AN", "EN", "ES", "CS", "ET", "ON", "BN", "NSM"]);
const LTR_ALLOWED = new Set(["L", "EN", "ES", "CS", "ET", "ON", "BN", "NSM"]);

// Where every code point of Bidi_Class R, AL or AN lies (Hebrew to Arabic
// Extended, their presentation forms, and the right-to-left ranges of planes
// 1 and 1E); RLM too, though PRECIS refuses it.
const MAYBE_RTL = /[\u0590-\u08ff\u200f\ufb1d-\ufdff\ufe70-\ufeff\u{10800}-\u{10fff}\u{1e800}-\u{1efff}]/u;

/** The Bidi Rule of RFC 5893 §2, which binds strings with right-to-left characters in them. */
function bidiRuleHolds(s: string): boolean {
  if (!MAYBE_RTL.test(s)) return true;
  const classes = Array.from(s, (ch) => bidi.getBidiCharTypeName(ch));
  if (!classes.some((c) => RTL_CLASSES.has(c))) return true;
  const first = classes[0];
  const rtl = first === "R" || first === "AL";
  if (!rtl && first !== "L") return false; // rule 1
  if (!classes.every((c) => (rtl ? RTL_ALLOWED : LTR_ALLOWED).has(c))) return false; // rules 2, 5
  let end = classes.length - 1;
  while (end > 0 && classes[end] === "NSM") end--;
  const last = classes[end]!;
  if (rtl) return ["R", "AL", "EN", "AN"].includes(last) && !(classes.includes("EN") && classes.includes("AN")); // rules 3, 4
  return last === "L" || last === "EN"; // rule 6
}

// Fullwidth and halfwidth forms: the code points whose decomposition type is
// <wide> or <narrow>, mapped to their decomposition (a single code point).
const WIDE_OR_NARROW = /[\u3000\uff01-\uffee]/;
const WIDE_OR_NARROW_ALL = new RegExp(WIDE_OR_NARROW.source, "g");

function widthMapped(s: string): string {
  return WIDE_OR_NARROW.test(s) ? s.replace(WIDE_OR_NARROW_ALL, (c) => c.normalize("NFKC")) : s;
}
const NON_ASCII_SPACE = /(?! )\p{Zs}/gu;

/**
 * Applies one profile's rules until the result is stable: RFC 8264 §7 gives
 * up, and so refuses the string, if three more rounds do not settle it.
 */
function enforce(input: string, rules: (s: string) => string): string | null {
  let s = input;
  for (let round = 0; round < 4; round++) {
    const next = rules(s);
    if (next === s) return s;
    s = next;
  }
  return null;
}

function usernameRules(s: string): string {
  return widthMapped(s).toLowerCase().normalize("NFC");
}

function opaqueRules(s: string): string {
  return s.replace(NON_ASCII_SPACE, " ").normalize("NFC");
}

/**
 * The UsernameCaseMapped profile (RFC 8265 §3.3): width-mapped, lowercased,
 * NFC, IdentifierClass, the Bidi Rule. Null when the string is not a valid
 * username (empty included).
 */
export function usernameCaseMapped(input: string): string | null {
  const prepared = widthMapped(input);
  if (!inClass(prepared, false)) return null;
  const out = enforce(prepared, usernameRules);
  return out && inClass(out, false) && bidiRuleHolds(out) ? out : null;
}

/**
 * The OpaqueString profile (RFC 8265 §4.2): non-ASCII spaces mapped to
 * U+0020, NFC, FreeformClass; case and width kept. Null when the string is
 * not valid (empty included).
 */
export function opaqueString(input: string): string | null {
  if (!inClass(input, true)) return null;
  const out = enforce(input, opaqueRules);
  return out && inClass(out, true) ? out : null;
}
