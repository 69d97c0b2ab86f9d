// The V8 flags tunnelctl runs with. bin/tunnelctl.js passes them to node on its exec line (a
// sh launcher: node cannot take V8 heap flags once it runs), `npm start` passes them, and the
// benchmark starts tunnelctl with this list. test/integration/cli-launcher.test.ts checks that the
// launcher and `npm start` pass exactly these.
//
// --initial-old-space-size=64: a floor under the old generation's GC limit. Without it, a small
// heap (one tunnel: ~13 MB live) forwarding at line rate can fall into back-to-back major GCs: the
// limit V8 sets after a major GC leaves less room than the young generation (16 MB), so every
// young collection starts the next major one. Measured in bench throughput runs: 200 major GCs in
// 4 GiB and 1.5–1.7 CPU s/GiB (~600 MiB/s) without the floor, 1–6 and 0.8–0.9 CPU s/GiB
// (850–1,000 MiB/s) with it; a floor of 32 MB did not help. README "Decisions" has the detail.
//
// --interrupt-budget=16384 (V8's default is 67584): functions are optimised after a quarter of the
// work. The per-connection path (accept, channel open, stream setup, teardown) runs once per
// connection, so with the default it is still unoptimised for the first ~1,500 connections of a
// process's life, and after a few seconds idle it is slow again for ~100 more: a quiet tunnel
// never gets fast. Measured in the setup bench on a fresh process (3 runs each): -L p50 0.70 →
// 0.60 ms, -R 0.64 → 0.56 ms; a budget of 4096 did no better; no difference once the process is
// warm. It costs ~0.1 s more compiling in a one-tunnel cold start.
export const NODE_FLAGS: readonly string[] = ["--initial-old-space-size=64", "--interrupt-budget=16384"];
