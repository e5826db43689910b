'use strict';
// tfjs for robust's own modules in Node (package.json maps #tfjs here under the "node" condition).
// Node builds an ES module's view of a CommonJS one by scanning its source for exports and
// following `module.exports = require(…)` re-exports: for tfjs that scan reads every tfjs
// package, ~0.8 s of each process start. Assigned through a variable the re-export is not
// scanned; modules import the default export, the same object, from the same require cache.
const tf = require('@tensorflow/tfjs');
module.exports = tf;
