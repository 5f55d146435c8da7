import { defineConfig } from "vite";

// `npm run dev` proxies the API to a `gpuseg serve` on the default port.
export default defineConfig({
  build: { outDir: "dist", emptyOutDir: true, chunkSizeWarningLimit: 4096 },
  server: { proxy: { "/api": { target: "http://127.0.0.1:8765", ws: true } } },
});
