/**
 * usher's HTTP/1.1 codec: strict head parsers, body framer and head
 * serialiser. Pure code over Buffers; sockets live in the session layer.
 * Behaviour per rejected case: docs/http1.md.
 */
export { parseRequestHead } from './request-head.ts';
export { parseResponseHead } from './response-head.ts';
export { BodyFramer, type BodyFramerOptions, type PayloadSink } from './body-framer.ts';
export { STATUS_REASONS, requestHeadString, responseHeadString, statusReason } from './serialize.ts';
export { isFieldValue, isToken } from './chars.ts';
export { isParseError } from './errors.ts';
export {
  defaultHeadLimits,
  type BodyFraming,
  type HeadLimits,
  type HeadResult,
  type Http1ParseError,
  type MessageHead,
  type RequestHead,
  type ResponseHead,
} from './types.ts';
