// Parses PowerShell files with the tree-sitter PowerShell grammar and
// prints, per file, one JSON line: {"file", "problems": ["line:col ERROR"
// or "line:col MISSING <node>", ...]}. Run by internal/peers with the
// directory holding node_modules as its first argument.
'use strict';
const path = require('node:path');
const fs = require('node:fs');
const { createRequire } = require('node:module');
const modules = path.join(process.argv[2], 'node_modules');
// Resolve as a script in that directory would, through package exports.
const local = createRequire(path.join(process.argv[2], 'package.json'));
const { Parser, Language } = local('web-tree-sitter');

(async () => {
  await Parser.init();
  const lang = await Language.load(path.join(modules, 'tree-sitter-powershell', 'tree-sitter-powershell.wasm'));
  const parser = new Parser();
  parser.setLanguage(lang);
  for (const file of process.argv.slice(3)) {
    const tree = parser.parse(fs.readFileSync(file, 'utf8'));
    const problems = [];
    const walk = (n) => {
      if (n.isError || n.isMissing) {
        const where = `${n.startPosition.row + 1}:${n.startPosition.column + 1}`;
        problems.push(n.isMissing ? `${where} MISSING ${n.type}` : `${where} ERROR`);
      }
      for (const c of n.children) walk(c);
    };
    walk(tree.rootNode);
    if (tree.rootNode.hasError && problems.length === 0) problems.push('1:1 ERROR (reported by the root only)');
    process.stdout.write(JSON.stringify({ file, problems }) + '\n');
  }
})().catch((e) => {
  process.stderr.write(String(e && e.stack || e) + '\n');
  process.exit(2);
});
