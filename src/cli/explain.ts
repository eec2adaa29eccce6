/**
 * `usher explain -c usher.yaml [-H 'name: value']... METHOD URL`: the command
 * around `src/explain/`. Reads the config (and with `--admin`, the running
 * usher's pools), prints the explanation as text or JSON. Sends nothing
 * upstream.
 */
import { parseArgs } from 'node:util';
import type { PoolView } from '../admin/views.ts';
import type { UsherConfig } from '../config/types.ts';
import { explain, ListenerChoiceError } from '../explain/explain.ts';
import { formatExplanation } from '../explain/format.ts';
import { ExplainInputError, readExplainRequest } from '../explain/request.ts';
import { callAdmin, errorMessage } from './admin-client.ts';
import { exitCodes, UsageError } from './exit-codes.ts';

/** Reads and reports the config file (as `usher check` does); undefined when it is invalid. */
export type ConfigLoader = (file: string) => Promise<UsherConfig | undefined>;

/** Runs `usher explain` with its arguments (after the command name). Returns the exit code. */
export async function runExplain(args: readonly string[], load: ConfigLoader): Promise<number> {
  let parsed;
  try {
    parsed = parseArgs({
      args: [...args],
      allowPositionals: true,
      options: {
        config: { type: 'string', short: 'c' },
        header: { type: 'string', short: 'H', multiple: true },
        listener: { type: 'string' },
        'client-ip': { type: 'string' },
        admin: { type: 'string' },
        token: { type: 'string' },
        json: { type: 'boolean', default: false },
      },
    });
  } catch (error) {
    throw new UsageError((error as Error).message);
  }
  const { values, positionals } = parsed;
  if (values.config === undefined) throw new UsageError('give the config file with -c FILE');
  if (positionals.length !== 2) throw new UsageError(`give METHOD and URL, e.g. usher explain -c usher.yaml GET http://example.com/api/users (got ${positionals.length} argument${positionals.length === 1 ? '' : 's'})`);
  if (values.token !== undefined && values.admin === undefined) throw new UsageError('--token goes with --admin URL');
  let request;
  try {
    request = readExplainRequest(positionals[0]!, positionals[1]!, values.header ?? [], values['client-ip']);
  } catch (error) {
    if (error instanceof ExplainInputError) throw new UsageError(error.message);
    throw error;
  }
  const config = await load(values.config);
  if (config === undefined) return exitCodes.configOrStartup;
  let livePools: readonly PoolView[] | undefined;
  if (values.admin !== undefined) {
    // The token as `usher status` finds it: --token, $USHER_ADMIN_TOKEN, the file's admin.token.
    const token = values.token ?? process.env['USHER_ADMIN_TOKEN'] ?? config.admin?.token;
    const answer = await callAdmin({ url: values.admin, token }, 'GET', '/api/pools', 10_000);
    if (!answer.reached || !answer.ok) {
      process.stderr.write(`usher: ${answer.reached ? `admin API at ${values.admin}: ${errorMessage(answer)}` : answer.message}\n`);
      return exitCodes.configOrStartup;
    }
    livePools = (answer.body as { pools?: PoolView[] }).pools ?? [];
  }
  let explanation;
  try {
    explanation = explain(config, request, { listener: values.listener, livePools });
  } catch (error) {
    if (!(error instanceof ListenerChoiceError)) throw error;
    if (error.kind === 'usage') throw new UsageError(error.message);
    process.stderr.write(`usher: ${error.message}\n`);
    return exitCodes.configOrStartup;
  }
  process.stdout.write(values.json ? `${JSON.stringify(explanation, null, 2)}\n` : `${formatExplanation(explanation)}\n`);
  return explanation.match === null ? exitCodes.noRouteMatches : exitCodes.ok;
}
