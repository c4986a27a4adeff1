/** Optimizers, learning-rate schedulers and gradient clipping (torch.optim counterparts). */
export { Optimizer } from './optimizer';
export { stateDtype } from './state-tensors';
export type { Hyperparameters } from './hyperparameters';
export type { ParamGroup, ParamGroupInput, ParamsInput, NamedParams } from './param-groups';
export type { ParamState, StateValue, StateKind, OptimizerStateDict, SavedParamGroup } from './state-dict';
export { SGD, SGD_DEFAULTS, type SGDOptions } from './sgd';
export { Adam, AdamW, ADAM_DEFAULTS, type AdamOptions } from './adam';
export { clipGradNorm, clipGradValue, type ClipGradNormOptions } from './clip';
export { GradScaler, type GradScalerOptions, type GradScalerStateDict, type ScalableOptimizer } from './grad-scaler';
export {
  LRScheduler,
  LambdaLR,
  StepLR,
  linearWarmupLinearDecay,
  linearWarmupCosineDecay,
  type HasParamGroups,
  type LRSchedulerStateDict,
  type CosineScheduleOptions,
} from './lr-scheduler';
export { stateToJSON, stateFromJSON, type JSONValue } from './state-json';
export * from './badam';
export { LOMO, type LOMOOptions, type LOMOParamGroup } from './lomo';
export { measureTrainingMemory, memoryReport, type TrainingRun, type TrainingMemory } from './memory-report';
