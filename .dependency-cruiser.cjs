// The import rules of docs/architecture.md, checked by `npm run lint:imports`
// (scripts/lint-imports.mjs), which scripts/test.sh runs before any test. By hand:
//   npx depcruise --config .dependency-cruiser.cjs 'src/**/*.ts' 'test/**/*.ts' 'bench/**/*.ts'
//
// The rules apply to src/; tests (test/) and benchmarks (bench/) may import anything, but they
// are scanned too, and must not close an import cycle. Type-only imports count as imports:
// a type is part of the contract it comes from.
/** @type {import('dependency-cruiser').IConfiguration} */
module.exports = {
  forbidden: [
    {
      name: 'scheduler-imports-only-itself-and-api',
      comment:
        'The scheduler is a pure function over types it owns (its job, node and plan types): no ' +
        'Redis, no files, nothing of another part, so that it is tested with tables and can be ' +
        'replaced whole. src/api (the wire types) is the one exception. Node built-ins and npm ' +
        'packages count as outside too.',
      severity: 'error',
      from: { path: '^src/scheduler/' },
      to: { pathNot: '^src/(scheduler|api)/' },
    },
    {
      name: 'api-imports-only-itself-limits-and-typebox',
      comment:
        'src/api holds the contract between the API and its clients (the wire types, the job ' +
        'spec and its defaults): both sides import it, so it imports none of them. Its schemas ' +
        'take their bounds from the one table of limits (src/util/limits.ts).',
      severity: 'error',
      from: { path: '^src/api/' },
      to: { pathNot: '^src/api/|^src/util/limits\\.ts$|(^|/)node_modules/typebox/|^typebox(/|$)' },
    },
    {
      name: 'nothing-imports-the-cli',
      comment:
        'src/cli is the outermost layer (commands, terminal output, process supervision): only ' +
        'bin/oswalk.js starts it and only the CLI imports its own files. Code another part needs ' +
        'belongs in that part, or in src/util.',
      severity: 'error',
      from: { path: '^src/', pathNot: '^src/cli/' },
      to: { path: '^src/cli/' },
    },
    {
      name: 'cli-speaks-to-the-api-through-src-api',
      comment:
        'A command that talks to the control plane knows it by the API alone: the shapes of what ' +
        'it sends and gets back are in src/api, so it imports no server module, not even for a ' +
        'type (a server-side change would otherwise change a client silently). Exempt: the ' +
        'commands that run a server part in this process (up, control-plane, agent, mount, ' +
        'translate) or read Redis themselves (node-check, redis-server).',
      severity: 'error',
      from: { path: '^src/cli/', pathNot: '^src/cli/(up|control-plane|agent|mount|translate|node-check|redis-server)\\.ts$' },
      to: { path: '^src/(controlplane|state|agent|packetfs|overlay|translate)/' },
    },
    {
      name: 'agent-does-not-import-controlplane',
      comment:
        'The agent and the control plane are separate processes (often on separate machines) that ' +
        'meet only in Redis (src/state) and HTTP (src/api): an import between them would hide a ' +
        'second seam.',
      severity: 'error',
      from: { path: '^src/agent/' },
      to: { path: '^src/controlplane/' },
    },
    {
      name: 'controlplane-does-not-import-agent',
      comment: 'The other direction of agent-does-not-import-controlplane, for the same reason.',
      severity: 'error',
      from: { path: '^src/controlplane/' },
      to: { path: '^src/agent/' },
    },
    {
      name: 'only-state-imports-ioredis',
      comment:
        'Redis is reached through src/state alone, which owns the keyspace, the Lua scripts and the ' +
        'connection set-up; the others take a client from it (connectRedis) and its type from ' +
        "src/state/redis.ts ('export type { Redis }'), so that nothing else depends on ioredis.",
      severity: 'error',
      from: { path: '^src/', pathNot: '^src/state/' },
      // Resolved (node_modules/ioredis/…, wherever node_modules is) or not (a bare 'ioredis').
      to: { path: '(^|/)node_modules/ioredis/|^ioredis$' },
    },
    {
      name: 'no-import-cycles',
      comment:
        'A cycle makes two modules one (neither loads, or is understood, without the other) and ' +
        'makes load order matter. Tests and benchmarks included.',
      severity: 'error',
      from: {},
      to: { circular: true },
    },
  ],
  options: {
    doNotFollow: { path: '(^|/)node_modules/' },
    tsConfig: { fileName: 'tsconfig.json' },
    // Keep `import type` and imports used only as types (they count, see above).
    tsPreCompilationDeps: true,
    enhancedResolveOptions: {
      // dependency-cruiser 17 cannot load TypeScript 7 (it takes typescript <7; see
      // scripts/lint-imports.mjs), so it does not know .ts as an extension of its own: listing it
      // here is what lets './x.js' resolve to './x.ts'.
      extensions: ['.ts', '.js', '.mjs', '.cjs', '.json', '.node'],
    },
  },
};
