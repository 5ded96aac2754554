// The two tiktoken files vLLM's gpt-oss tokenizer reads, with tiktoken's published SHA-256.

export interface Encoding {
  file: string;
  sha256: string;
  /** Bytes of the published file: a download is cut off past it. */
  size: number;
}

export const ENCODINGS: readonly Encoding[] = [
  {
    file: 'o200k_base.tiktoken',
    sha256: '446a9538cb6c348e3516120d7c08b09f57c36495e2acfffe59a5bf8b0cfb1a2d',
    size: 3613922,
  },
  {
    file: 'cl100k_base.tiktoken',
    sha256: '223921b76ee99bde995b7ff738513eef100fb51d18c93597a113bcffe865b2a7',
    size: 1681126,
  },
];

/** Where tiktoken itself downloads them from. */
export const DEFAULT_BASE_URL = 'https://openaipublic.blob.core.windows.net/encodings/';

/** Unverified (custom) files have no known size: a generous cap still ends an endless download. */
export const MAX_CUSTOM_ENCODING_BYTES = 64 * 1024 * 1024;
