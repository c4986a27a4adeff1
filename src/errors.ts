/**
 * Typed errors. Every error names the op that raised it, so a user can tell which call failed
 * and catch a family of errors (`instanceof ShapeError`) without parsing messages.
 */
export class BlockgradError extends Error {
  constructor(
    readonly op: string,
    message: string,
  ) {
    super(`${op}: ${message}`);
    this.name = new.target.name;
  }
}

/** Shapes that do not fit together: broadcasting, matmul inner dimensions, reshape sizes. */
export class ShapeError extends BlockgradError {}
/** A dim argument outside [-ndim, ndim). */
export class DimError extends BlockgradError {}
/** A dtype that the op does not accept (an int32 tensor asked to require grad, a float index). */
export class DTypeError extends BlockgradError {}
/** Misuse of the autograd engine: backward twice without retainGraph, non-scalar backward. */
export class AutogradError extends BlockgradError {}
/** Any other invalid argument (a negative size, a probability outside [0, 1]). */
export class ValueError extends BlockgradError {}

/** A tensor used after its storage was released: by dispose(), or at the end of its tidy scope. */
export class DisposedError extends ValueError {}

/** Formats a shape the way messages show it: [2,3]. */
export function fmtShape(shape: readonly number[]): string {
  return `[${shape.join(',')}]`;
}

/**
 * A backend that cannot do what was asked: a gpu mode that is not available here (naming what is
 * missing), a tensor on a different backend than the one running the op, a buffer beyond the
 * device's limits, a dtype the device cannot store.
 */
export class BackendError extends BlockgradError {}
