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
export const NODE_FLAGS: readonly string[] = ["--initial-old-space-size=64"];
