/**
 * blockgrad quick start: tensors, an op chain and its gradients, a two-layer MLP trained with a
 * hand-written SGD loop, and a profile of one backward that shows what pruning saves.
 *
 *   npm run example        (node scripts/run-ts.mjs examples/quickstart.ts)
 */
import { Tensor, gradcheck, linear, manualSeed, memory, mseLoss, noGrad, profile, randn, tensor, zeros } from '../src';

const fmt = (t: Tensor | null) => JSON.stringify(t?.toArray());

// ---------------------------------------------------------------- 1. tensors and backward
manualSeed(0);
const a = tensor([[1, 2], [3, 4]], { requiresGrad: true }); // number arrays are float32
const b = tensor([0.5, -1], { requiresGrad: true });
const y = a.mul(b).add(1).relu().sum(); // b broadcasts over the rows of a
y.backward();
console.log('1. y = sum(relu(a * b + 1)) =', y.item());
console.log('   dy/da =', fmt(a.grad)); // b where a*b+1 > 0, else 0
console.log('   dy/db =', fmt(b.grad)); // column sums of a where a*b+1 > 0

// ---------------------------------------------------------------- 2. a 2-layer MLP and SGD
// Fit y = x² on 8 points with 1 -> 16 -> 1 (ReLU). linear(x, W, b) = x Wᵀ + b, W is [out, in].
const xs = [-1, -0.75, -0.5, -0.25, 0, 0.25, 0.5, 0.75];
const x = tensor(xs.map((v) => [v]));
const target = tensor(xs.map((v) => [v * v]));
const param = (t: Tensor, name: string) => {
  t.name = name;
  return t.requiresGrad_();
};
let params = [
  param(randn([16, 1]).mul(0.8), 'fc1.weight'), // computed without requiresGrad: still a leaf
  param(zeros([16]), 'fc1.bias'),
  param(randn([1, 16]).mul(0.25), 'fc2.weight'),
  param(zeros([1]), 'fc2.bias'),
];
const forward = ([w1, b1, w2, b2]: Tensor[], input: Tensor) => linear(linear(input, w1, b1).relu(), w2, b2);

const lr = 0.2;
console.log('\n2. MLP 1-16-1 fitting x² on 8 points, SGD lr', lr);
for (let step = 0; step <= 50; step++) {
  const loss = mseLoss(forward(params, x), target);
  loss.backward();
  if (step % 10 === 0) console.log(`   step ${String(step).padStart(2)}  loss ${loss.item().toFixed(5)}`);
  if (step === 50) break;
  // p <- p - lr·grad. There are no in-place ops yet, so each step makes new leaf tensors.
  params = noGrad(() =>
    params.map((p) => {
      const next = p.sub((p.grad as Tensor).mul(lr));
      next.name = p.name;
      p.dispose(); // free the old value and its gradient now rather than at garbage collection
      return next.requiresGrad_();
    }),
  );
}

// ---------------------------------------------------------------- 3. profile one backward
// profile(fn) counts what fn did: the forward's report shows what was recorded, the backward's
// what ran and what each pruning mechanism skipped.
function measure(label: string, inputs?: Tensor[]) {
  const fwd = profile(() => mseLoss(forward(params, x), target));
  const bwd = profile(() => fwd.result.backward(null, inputs ? { inputs } : {}));
  const r = bwd.report;
  const cols = [fwd.report.nodesRecorded, fwd.report.notRecordedTotal, r.nodesRun, r.nodesPrunedByReachability, r.gradsSkippedByMask, r.matmulFlops];
  console.log(`   ${label.padEnd(30)}${cols.map((c) => String(c).padStart(10)).join('')}`);
  return r;
}
console.log('\n3. profile of a forward (nodes recorded, ops not recorded) and its backward (nodes run,');
console.log('   nodes pruned by reachability, input grads skipped by mask, matmul FLOPs)');
console.log(`   ${''.padEnd(30)}${['recorded', 'not rec.', 'run', 'pruned', 'masked', 'FLOPs'].map((h) => h.padStart(10)).join('')}`);
// Full backward: every node runs; each linear computes dW, db and (except the first) dX.
const full = measure('full backward');
// Only fc2's gradients requested: the engine runs no node below fc2 (mechanism 3).
measure('backward({ inputs: fc2 })', [params[2], params[3]]);
// fc1 frozen: its ops record no node (mechanism 1), and fc2's linear skips dX (mechanism 2).
params[0].requiresGrad_(false);
params[1].requiresGrad_(false);
measure('fc1 frozen');
console.log('   kernels launched by the full backward:', JSON.stringify(full.kernels));

// ---------------------------------------------------------------- 4. gradcheck and memory
const check = gradcheck((u, w) => linear(u, w).tanh(), [
  randn([3, 4], { dtype: 'float64', requiresGrad: true }),
  randn([2, 4], { dtype: 'float64', requiresGrad: true }),
]);
console.log(`\n4. gradcheck(linear -> tanh, float64): ok=${check.ok}, max |analytic - numeric| = ${check.maxAbsError.toExponential(2)}`);
// Tensors saved for backward are counted while a graph holds them and freed as backward runs.
const savedBytes = () => memory.stats().savedForBackwardBytes;
const base = savedBytes();
const lossMem = mseLoss(forward(params, x), target);
const saved = savedBytes() - base;
lossMem.backward();
console.log(`   memory: this forward saved ${saved} bytes for backward (fc1 frozen); after backward ${savedBytes() - base} remain`);
