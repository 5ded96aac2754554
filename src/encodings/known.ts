// The two tiktoken files vLLM's gpt-oss tokenizer reads, with tiktoken's published SHA-256.

export interface Encoding {
  file: string;
  sha256: string;
}

export const ENCODINGS: readonly Encoding[] = [
  { file: 'o200k_base.tiktoken', sha256: '446a9538cb6c348e3516120d7c08b09f57c36495e2acfffe59a5bf8b0cfb1a2d' },
  { file: 'cl100k_base.tiktoken', sha256: '223921b76ee99bde995b7ff738513eef100fb51d18c93597a113bcffe865b2a7' },
];

/** Where tiktoken itself downloads them from. */
export const DEFAULT_BASE_URL = 'https://openaipublic.blob.core.windows.net/encodings/';
