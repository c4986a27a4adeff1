/**
 * Profiles name the parameters a node read (`inputNames`) by their dotted module paths, for a
 * custom module too, without a nameParameters() call: registration names them. A name given by
 * hand is kept; a tied parameter keeps its first path; a module registered into a parent (or a
 * parameter registered late into a module already in a tree) is renamed from the top.
 */
import { Linear, Module, ModuleList, manualSeed, profile, randn, tensor, type Tensor } from '../../src';

class Block extends Module {
  readonly proj: Linear;
  readonly scale: Tensor;

  constructor() {
    super();
    this.proj = this.registerModule('proj', new Linear(4, 4, { dtype: 'float64' }));
    this.scale = this.registerParameter('scale', tensor([1, 2, 3, 4], { dtype: 'float64' }));
  }

  forward(x: Tensor): Tensor {
    return this.proj.forward(x).mul(this.scale).relu();
  }
}

class TwoBlocks extends Module {
  readonly blocks: ModuleList<Block>;

  constructor() {
    super();
    this.blocks = this.registerModule('blocks', new ModuleList<Block>());
    this.blocks.push(new Block());
    this.blocks.push(new Block());
  }

  forward(x: Tensor): Tensor {
    return this.blocks.at(1).forward(this.blocks.at(0).forward(x));
  }
}

describe('parameter names without nameParameters()', () => {
  test("a custom module's profile names the parameters each node read, forward and backward", () => {
    manualSeed(1);
    const model = new TwoBlocks();
    const x = randn([2, 4], { dtype: 'float64' });
    const fwd = profile(() => model.forward(x).sum());
    const names = fwd.report.recorded.flatMap((r) => r.inputNames.filter((n): n is string => n !== undefined));
    expect(names).toEqual([
      'blocks.0.proj.weight',
      'blocks.0.proj.bias',
      'blocks.0.scale',
      'blocks.1.proj.weight',
      'blocks.1.proj.bias',
      'blocks.1.scale',
    ]);
    const bwd = profile(() => fwd.result.backward());
    const linear = bwd.report.backwardNodes.filter((n) => n.op === 'linear').map((n) => n.inputNames);
    expect(linear).toEqual([
      [undefined, 'blocks.1.proj.weight', 'blocks.1.proj.bias'],
      [undefined, 'blocks.0.proj.weight', 'blocks.0.proj.bias'],
    ]);
    // the same names as namedParameters() gives, which is what nameParameters() would set
    expect(model.namedParameters().map(([n, p]) => [n, p.name])).toEqual(model.namedParameters().map(([n]) => [n, n]));
  });

  test('a module used alone names its parameters from itself; registered into a parent, from the parent', () => {
    const block = new Block();
    expect(block.proj.weight.name).toBe('proj.weight');
    expect(block.scale.name).toBe('scale');
    const outer = new Module();
    outer.registerModule('encoder', block);
    expect(block.proj.weight.name).toBe('encoder.proj.weight');
    expect(block.scale.name).toBe('encoder.scale');
  });

  test('a parameter registered late into a module already in a tree gets its full path', () => {
    const model = new TwoBlocks();
    const late = model.blocks.at(1).proj.registerParameter('extra', tensor([0], { dtype: 'float64' }));
    expect(late.name).toBe('blocks.1.proj.extra');
  });

  test('a tied parameter keeps its first path, as namedParameters() lists it', () => {
    class Tied extends Module {
      readonly embed: Linear;
      readonly head: Module;
      constructor() {
        super();
        this.embed = this.registerModule('embed', new Linear(3, 2));
        this.head = this.registerModule('head', new Module());
        this.head.registerParameter('weight', this.embed.weight);
      }
    }
    expect(new Tied().embed.weight.name).toBe('embed.weight');
  });

  test('a name set by hand is kept; nameParameters() still renames everything from its module', () => {
    const block = new Block();
    block.scale.name = 'my_scale';
    const outer = new Module();
    outer.registerModule('enc', block);
    expect(block.scale.name).toBe('my_scale');
    expect(block.proj.weight.name).toBe('enc.proj.weight');
    outer.nameParameters();
    expect(block.scale.name).toBe('enc.scale');
    // once nameParameters() gave it, the name is the tree's again: a new parent renames it
    const top = new Module();
    top.registerModule('model', outer);
    expect(block.scale.name).toBe('model.enc.scale');
  });
});
