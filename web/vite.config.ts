// The console is built once into dist/ (hashed file names under assets/) and embedded
// into neurod by CMake (scripts/pack.mjs). Nothing here may need the network at run
// time: no CDN, no web fonts, no inline scripts or styles (the server's CSP forbids them).
import { defineConfig } from 'vite';

export default defineConfig({
  base: '/',
  oxc: { jsx: { runtime: 'automatic', importSource: 'preact' } },
  build: {
    outDir: process.env.NEUROD_CONSOLE_OUT || 'dist',
    emptyOutDir: true,
    assetsInlineLimit: 0, // no data: URLs for assets; everything is a hashed file
    sourcemap: false,
    target: 'es2022',
    modulePreload: { polyfill: false },
    chunkSizeWarningLimit: 400,
  },
});
