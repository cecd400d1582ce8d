// Electronegativity 1.10 uses commander 5's API without declaring it, and npm hoists a newer commander.
// This preload resolves its `commander` to the pinned `commander-v5` devDependency; nothing else changes.
const Module = require('node:module');
const resolve = Module._resolveFilename;
Module._resolveFilename = function (request, parent, ...rest) {
  if (request === 'commander' && parent?.filename?.includes('@doyensec/electronegativity')) {
    return resolve.call(this, 'commander-v5', parent, ...rest);
  }
  return resolve.call(this, request, parent, ...rest);
};
