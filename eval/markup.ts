/**
 * Escaping for the reports. Every value that reaches report.html or results.md goes through the
 * `html` or `md` tagged template, which escapes each interpolation unless it is markup the
 * template built itself: results.json can be edited by anyone, so no string from it is trusted.
 */
import { escapeControls } from '../util/format.js';

type Language = 'html' | 'md';

/** Markup that is already safe in its language: built by a template, or by a serializer that escapes (vega's SVG). */
export class Markup {
  constructor(
    readonly language: Language,
    readonly text: string,
  ) {}
  toString(): string {
    return this.text;
  }
}

/** What a template takes: arbitrary text (escaped), safe markup, or a list of these (in order, joined). */
export type Value = Markup | string | number | boolean | null | undefined | readonly Value[];

function tagged(language: Language, escape: (s: string) => string) {
  const one = (v: Value): string => {
    if (v instanceof Markup) return v.language === language ? v.text : escape(v.text); // HTML is plain text in Markdown and vice versa
    if (Array.isArray(v)) return v.map(one).join('');
    return v === null || v === undefined || v === false ? '' : escape(String(v));
  };
  return (strings: TemplateStringsArray, ...values: Value[]): Markup =>
    new Markup(
      language,
      strings.reduce((out, s, i) => out + s + (i < values.length ? one(values[i]) : ''), ''),
    );
}

const HTML_ENTITIES: Record<string, string> = {
  '&': '&amp;',
  '<': '&lt;',
  '>': '&gt;',
  '"': '&quot;',
  "'": '&#39;',
};

/**
 * Control characters but tab and line breaks, written as visible text (`\u001b`): they are not
 * HTML, and in a results.md shown with `cat` an ESC would be the terminal's escape sequence.
 * (Data sets' class names with them are refused on loading; a results.json can be edited.)
 */
const visibleControls = (s: string) => escapeControls(s, '\t\n\r');

const escapeHtml = (s: string) => visibleControls(s).replace(/[&<>"']/g, (c) => HTML_ENTITIES[c]);

/**
 * Markdown text that stays inside its table cell or list item: line breaks become spaces and
 * every character that starts markup (emphasis, code, links, HTML, table pipes) is backslash-escaped.
 */
const escapeMarkdown = (s: string) =>
  visibleControls(s.replace(/\r\n|[\r\n]/g, ' ')).replace(/[\\`*_[\]<>|~&$]/g, '\\$&');

/** HTML with every interpolation escaped (Markup from another `html` template is kept as is). */
export const html = tagged('html', escapeHtml);

/** Markdown with every interpolation escaped (Markup from another `md` template is kept as is). */
export const md = tagged('md', escapeMarkdown);

/**
 * Vouches for markup made by a serializer that escapes its text itself (vega's SVG renderer); the
 * control characters it keeps become visible text.
 */
export const trustedHtml = (text: string) => new Markup('html', visibleControls(text));
