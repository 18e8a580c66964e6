// Builds the UI into dist/, which is committed and embedded in the agent binary.
// The build must be byte-for-byte reproducible (scripts/ui-build-check.sh compares it):
// content hashes only, no timestamps, one JS and one CSS file.
import { defineConfig } from 'vite';

export default defineConfig({
  // The agent rewrites this placeholder in index.html to its ui_config.content_path.
  base: '/__MERIDIAN_UI__/',
  oxc: { jsx: { runtime: 'automatic', importSource: 'preact' } },
  // `npm run dev`: the API of a local `meridian agent -dev`.
  server: { proxy: { '/v1': 'http://127.0.0.1:8500' } },
  build: {
    outDir: 'dist',
    emptyOutDir: true,
    sourcemap: false,
    modulePreload: false,
    assetsInlineLimit: 0,
    reportCompressedSize: true,
  },
});
