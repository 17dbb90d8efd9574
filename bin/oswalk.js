#!/usr/bin/env node
// Before any file-system call: the chunk store keeps many fsyncs in flight, and libuv's
// default pool of 4 threads would serialise them (and the FUSE process's reads behind them).
process.env.UV_THREADPOOL_SIZE ??= '64';
await import('../dist/src/cli/index.js');
