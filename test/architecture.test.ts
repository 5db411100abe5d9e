import fs from 'node:fs';
import path from 'node:path';
import ts from 'typescript';

/**
 * Folders show the architecture. The units are src/'s top-level folders and files; the imports
 * between them, type-only ones included, only ever go one way: no two units import each other, and
 * no unit reaches itself through others. So the composition root (main.ts, runtime.ts, app.ts,
 * deps.ts) and the helpers everyone uses (config.ts, errors.ts, shared/, db/, http/, pages/, ...) may
 * be imported by anyone, and import only what is further down. generated/ is Prisma's and not read.
 */
const SRC = path.resolve(__dirname, '../src');
const SKIPPED = new Set(['generated']);

/** `admin/` for anything in src/admin, `deps.ts` for src/deps.ts; undefined outside src/. */
function unitOf(file: string): string | undefined {
  const parts = path.relative(SRC, file).split(path.sep);
  if (parts[0] === '..' || parts[0] === '') return undefined;
  if (parts.length > 1) return `${parts[0]}/`;
  return parts[0]!.replace(/(\.js|\.ts)?$/, '.ts');
}

/** The relative specifiers a module imports or re-exports, statically or dynamically. */
function importsOf(source: string): string[] {
  return ts
    .preProcessFile(source, true, true)
    .importedFiles.map((imported) => imported.fileName)
    .filter((specifier) => specifier.startsWith('.'));
}

function sourceFiles(dir: string): string[] {
  return fs.readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const full = path.join(dir, entry.name);
    if (entry.isDirectory()) return dir === SRC && SKIPPED.has(entry.name) ? [] : sourceFiles(full);
    return entry.name.endsWith('.ts') ? [full] : [];
  });
}

/** For each unit, the other units it imports, each with the first import line that shows it. */
function unitGraph(): Map<string, Map<string, string>> {
  const graph = new Map<string, Map<string, string>>();
  for (const file of sourceFiles(SRC)) {
    const from = unitOf(file)!;
    const edges = graph.get(from) ?? new Map<string, string>();
    graph.set(from, edges);
    for (const specifier of importsOf(fs.readFileSync(file, 'utf8'))) {
      const to = unitOf(path.resolve(path.dirname(file), specifier));
      if (to && to !== from && !edges.has(to)) edges.set(to, `${path.relative(SRC, file)} imports '${specifier}'`);
    }
  }
  return graph;
}

function reachableFrom(graph: Map<string, Map<string, string>>, start: string): Set<string> {
  const seen = new Set<string>();
  const next = [...(graph.get(start)?.keys() ?? [])];
  while (next.length > 0) {
    const unit = next.pop()!;
    if (seen.has(unit)) continue;
    seen.add(unit);
    next.push(...(graph.get(unit)?.keys() ?? []));
  }
  return seen;
}

describe('the architecture', () => {
  const graph = unitGraph();

  it('reads every form of import between modules', () => {
    const source = [
      "import { a } from '../admin/routes';",
      "import type { B } from '../auth/staff';",
      "export { c } from './c';",
      "const d = await import('../d');",
      "import e = require('../e');",
      "import express from 'express';",
    ].join('\n');
    expect(importsOf(source)).toEqual(['../admin/routes', '../auth/staff', './c', '../d', '../e']);
    expect(graph.size).toBeGreaterThan(10);
  });

  it('has no two folders (or top-level files) that import each other', () => {
    const mutual: string[] = [];
    for (const [from, edges] of graph) {
      for (const [to, example] of edges) {
        const back = graph.get(to)?.get(from);
        if (back && from < to) mutual.push(`${from} <-> ${to}: ${example}; ${back}`);
      }
    }
    expect(mutual).toEqual([]);
  });

  it('has no folder (or top-level file) that reaches itself through others', () => {
    const reach = new Map([...graph.keys()].map((unit) => [unit, reachableFrom(graph, unit)]));
    const cycles = new Set<string>();
    for (const [unit, reached] of reach) {
      if (!reached.has(unit)) continue;
      const cycle = [...reached].filter((other) => reach.get(other)?.has(unit)).sort();
      cycles.add(`a loop through ${cycle.join(', ')}`);
    }
    expect([...cycles]).toEqual([]);
  });
});
