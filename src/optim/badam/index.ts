/** BAdam: block coordinate descent with Adam as the inner solver (see docs/badam.md). */
export { BlockOptimizer } from './block-optimizer';
export { SWITCH_MODES, type SwitchMode, type BlockOptimizerOptions, type BaseOptimizerFactory, type BlockHyperparams } from './block-options';
export { isNoDecayParameter } from '../parameters';
export type { BlockOptimizerEvent, BlockSwitchEvent, BlockResumeEvent, RatioMaskInfo, RatioMaskEvent, Verbosity } from './events';
export type { BlockScheduleState, BlockOptimizerStateDict } from './block-state';
export { inferBlocks, findLayerContainer, type InferBlocksOptions, type BlockInfo } from './partition';
export {
  MasterWeights,
  MixedPrecisionOptimizer,
  type MasterStepOptions,
  type MixedPrecisionStateDict,
} from './master';
export { BlockOptimizerRatio, type RatioParamGroup } from './ratio';
export type { MaskMode, BlockOptimizerRatioOptions, RatioGroupInput } from './ratio-options';
export { selectedCount, ratioMaskIndices } from './ratio-masks';
export type { RatioParamStateDict, BlockOptimizerRatioStateDict } from './ratio-state';
