// Anything shaped like a Hugging Face token (`hf_` and 30 or more letters and digits), whether or not it
// is the configured one: pasted into a config key, quoted back by vLLM, it is still a secret.
const HF_TOKEN_SHAPE = /\bhf_[A-Za-z0-9]{30,}\b/g;

export function hideTokenShapes(text: string): string {
  return text.replace(HF_TOKEN_SHAPE, 'hf_********');
}

/**
 * Values that are secrets by their look, whatever the variable is called: an HF token, a URL with a
 * password (`http://user:pw@proxy:3128`), a private key, a JWT, and the published shapes of common API
 * keys (OpenAI, GitHub, GitLab, Slack, AWS).
 */
const SECRET_SHAPES: readonly RegExp[] = [
  /\bhf_[A-Za-z0-9]{30,}\b/,
  /^[A-Za-z][A-Za-z0-9+.-]*:\/\/[^/?#@\s:]*:[^/?#@\s]+@/,
  /-----BEGIN [A-Z ]*PRIVATE KEY-----/,
  /\beyJ[\w-]{8,}\.eyJ[\w-]{8,}\.[\w-]{8,}/,
  /\bsk-[A-Za-z0-9_-]{20,}/,
  /\b(?:ghp|gho|ghu|ghs|ghr)_[A-Za-z0-9]{30,}\b/,
  /\bgithub_pat_[A-Za-z0-9_]{30,}/,
  /\bglpat-[A-Za-z0-9_-]{20,}/,
  /\bxox[abposr]-[A-Za-z0-9-]{10,}/,
  /\b(?:AKIA|ASIA)[A-Z0-9]{16}\b/,
];

export function looksSecret(value: string): boolean {
  return SECRET_SHAPES.some((re) => re.test(value));
}
