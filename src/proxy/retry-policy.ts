import type { RetryCondition } from '../config/types.ts';
import type { ErrorCode } from '../errors.ts';

/**
 * Which `retry.on` condition an upstream failure is. A connect failure (the
 * request never reached the backend) is the only condition that is safe to
 * retry for any method; a connect timeout also counts as `timeout`.
 */
const conditionByCode: Partial<Record<ErrorCode, RetryCondition>> = {
  USHER_UPSTREAM_CONNECT_REFUSED: 'connect-failure',
  USHER_UPSTREAM_CONNECT_FAILED: 'connect-failure',
  USHER_UPSTREAM_CONNECT_TIMEOUT: 'connect-failure',
  USHER_UPSTREAM_RESET: 'reset',
  USHER_UPSTREAM_RESPONSE_TIMEOUT: 'timeout',
  USHER_UPSTREAM_BAD_RESPONSE: '502',
};

export function retryConditionOf(code: ErrorCode): RetryCondition | undefined {
  return conditionByCode[code];
}
