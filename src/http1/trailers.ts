/**
 * The trailer fields of a finished chunked body from its last metadata bytes:
 * the bytes after the last payload byte, i.e. an optional chunk-data CRLF,
 * `0[;ext]` CRLF, the trailer field lines and the final CRLF. The framer has
 * already validated this grammar, so splitting lines is enough here.
 */
export function chunkedTrailers(tail: Buffer): string[] {
  const text = tail.toString('latin1');
  const raw: string[] = [];
  let i = text.indexOf('\n', text.startsWith('\r\n') ? 2 : 0); // end of the last-chunk line
  while (i !== -1 && i + 1 < text.length) {
    const end = text.indexOf('\r\n', i + 1);
    if (end === -1 || end === i + 1) break; // the final empty line
    const line = text.slice(i + 1, end);
    const colon = line.indexOf(':');
    if (colon > 0) raw.push(line.slice(0, colon), line.slice(colon + 1).trim());
    i = end + 1;
  }
  return raw;
}
