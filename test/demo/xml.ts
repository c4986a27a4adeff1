/**
 * A small XML parser for the tests of the SVG figures: strict enough to reject what is not
 * well-formed (a browser would refuse to draw it), with a search over the element tree.
 */
export interface XmlElement {
  name: string;
  attrs: Record<string, string>;
  children: XmlElement[];
  text: string;
}

const NAME = '[A-Za-z_:][-A-Za-z0-9_:.]*';
const ENTITY = /&(?:amp|lt|gt|quot|apos|#\d+|#x[0-9a-fA-F]+);/g;

function checkChars(where: string, s: string): void {
  if (s.replace(ENTITY, '').includes('&')) throw new Error(`${where}: a bare '&'`);
  if (s.includes('<')) throw new Error(`${where}: a bare '<'`);
}

const unescape = (s: string) => s.replace(/&lt;/g, '<').replace(/&gt;/g, '>').replace(/&quot;/g, '"').replace(/&apos;/g, "'").replace(/&amp;/g, '&');

/**
 * Parses a document into its element tree, throwing on anything not well-formed: unbalanced or
 * crossed tags, malformed or repeated attributes, bare '<' or '&', text or a second element
 * outside the root.
 */
export function parseXml(doc: string): XmlElement {
  let i = 0;
  const stack: XmlElement[] = [];
  let root: XmlElement | null = null;
  if (doc.startsWith('<?xml')) {
    const end = doc.indexOf('?>');
    if (end < 0) throw new Error('unterminated XML declaration');
    i = end + 2;
  }
  while (i < doc.length) {
    const lt = doc.indexOf('<', i);
    const text = doc.slice(i, lt < 0 ? doc.length : lt);
    if (text.trim() !== '') {
      if (stack.length === 0) throw new Error(`text outside the root element: ${JSON.stringify(text.slice(0, 30))}`);
      checkChars('text', text);
      stack[stack.length - 1].text += unescape(text);
    }
    if (lt < 0) break;
    if (doc.startsWith('<!--', lt)) {
      const end = doc.indexOf('-->', lt);
      if (end < 0) throw new Error('unterminated comment');
      i = end + 3;
      continue;
    }
    const gt = doc.indexOf('>', lt);
    if (gt < 0) throw new Error('unterminated tag');
    const tag = doc.slice(lt + 1, gt);
    i = gt + 1;
    if (tag.startsWith('/')) {
      const name = tag.slice(1).trim();
      const open = stack.pop();
      if (!open || open.name !== name) throw new Error(`</${name}> closes <${open?.name ?? 'nothing'}>`);
      continue;
    }
    const selfClosing = tag.endsWith('/');
    const body = selfClosing ? tag.slice(0, -1) : tag;
    const m = new RegExp(`^(${NAME})`).exec(body);
    if (!m) throw new Error(`bad tag <${tag}>`);
    const el: XmlElement = { name: m[1], attrs: {}, children: [], text: '' };
    let rest = body.slice(m[1].length);
    const attr = new RegExp(`^\\s+(${NAME})\\s*=\\s*("([^"]*)"|'([^']*)')`);
    for (;;) {
      const a = attr.exec(rest);
      if (!a) break;
      const value = a[3] ?? a[4];
      if (a[1] in el.attrs) throw new Error(`attribute ${a[1]} repeated in <${el.name}>`);
      checkChars(`attribute ${a[1]} of <${el.name}>`, value);
      el.attrs[a[1]] = unescape(value);
      rest = rest.slice(a[0].length);
    }
    if (rest.trim() !== '') throw new Error(`malformed attributes in <${el.name}>: ${JSON.stringify(rest.slice(0, 40))}`);
    if (stack.length) stack[stack.length - 1].children.push(el);
    else if (root) throw new Error(`a second root element <${el.name}>`);
    else root = el;
    if (!selfClosing) stack.push(el);
  }
  if (stack.length) throw new Error(`<${stack[stack.length - 1].name}> is never closed`);
  if (!root) throw new Error('no root element');
  return root;
}

export function findAll(el: XmlElement, pred: (e: XmlElement) => boolean, out: XmlElement[] = []): XmlElement[] {
  if (pred(el)) out.push(el);
  for (const c of el.children) findAll(c, pred, out);
  return out;
}
