#!/bin/sh
":" //; exec node --initial-old-space-size=64 --interrupt-budget=16384 "$0" "$@"
// The two lines above are a sh launcher: sh runs the second line, which starts node on this same
// file with the V8 flags of src/cli/node-flags.ts (node only takes heap flags at start; see there
// for why these). To node, the second line is a string and a comment. `node bin/tunnelctl.js`
// also works, without the flags.
// The compiled CLI lives in dist/ (built by `npm run build`, run by `npm ci` through `prepare`).
import { main } from "../dist/cli/main.js";

main(process.argv.slice(2)).then((code) => {
  if (typeof code === "number") process.exitCode = code;
});
