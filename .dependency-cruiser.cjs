// The import rules of docs/layout.md, checked by `npm run lint:deps` (a step
// of `npm test`). Every import counts, type-only ones included.
/** Targets every rule lets through: packages and Node's own modules. */
const OUTSIDE = "node_modules";

/** `from` may import only the folders matched by `allowed` (a regex of top-level folders). */
function onlyImports(name, comment, from, allowed) {
  return {
    name,
    comment,
    severity: "error",
    from: { path: from },
    to: { pathNot: [`^(${allowed})/`, OUTSIDE], dependencyTypesNot: ["core"] },
  };
}

module.exports = {
  forbidden: [
    {
      name: "no-circular",
      comment: "No file imports one that imports it back, directly or through others.",
      severity: "error",
      from: {},
      to: { circular: true },
    },
    {
      name: "not-to-test",
      comment: "Nothing outside test/ imports test code.",
      severity: "error",
      from: { pathNot: "^test/" },
      to: { path: "^test/" },
    },
    onlyImports("lib", "lib/ is shared by everything above it, so it imports only lib/.", "^lib/", "lib"),
    onlyImports("xdb-sql", "The store sits on lib/ alone.", "^xdb-sql/", "xdb-sql|lib"),
    onlyImports("c2s", "A process imports lib/ and the store, never another process.", "^c2s/", "c2s|lib|xdb-sql"),
    onlyImports("sm", "A process imports lib/ and the store, never another process.", "^sm/", "sm|lib|xdb-sql"),
    onlyImports("router", "A process imports lib/ and the store, never another process.", "^router/", "router|lib|xdb-sql"),
    onlyImports("deploy", "The supervisor starts the processes as commands, not as imports.", "^deploy/", "deploy|lib|xdb-sql"),
    onlyImports("sim", "The simulator drives any server over the wire: no process code.", "^sim/", "sim|lib|xdb-sql"),
    onlyImports("bench", "The benchmark harness is built on the simulator.", "^bench/", "bench|sim|lib|xdb-sql"),
  ],
  options: {
    doNotFollow: { path: OUTSIDE },
    tsPreCompilationDeps: true,
    tsConfig: { fileName: "tsconfig.test.json" },
  },
};
