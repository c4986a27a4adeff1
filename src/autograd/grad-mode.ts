/** Grad mode: while it is off, ops record no graph nodes (PyTorch's torch.no_grad). */
let enabled = true;

export function isGradEnabled(): boolean {
  return enabled;
}

/** Sets grad mode and returns the previous value. */
export function setGradEnabled(flag: boolean): boolean {
  const previous = enabled;
  enabled = flag;
  return previous;
}

function withGradMode<T>(flag: boolean, fn: () => T): T {
  const previous = setGradEnabled(flag);
  try {
    return fn();
  } finally {
    setGradEnabled(previous);
  }
}

/** Runs fn with recording off: nothing it computes has a gradFn. */
export function noGrad<T>(fn: () => T): T {
  return withGradMode(false, fn);
}

/** Runs fn with recording on, even inside noGrad. */
export function enableGrad<T>(fn: () => T): T {
  return withGradMode(true, fn);
}
