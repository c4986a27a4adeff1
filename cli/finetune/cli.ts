/**
 * `blockgrad finetune`'s front door: parse, run, and turn every outcome into one line and an
 * exit code (0 done, 2 the user's input, 130 interrupted with a checkpoint, 1 anything else).
 * Never throws, so tests call it as the command line would.
 */
import { BlockgradError } from '../../src';
import type { ConsoleIO } from '../progress';
import { UsageError, parseFinetuneArgs, type ParsedArgs } from './options';
import { resolveRun, runFinetune, type FinetuneControl } from './run';
import { llamaFactoryYaml } from './llamafactory';

export async function finetuneCli(argv: readonly string[], io: ConsoleIO, control: FinetuneControl = {}): Promise<number> {
  const fail = (code: number, message: string) => {
    io.err.write(`blockgrad finetune: ${message.split('\n')[0]}\n`);
    return code;
  };
  let parsed: ParsedArgs | { help: string };
  try {
    parsed = parseFinetuneArgs(argv);
  } catch (err) {
    if (err instanceof UsageError) return fail(2, `${err.message} (see --help)`);
    return fail(1, String((err as Error)?.message ?? err));
  }
  if ('help' in parsed) {
    io.out.write(parsed.help);
    return 0;
  }
  let started = false;
  try {
    if (parsed.settings.printLlamaFactory) {
      const { config, settings } = resolveRun(parsed);
      io.out.write(llamaFactoryYaml(config, settings));
      return 0;
    }
    const result = await runFinetune(parsed, io, { ...control, onTrainingStart: () => (started = true) });
    return result.exitCode;
  } catch (err) {
    if (io.out.isTTY) io.out.write('\n');
    if (err instanceof UsageError) return fail(2, err.message);
    if (process.env.BLOCKGRAD_DEBUG) io.err.write(`${(err as Error)?.stack ?? err}\n`);
    const message = err instanceof Error ? err.message : String(err);
    // a library error before training starts is about the input (a malformed model directory, say)
    if (err instanceof BlockgradError && !started) return fail(2, message);
    return fail(1, `failed: ${message}${process.env.BLOCKGRAD_DEBUG ? '' : ' (BLOCKGRAD_DEBUG=1 shows the stack trace)'}`);
  }
}
