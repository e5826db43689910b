#!/usr/bin/env node
import { main } from '../dist/cli/robust.js';

// Exit explicitly with main's status, without waiting for timers or handles a command left behind.
main(process.argv).then((code) => process.exit(code));
