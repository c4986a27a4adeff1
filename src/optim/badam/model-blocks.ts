/**
 * A model's parameters as BlockOptimizer sees them: the partition into blocks (partition.ts),
 * the activeModules trained with every block, and what each block makes trainable.
 */
import type { Tensor } from '../../tensor/tensor';
import { inferBlocks, resolveActiveModules, resolvePartition, type BlockInfo } from './partition';
import type { BlockOptimizerOptions } from './block-options';

export class ModelBlocks {
  /** Each block's index, prefixes, parameter names and parameter count. */
  readonly partition: BlockInfo[];
  /** The names of activeModules' parameters. */
  readonly activeNames: string[];
  private readonly activeNameSet: Set<string>;
  /** Each block's parameter names, as a Set (paramsOf runs at every switch). */
  private readonly blockNames: Set<string>[];

  /** `named`: every parameter of the model; throws a ValueError naming `op` for a bad partition. */
  constructor(
    op: string,
    readonly named: readonly [string, Tensor][],
    options: Pick<BlockOptimizerOptions, 'blockPrefixList' | 'includeEmbedding' | 'includeLmHead' | 'activeModules'>,
  ) {
    const prefixList: unknown =
      options.blockPrefixList === undefined
        ? inferBlocks(
            named.map(([n]) => n),
            { includeEmbedding: options.includeEmbedding, includeLmHead: options.includeLmHead },
          )
        : options.blockPrefixList;
    this.partition = resolvePartition(op, named, prefixList);
    this.activeNames = resolveActiveModules(op, named, options.activeModules);
    this.activeNameSet = new Set(this.activeNames);
    this.blockNames = this.partition.map((b) => new Set(b.names));
  }

  /** The number of blocks. */
  get count(): number {
    return this.partition.length;
  }

  /** The trainable [name, param] pairs of block b: its parameters, then activeModules' others. */
  paramsOf(b: number): [string, Tensor][] {
    const inBlock = this.blockNames[b];
    const first = this.named.filter(([n]) => inBlock.has(n));
    const extra = this.named.filter(([n]) => this.activeNameSet.has(n) && !inBlock.has(n));
    return [...first, ...extra];
  }

  /** The parameters some block or activeModules trains (the others are frozen for the whole run). */
  used(): [string, Tensor][] {
    const used = new Set([...this.partition.flatMap((b) => b.names), ...this.activeNames]);
    return this.named.filter(([n]) => used.has(n));
  }

  /** The names of the parameters in no block and not in activeModules: frozen for the whole run. */
  frozenNames(): string[] {
    const used = new Set(this.used().map(([n]) => n));
    return this.named.filter(([n]) => !used.has(n)).map(([n]) => n);
  }
}
