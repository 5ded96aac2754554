// Docker's streaming answers (events, pull progress) are JSON records, one per line.

/** Calls `onRecord` with each parsed line of `stream`; lines that are not JSON are skipped. */
export function onJsonLines(stream: NodeJS.ReadableStream, onRecord: (record: unknown) => void): void {
  let buf = '';
  stream.on('data', (chunk: Buffer) => {
    buf += chunk.toString('utf8');
    let nl: number;
    while ((nl = buf.indexOf('\n')) >= 0) {
      const line = buf.slice(0, nl).trim();
      buf = buf.slice(nl + 1);
      if (!line) continue;
      let record: unknown;
      try {
        record = JSON.parse(line);
      } catch {
        continue;
      }
      onRecord(record);
    }
  });
}
