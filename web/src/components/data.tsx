// Building blocks of the data pages (storage, images, secrets, sharing): a copyable
// command or URI, small file/folder icons, base64 for secret values.
import { useState } from 'preact/hooks';

// A command or URI to paste elsewhere, with a Copy button (the clipboard needs a secure
// context: on plain HTTP to another host the text is selected instead).
export function CopyText({ text, label }: { text: string; label: string }) {
  const [copied, setCopied] = useState(false);
  const copy = async (e: MouseEvent) => {
    const code = (e.currentTarget as HTMLElement).parentElement?.querySelector('code');
    try {
      await navigator.clipboard.writeText(text);
      setCopied(true);
      setTimeout(() => setCopied(false), 1500);
    } catch {
      if (code) {
        const range = document.createRange();
        range.selectNodeContents(code);
        const sel = getSelection();
        sel?.removeAllRanges();
        sel?.addRange(range);
      }
    }
  };
  return (
    <span class="copy-text">
      <code>{text}</code>
      <button type="button" class="btn btn-link btn-small" onClick={copy} aria-label={`Copy ${label}`}>
        {copied ? 'Copied' : 'Copy'}
      </button>
    </span>
  );
}

export function FolderIcon() {
  return (
    <svg class="icon icon-folder" viewBox="0 0 20 16" width="20" height="16" aria-hidden="true" focusable="false">
      <path d="M1 2.5A1.5 1.5 0 0 1 2.5 1h4.6l2 2h8.4A1.5 1.5 0 0 1 19 4.5v9a1.5 1.5 0 0 1-1.5 1.5h-15A1.5 1.5 0 0 1 1 13.5z" />
    </svg>
  );
}

export function FileIcon() {
  return (
    <svg class="icon icon-file" viewBox="0 0 16 20" width="16" height="20" aria-hidden="true" focusable="false">
      <path d="M2.5 1h7L14 5.5v12a1.5 1.5 0 0 1-1.5 1.5h-10A1.5 1.5 0 0 1 1 17.5v-15A1.5 1.5 0 0 1 2.5 1z" />
      <path class="icon-fold" d="M9.5 1v4.5H14" />
    </svg>
  );
}

// Base64 of bytes (secrets' values travel as base64).
export function base64(bytes: Uint8Array): string {
  let s = '';
  for (let i = 0; i < bytes.length; i += 0x8000) s += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
  return btoa(s);
}
