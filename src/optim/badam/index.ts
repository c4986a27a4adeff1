/** BAdam: block coordinate descent with Adam as the inner solver (see docs/badam.md). */
export {
  BlockOptimizer,
  SWITCH_MODES,
  isNoDecayParameter,
  type SwitchMode,
  type BlockOptimizerOptions,
  type BlockOptimizerEvent,
  type BlockSwitchEvent,
  type BlockResumeEvent,
  type BaseOptimizerFactory,
  type BlockScheduleState,
  type BlockOptimizerStateDict,
} from './block-optimizer';
export { inferBlocks, findLayerContainer, type InferBlocksOptions, type BlockInfo } from './partition';
export {
  MasterWeights,
  MixedPrecisionOptimizer,
  type MasterStepOptions,
  type MixedPrecisionStateDict,
} from './master';
export * from './ratio';
