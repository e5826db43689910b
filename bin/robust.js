#!/usr/bin/env node
import { main } from '../dist/cli/robust.js';

// Exit explicitly: the wasm backend's worker threads would otherwise keep the process alive.
main(process.argv).then((code) => process.exit(code));
