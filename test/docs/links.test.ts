/**
 * The docs' links and pictures cannot rot either: every relative link in README.md and
 * docs/*.md points at a file that exists (and, with a #fragment, at a heading of that file, by
 * GitHub's anchor rules), and every SVG in docs/ is well-formed XML that some page shows.
 */
import { existsSync, readFileSync, readdirSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';

const root = resolve(__dirname, '../..');
const PAGES = ['README.md', ...readdirSync(join(root, 'docs')).filter((f) => f.endsWith('.md')).sort().map((f) => `docs/${f}`)];

/** Markdown without its fenced code blocks and inline code spans (links there are not links). */
function prose(text: string): string {
  const blank = (s: string) => s.replace(/[^\n]/g, ''); // keep the line count, so line numbers stay right
  return text.replace(/^(\s*)(`{3,}|~{3,})[^\n]*\n[\s\S]*?\n\s*\2[^\n]*$/gm, blank).replace(/`[^`\n]*`/g, '');
}

/** GitHub's heading anchors: lowercase, punctuation dropped, spaces to hyphens, -1, -2 for repeats. */
function anchors(file: string): Set<string> {
  const text = readFileSync(join(root, file), 'utf8').replace(/^(\s*)(`{3,}|~{3,})[^\n]*\n[\s\S]*?\n\s*\2[^\n]*$/gm, '');
  const seen = new Map<string, number>();
  const out = new Set<string>();
  for (const m of text.matchAll(/^#{1,6}\s+(.+?)\s*#*\s*$/gm)) {
    const base = m[1]
      .toLowerCase()
      .replace(/[^\p{L}\p{N}\s_-]/gu, '')
      .replace(/\s/g, '-');
    const n = seen.get(base) ?? 0;
    seen.set(base, n + 1);
    out.add(n === 0 ? base : `${base}-${n}`);
  }
  return out;
}

interface Link {
  page: string;
  line: number;
  target: string;
}

function links(page: string): Link[] {
  const text = prose(readFileSync(join(root, page), 'utf8'));
  const out: Link[] = [];
  // [text](target) and ![alt](target); link text may span lines
  for (const m of text.matchAll(/!?\[[^\]]*\]\(\s*<?([^)\s>]+)>?(?:\s+"[^"]*")?\s*\)/g)) {
    const line = text.slice(0, m.index).split('\n').length;
    out.push({ page, line, target: m[1] });
  }
  return out;
}

const all = PAGES.flatMap(links).filter((l) => !/^[a-z][a-z0-9+.-]*:/i.test(l.target)); // not http:, mailto:, ...

test('the pages have relative links to check', () => {
  expect(all.length).toBeGreaterThan(10);
});

test.each(all.map((l) => [`${l.page}:${l.line} -> ${l.target}`, l] as const))('%s resolves', (_, link) => {
  const [path, fragment] = link.target.split('#');
  const file = path === '' ? join(root, link.page) : resolve(dirname(join(root, link.page)), decodeURIComponent(path));
  const where = `${link.page}:${link.line}: link to ${link.target}`;
  if (!existsSync(file)) throw new Error(`${where}: ${relative(root, file)} does not exist`);
  if (fragment !== undefined && file.endsWith('.md')) {
    const known = anchors(relative(root, file));
    if (!known.has(fragment)) throw new Error(`${where}: no heading with anchor #${fragment} in ${relative(root, file)} (anchors: ${[...known].join(', ')})`);
  }
  if (fragment === undefined) expect(statSync(file).isFile() || statSync(file).isDirectory()).toBe(true);
});

/**
 * A small well-formedness check (no XML parser ships with Node): one root element, every tag
 * closed in order, attributes quoted and not repeated, `&` only in entities, no text outside
 * the root.
 */
function checkXml(xml: string): string | null {
  let s = xml.replace(/^\uFEFF/, '');
  s = s.replace(/^<\?xml[^?]*\?>/, '');
  const stack: string[] = [];
  let roots = 0;
  const token = /<!--[\s\S]*?-->|<!\[CDATA\[[\s\S]*?\]\]>|<\/?([A-Za-z_][\w:.-]*)((?:\s+[A-Za-z_][\w:.-]*\s*=\s*(?:"[^"<]*"|'[^'<]*'))*)\s*(\/?)>|([^<]+)|(<)/g;
  for (const m of s.matchAll(token)) {
    const [whole, name, attrs, selfClose, text, stray] = m;
    const at = `at offset ${m.index}`;
    if (stray) return `a '<' that starts no valid tag, comment or CDATA ${at}: ${JSON.stringify(s.slice(m.index, (m.index ?? 0) + 40))}`;
    if (text !== undefined) {
      if (stack.length === 0 && text.trim() !== '') return `text outside the root element ${at}`;
      const bad = /&(?!(?:amp|lt|gt|quot|apos|#\d+|#x[0-9a-fA-F]+);)/.exec(text);
      if (bad) return `a bare '&' in text ${at}`;
      continue;
    }
    if (whole.startsWith('<!--') || whole.startsWith('<![CDATA[')) continue;
    if (attrs) {
      const names = [...attrs.matchAll(/([A-Za-z_][\w:.-]*)\s*=/g)].map((a) => a[1]);
      const dup = names.find((n, i) => names.indexOf(n) !== i);
      if (dup) return `attribute '${dup}' repeated on <${name}> ${at}`;
      if (/&(?!(?:amp|lt|gt|quot|apos|#\d+|#x[0-9a-fA-F]+);)/.test(attrs)) return `a bare '&' in the attributes of <${name}> ${at}`;
    }
    if (whole.startsWith('</')) {
      const open = stack.pop();
      if (open !== name) return `</${name}> closes <${open ?? 'nothing'}> ${at}`;
    } else if (!selfClose) {
      if (stack.length === 0) roots++;
      stack.push(name);
    } else if (stack.length === 0) roots++;
  }
  if (stack.length > 0) return `<${stack[stack.length - 1]}> is never closed`;
  if (roots !== 1) return `expected one root element, found ${roots}`;
  return null;
}

const svgs = readdirSync(join(root, 'docs')).filter((f) => f.endsWith('.svg'));

test('the checker rejects malformed XML', () => {
  expect(checkXml('<svg><g></svg>')).toMatch(/closes/);
  expect(checkXml('<svg a="1" a="2"/>')).toMatch(/repeated/);
  expect(checkXml('<svg><text>a & b</text></svg>')).toMatch(/&/);
  expect(checkXml('<svg x=1/>')).toMatch(/valid tag/);
  expect(checkXml('<svg/><svg/>')).toMatch(/one root/);
  expect(checkXml('<?xml version="1.0"?>\n<svg xmlns="http://www.w3.org/2000/svg"><!-- c --><text>a &amp; b</text></svg>\n')).toBeNull();
});

test.each(svgs)('docs/%s is well-formed SVG, and a page shows it', (svg) => {
  const xml = readFileSync(join(root, 'docs', svg), 'utf8');
  const problem = checkXml(xml);
  if (problem) throw new Error(`docs/${svg}: ${problem}`);
  expect(xml).toMatch(/<svg[^>]*xmlns="http:\/\/www\.w3\.org\/2000\/svg"/);
  expect(xml).toMatch(/<svg[^>]*viewBox="/);
  // every url(#id) and href="#id" points at an element of the file
  const ids = new Set([...xml.matchAll(/\sid="([^"]+)"/g)].map((m) => m[1]));
  for (const m of xml.matchAll(/url\(#([^)]+)\)|href="#([^"]+)"/g)) expect([svg, m[1] ?? m[2], ids.has(m[1] ?? m[2])]).toEqual([svg, m[1] ?? m[2], true]);
  const shownBy = PAGES.filter((p) => links(p).some((l) => l.target.split('#')[0].endsWith(svg)));
  expect(shownBy.length).toBeGreaterThan(0);
});
