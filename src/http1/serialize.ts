/**
 * Head serialisation: one latin1 string per head, written to the socket with
 * `socket.write(head, 'latin1')`. Inputs are trusted (style rule 13): names
 * and values come from the parsers or from validated config; code that
 * builds headers from anything else must check them with `isToken` /
 * `isFieldValue` (chars.ts) first, or CR/LF would split the head.
 * Hop-by-hop filtering is the session layer's job.
 */

/** Reason phrases for the status codes usher emits or relays (RFC 9110 §15), indexed by code; undefined for unknown codes. */
export const STATUS_REASONS: readonly (string | undefined)[] = (() => {
  const t: (string | undefined)[] = new Array<string | undefined>(600).fill(undefined);
  const pairs: readonly (readonly [number, string])[] = [
    [100, 'Continue'], [101, 'Switching Protocols'], [102, 'Processing'], [103, 'Early Hints'],
    [200, 'OK'], [201, 'Created'], [202, 'Accepted'], [203, 'Non-Authoritative Information'], [204, 'No Content'],
    [205, 'Reset Content'], [206, 'Partial Content'], [207, 'Multi-Status'], [208, 'Already Reported'], [226, 'IM Used'],
    [300, 'Multiple Choices'], [301, 'Moved Permanently'], [302, 'Found'], [303, 'See Other'], [304, 'Not Modified'],
    [305, 'Use Proxy'], [307, 'Temporary Redirect'], [308, 'Permanent Redirect'],
    [400, 'Bad Request'], [401, 'Unauthorized'], [402, 'Payment Required'], [403, 'Forbidden'], [404, 'Not Found'],
    [405, 'Method Not Allowed'], [406, 'Not Acceptable'], [407, 'Proxy Authentication Required'], [408, 'Request Timeout'],
    [409, 'Conflict'], [410, 'Gone'], [411, 'Length Required'], [412, 'Precondition Failed'], [413, 'Content Too Large'],
    [414, 'URI Too Long'], [415, 'Unsupported Media Type'], [416, 'Range Not Satisfiable'], [417, 'Expectation Failed'],
    [418, "I'm a teapot"], [421, 'Misdirected Request'], [422, 'Unprocessable Content'], [423, 'Locked'], [424, 'Failed Dependency'],
    [425, 'Too Early'], [426, 'Upgrade Required'], [428, 'Precondition Required'], [429, 'Too Many Requests'],
    [431, 'Request Header Fields Too Large'], [451, 'Unavailable For Legal Reasons'],
    [500, 'Internal Server Error'], [501, 'Not Implemented'], [502, 'Bad Gateway'], [503, 'Service Unavailable'],
    [504, 'Gateway Timeout'], [505, 'HTTP Version Not Supported'], [506, 'Variant Also Negotiates'], [507, 'Insufficient Storage'],
    [508, 'Loop Detected'], [510, 'Not Extended'], [511, 'Network Authentication Required'],
  ];
  for (const [code, reason] of pairs) t[code] = reason;
  return Object.freeze(t);
})();

/** The reason phrase for `status`, or '' when unknown (an empty reason is valid, RFC 9112 §4). */
export function statusReason(status: number): string {
  return STATUS_REASONS[status] ?? '';
}

/** Appends `Name: value\r\n` for each pair of a flat [name, value, ...] list, then the empty line. */
function fieldLines(head: string, headers: readonly string[]): string {
  for (let i = 0; i + 1 < headers.length; i += 2) head += `${headers[i]}: ${headers[i + 1]}\r\n`;
  return head + '\r\n';
}

/** `METHOD target HTTP/1.1\r\n` + field lines + `\r\n`; usher always speaks HTTP/1.1 upstream. */
export function requestHeadString(method: string, target: string, headers: readonly string[]): string {
  return fieldLines(`${method} ${target} HTTP/1.1\r\n`, headers);
}

/** `HTTP/1.<minor> status reason\r\n` + field lines + `\r\n`. */
export function responseHeadString(minorVersion: 0 | 1, status: number, reason: string, headers: readonly string[]): string {
  return fieldLines(`HTTP/1.${minorVersion} ${status} ${reason}\r\n`, headers);
}
