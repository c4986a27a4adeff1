/**
 * The kernel registry refuses, with typed errors that name the op, an operand whose storage was
 * released (issue 16, cause B) and an operand that lives on another backend than the active one
 * (cause K: a gpu tensor after setBackend('cpu') used to fail with a TypeError deep in the cpu
 * backend).
 */
import { BackendError, DisposedError, ValueError, setBackend, tensor, matmul } from '../../src';

afterEach(() => setBackend('cpu'));

test('a disposed tensor used in an op is a DisposedError naming the op and the shape', () => {
  const a = tensor([[1, 2], [3, 4]]);
  const b = tensor([[1], [1]]);
  a.dispose();
  expect(() => matmul(a, b)).toThrow(DisposedError);
  expect(() => matmul(a, b)).toThrow(/^matmul: an operand of 4 elements \(float32\) was disposed/);
  expect(() => a.add(b)).toThrow(/^add: /);
  expect(() => a.neg()).toThrow(/^neg: /);
  // still a ValueError for code that catches the broader family
  expect(() => a.sum()).toThrow(ValueError);
});

test('a tensor disposed after the forward does not break backward: the graph holds its own reference', () => {
  const w = tensor([[2, 0], [0, 3]], { requiresGrad: true });
  const x = tensor([[1, 1]]);
  const h = matmul(x, w).exp();
  const loss = h.sum();
  h.dispose();
  x.dispose();
  loss.backward();
  expect(w.grad!.toArray()).toEqual([
    [Math.fround(Math.exp(2)), Math.fround(Math.exp(3))],
    [Math.fround(Math.exp(2)), Math.fround(Math.exp(3))],
  ]);
});

test('a gpu tensor used after setBackend("cpu") is a BackendError naming both backends and the remedy', () => {
  setBackend('gpu', { mode: 'cpu' });
  const g = tensor([1, 2, 3]);
  setBackend('cpu');
  const c = tensor([1, 1, 1]);
  expect(() => g.exp()).toThrow(BackendError);
  expect(() => g.exp()).toThrow(/^exp: an operand of shape \[3\] lives on backend 'gpu' but the active backend is 'cpu'; .*setBackend\('gpu'\)/);
  expect(() => g.sum()).toThrow(/^reduceLast: .*backend 'gpu'/);
  // two operands on different backends were already refused by the op itself
  expect(() => g.add(c)).toThrow(/^add: operands live on different backends \(gpu and cpu\)/);
});
