// How systemd reads a command line of a unit file, for the tests of `export --format quadlet`.

/**
 * An Exec=/Environment= line read back the way systemd and Quadlet do (systemd.syntax): `%%` is `%` and
 * `$$` is `$` (a lone `%x` or `$NAME` would be substituted: marked here), then words split on blanks,
 * "..." unquoted with C escapes.
 */
export function unitWords(value: string): string[] {
  // What systemd would substitute is marked, so a test sees it: `%n` is the unit's name, `$HOME` a variable.
  const s = value.replace(/%(.)|\$(\$|[A-Za-z_{])/g, (m, pc?: string, dc?: string) =>
    pc === '%' ? '%' : dc === '$' ? '$' : `«substituted ${m}»`,
  );
  const words: string[] = [];
  const esc: Record<string, string> = { n: '\n', t: '\t', r: '\r', '\\': '\\', '"': '"', "'": "'", s: ' ' };
  for (let i = 0; i < s.length;) {
    if (s[i] === ' ') {
      i++;
      continue;
    }
    let w = '';
    let quoted = false;
    for (; i < s.length && (quoted || s[i] !== ' '); i++) {
      const c = s[i]!;
      if (c === '"') quoted = !quoted;
      else if (c === '\\') {
        const n = s[++i]!;
        if (n === 'x') {
          w += String.fromCharCode(parseInt(s.slice(i + 1, i + 3), 16));
          i += 2;
        } else w += esc[n] ?? `\\${n}`;
      } else w += c;
    }
    words.push(w);
  }
  return words;
}
