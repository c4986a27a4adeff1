/**
 * BAdam's partition: which parameters form each block, by dotted name prefix.
 *
 * A block is a list of prefixes; a parameter belongs to a block when its dotted name starts with
 * one of the block's prefixes (`model.layers.3.` holds `model.layers.3.mlp.up_proj.weight`).
 * The reference package tests `prefix in name` (a substring); with the dotted, dot-terminated
 * prefixes that inference and LLaMA-Factory produce the two agree, and a prefix that only
 * matches in the middle of a name is reported as matching nothing instead of silently
 * selecting other parameters.
 *
 * `inferBlocks` builds the default partition from the names alone:
 *  1. the layers: every name whose dotted path contains an integer component belongs to the
 *     numbered container before it (`model.layers` in `model.layers.3.mlp.weight`,
 *     `roberta.encoder.layer` in `roberta.encoder.layer.3.output.dense.bias`; only the outermost
 *     integer of a name counts, so `model.layers.3.experts.7.` is layer 3). When several
 *     containers exist (an encoder-decoder's `encoder.block` and `decoder.block`) the one with the
 *     most elements wins, the first seen on a tie; the others' parameters fall into the "rest"
 *     below. Pass `blockPrefixList` to train both stacks. One block per element, ascending index.
 *  2. with `includeEmbedding`, the parameters outside the layers whose path has a component
 *     containing `embed` (`model.embed_tokens.`, `roberta.embeddings.`) form the FIRST block.
 *  3. with `includeLmHead`, everything else outside the layers (final norm, `lm_head`,
 *     `classifier`) forms the LAST block, each name under its shortest prefix that selects no
 *     parameter outside that block (`model.norm.`, `lm_head.`, `classifier.`).
 * Without the two flags those parameters are in no block: frozen for the whole run.
 */
import { ValueError } from '../../errors';
import type { Tensor } from '../../tensor/tensor';
import { describe } from '../../util/describe';

export interface InferBlocksOptions {
  /** The embedding as its own first block (reference: include_embedding). Default false. */
  includeEmbedding?: boolean;
  /** Everything outside the layers and the embedding as one last block (reference: include_lm_head). Default false. */
  includeLmHead?: boolean;
}

/** One block of a resolved partition. */
export interface BlockInfo {
  /** The block's position in the partition (what startBlock and the events call a block). */
  index: number;
  prefixes: string[];
  /** The parameters it selects, in the model's order. */
  names: string[];
  /** Their total number of elements. */
  numParams: number;
}

const isIndex = (s: string) => /^\d+$/.test(s);

/** The numbered layer container of the names: its dotted path ('' for a root ModuleList) and sorted indices. */
export function findLayerContainer(names: readonly string[]): { path: string; indices: number[] } | null {
  const containers = new Map<string, Set<number>>();
  for (const name of names) {
    const parts = name.split('.');
    // an index followed by at least one more component: `<container>.<int>.<rest>`
    for (let j = 0; j < parts.length - 1; j++) {
      if (!isIndex(parts[j])) continue;
      const path = parts.slice(0, j).join('.');
      let set = containers.get(path);
      if (!set) containers.set(path, (set = new Set()));
      set.add(Number(parts[j]));
      break; // the outermost integer only
    }
  }
  let best: { path: string; indices: number[] } | null = null;
  for (const [path, set] of containers) {
    if (!best || set.size > best.indices.length) best = { path, indices: [...set].sort((a, b) => a - b) };
  }
  return best;
}

const layerPrefix = (path: string, index: number) => (path === '' ? `${index}.` : `${path}.${index}.`);

/**
 * The default BAdam partition of `names` (see the file comment): [embedding block], one block per
 * layer in ascending order, [rest block]. Throws a ValueError when no numbered container exists.
 */
export function inferBlocks(names: readonly string[], options: InferBlocksOptions = {}): string[][] {
  const op = 'inferBlocks';
  if (!Array.isArray(names) || !names.every((n) => typeof n === 'string')) {
    throw new ValueError(op, 'names must be a list of dotted parameter names');
  }
  const container = findLayerContainer(names);
  if (!container) {
    const example = names.length ? ` (e.g. '${names[0]}')` : '';
    throw new ValueError(
      op,
      `found no numbered layer container such as 'model.layers.0.' among ${names.length} parameter names${example}; pass blockPrefixList to partition this model`,
    );
  }
  const layerPrefixes = container.indices.map((i) => layerPrefix(container.path, i));
  const inLayer = (n: string) => layerPrefixes.some((p) => n.startsWith(p));
  const outside = names.filter((n) => !inLayer(n));

  // the embedding: up to the first component containing 'embed'
  const embedPrefixes: string[] = [];
  for (const name of outside) {
    if (embedPrefixes.some((p) => name.startsWith(p))) continue;
    const parts = name.split('.');
    const k = parts.findIndex((part) => part.toLowerCase().includes('embed'));
    if (k < 0) continue;
    embedPrefixes.push(k < parts.length - 1 ? `${parts.slice(0, k + 1).join('.')}.` : name);
  }
  const inEmbedding = (n: string) => embedPrefixes.some((p) => n.startsWith(p));

  // the rest: each name under its shortest prefix that selects nothing outside the rest
  const rest = outside.filter((n) => !inEmbedding(n));
  const restSet = new Set(rest);
  const others = names.filter((n) => !restSet.has(n));
  const restPrefixes: string[] = [];
  for (const name of rest) {
    if (restPrefixes.some((p) => name.startsWith(p))) continue;
    const parts = name.split('.');
    let prefix = name;
    for (let k = 0; k < parts.length - 1; k++) {
      const p = `${parts.slice(0, k + 1).join('.')}.`;
      if (!others.some((o) => o.startsWith(p))) {
        prefix = p;
        break;
      }
    }
    restPrefixes.push(prefix);
  }

  const blocks: string[][] = [];
  if (options.includeEmbedding && embedPrefixes.length > 0) blocks.push(embedPrefixes);
  for (const p of layerPrefixes) blocks.push([p]);
  if (options.includeLmHead && restPrefixes.length > 0) blocks.push(restPrefixes);
  return blocks;
}

/** A hint for a prefix that matches no name at its start but occurs inside one. */
function prefixHint(prefix: string, names: readonly string[]): string {
  const inside = names.find((n) => n.includes(prefix));
  if (inside) {
    const at = inside.indexOf(prefix);
    return `; prefixes match the start of a name: did you mean '${inside.slice(0, at + prefix.length)}'?`;
  }
  return names.length ? ` (names look like '${names[0]}')` : '';
}

/**
 * Checks a partition against the model's names and resolves it: an empty block, a prefix that
 * is not a non-empty string or matches no parameter, and a parameter selected by two blocks are
 * ValueErrors naming them. Returns each block's names and parameter count.
 */
export function resolvePartition(op: string, named: readonly [string, Tensor][], blockPrefixList: unknown): BlockInfo[] {
  const names = named.map(([n]) => n);
  if (!Array.isArray(blockPrefixList)) {
    throw new ValueError(op, `blockPrefixList must be a list of blocks, each a list of name prefixes, got ${describe(blockPrefixList)}`);
  }
  if (blockPrefixList.length === 0) throw new ValueError(op, 'the partition has no blocks: give at least one block of name prefixes');
  const owner = new Map<string, { block: number; prefix: string }>();
  const blocks: BlockInfo[] = blockPrefixList.map((block: unknown, index) => {
    if (!Array.isArray(block)) {
      throw new ValueError(op, `block ${index} must be a list of name prefixes, got ${describe(block)} (blockPrefixList is a list of lists: [['model.layers.0.'], ...])`);
    }
    if (block.length === 0) throw new ValueError(op, `block ${index} is empty: every block needs at least one name prefix`);
    const prefixes = block.map((p: unknown, j) => {
      if (typeof p !== 'string' || p === '') throw new ValueError(op, `block ${index} prefix ${j} must be a non-empty string, got ${describe(p)}`);
      return p;
    });
    const mine: string[] = [];
    for (const prefix of prefixes) {
      const matched = names.filter((n) => n.startsWith(prefix));
      if (matched.length === 0) throw new ValueError(op, `block ${index}: prefix '${prefix}' matches no parameter${prefixHint(prefix, names)}`);
      for (const n of matched) {
        const prev = owner.get(n);
        if (prev && prev.block !== index) {
          throw new ValueError(
            op,
            `parameter '${n}' is claimed by block ${prev.block} (prefix '${prev.prefix}') and block ${index} (prefix '${prefix}'): blocks must not overlap`,
          );
        }
        if (!prev) owner.set(n, { block: index, prefix });
      }
    }
    for (const n of names) if (owner.get(n)?.block === index) mine.push(n);
    return { index, prefixes, names: mine, numParams: 0 };
  });
  const numel = new Map(named.map(([n, p]) => [n, p.numel]));
  for (const b of blocks) b.numParams = b.names.reduce((s, n) => s + (numel.get(n) ?? 0), 0);
  return blocks;
}

/** The names selected by `activeModules` prefixes (each must match something), in the model's order. */
export function resolveActiveModules(op: string, named: readonly [string, Tensor][], activeModules: unknown): string[] {
  if (activeModules === undefined) return [];
  if (!Array.isArray(activeModules)) throw new ValueError(op, `activeModules must be a list of name prefixes, got ${describe(activeModules)}`);
  const names = named.map(([n]) => n);
  const selected = new Set<string>();
  activeModules.forEach((p: unknown, j) => {
    if (typeof p !== 'string' || p === '') throw new ValueError(op, `activeModules[${j}] must be a non-empty string, got ${describe(p)}`);
    const matched = names.filter((n) => n.startsWith(p));
    if (matched.length === 0) throw new ValueError(op, `activeModules: prefix '${p}' matches no parameter${prefixHint(p, names)}`);
    for (const n of matched) selected.add(n);
  });
  return names.filter((n) => selected.has(n));
}
