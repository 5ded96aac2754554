// Anything shaped like a Hugging Face token (`hf_` and 30 or more letters and digits), whether or not it
// is the configured one: pasted into a config key, quoted back by vLLM, it is still a secret.
const HF_TOKEN_SHAPE = /\bhf_[A-Za-z0-9]{30,}\b/g;

export function hideTokenShapes(text: string): string {
  return text.replace(HF_TOKEN_SHAPE, 'hf_********');
}
