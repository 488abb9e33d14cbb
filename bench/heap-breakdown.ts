/**
 * `node bench/heap-breakdown.ts <file.heapsnapshot> [--json]`: where a V8 heap snapshot's
 * memory goes, by what holds it (retained size from the dominator tree), for the
 * operator: each watcher's cache (by its resource), the Prometheus metrics (registry and
 * every metric object), the work queue, the controller's per-EventLog maps, compiled
 * code, and the rest by node type / constructor.
 *
 * Retained size of X = the bytes that would be freed if X were gone (X dominates them).
 * Groups are disjoint: an object is counted in the first group (in the order printed)
 * that dominates it; "other" is everything no group dominates, by node type/constructor.
 *
 * Pure analysis (`analyzeSnapshot`) is exported for bench/operator.ts; this file also
 * runs as a script. Prints a Markdown table.
 */
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

interface Snapshot {
  snapshot: { meta: { node_fields: string[]; node_types: [string[], ...unknown[]]; edge_fields: string[]; edge_types: [string[], ...unknown[]] }; node_count: number };
  nodes: number[];
  edges: number[];
  strings: string[];
}

export interface HeapGroup {
  group: string;
  bytes: number;
  /** Objects (nodes) in the group. */
  count: number;
  /** Bytes by V8 node type (object, string, array, ...) within the group. */
  byType?: Record<string, number>;
}

export interface HeapBreakdown {
  totalBytes: number;
  groups: HeapGroup[];
}

/** Dominator tree (Cooper, Harvey & Kennedy: "A Simple, Fast Dominance Algorithm") over node indices; root 0. */
function dominators(n: number, firstEdge: Int32Array, edgeTo: Int32Array, edgeSkip: Uint8Array): Int32Array {
  // Post-order by iterative DFS from the root.
  const order = new Int32Array(n).fill(-1);
  const post: number[] = [];
  const stackNode: number[] = [0];
  const stackEdge: number[] = [firstEdge[0]!];
  const visited = new Uint8Array(n);
  visited[0] = 1;
  while (stackNode.length > 0) {
    const top = stackNode.length - 1;
    const v = stackNode[top]!;
    const e = stackEdge[top]!;
    if (e < firstEdge[v + 1]!) {
      stackEdge[top] = e + 1;
      if (edgeSkip[e]) continue;
      const w = edgeTo[e]!;
      if (!visited[w]) {
        visited[w] = 1;
        stackNode.push(w);
        stackEdge.push(firstEdge[w]!);
      }
    } else {
      order[v] = post.length;
      post.push(v);
      stackNode.pop();
      stackEdge.pop();
    }
  }
  // Predecessors (only reachable nodes, non-skipped edges).
  const predCount = new Int32Array(n + 1);
  for (let v = 0; v < n; v++) {
    if (!visited[v]) continue;
    for (let e = firstEdge[v]!; e < firstEdge[v + 1]!; e++) if (!edgeSkip[e] && visited[edgeTo[e]!]) predCount[edgeTo[e]! + 1]!++;
  }
  for (let i = 0; i < n; i++) predCount[i + 1]! += predCount[i]!;
  const preds = new Int32Array(predCount[n]!);
  const fill = predCount.slice();
  for (let v = 0; v < n; v++) {
    if (!visited[v]) continue;
    for (let e = firstEdge[v]!; e < firstEdge[v + 1]!; e++) {
      if (edgeSkip[e]) continue;
      const w = edgeTo[e]!;
      if (visited[w]) preds[fill[w]!++] = v;
    }
  }
  const idom = new Int32Array(n).fill(-1);
  idom[0] = 0;
  const intersect = (a: number, b: number): number => {
    while (a !== b) {
      while (order[a]! < order[b]!) a = idom[a]!;
      while (order[b]! < order[a]!) b = idom[b]!;
    }
    return a;
  };
  for (let changed = true; changed; ) {
    changed = false;
    for (let i = post.length - 1; i >= 0; i--) {
      const v = post[i]!;
      if (v === 0) continue;
      let nd = -1;
      for (let p = predCount[v]!; p < predCount[v + 1]!; p++) {
        const u = preds[p]!;
        if (idom[u] === -1) continue;
        nd = nd === -1 ? u : intersect(u, nd);
      }
      if (nd !== -1 && idom[v] !== nd) {
        idom[v] = nd;
        changed = true;
      }
    }
  }
  return idom;
}

/** Groups retained memory of a parsed snapshot. */
export function analyzeSnapshot(s: Snapshot): HeapBreakdown {
  const meta = s.snapshot.meta;
  const nf = meta.node_fields.length;
  const ef = meta.edge_fields.length;
  const nType = meta.node_fields.indexOf('type');
  const nName = meta.node_fields.indexOf('name');
  const nSize = meta.node_fields.indexOf('self_size');
  const nEdges = meta.node_fields.indexOf('edge_count');
  const eType = meta.edge_fields.indexOf('type');
  const eName = meta.edge_fields.indexOf('name_or_index');
  const eTo = meta.edge_fields.indexOf('to_node');
  const nodeTypes = meta.node_types[0];
  const edgeTypes = meta.edge_types[0];
  const n = s.nodes.length / nf;
  const firstEdge = new Int32Array(n + 1);
  for (let i = 0; i < n; i++) firstEdge[i + 1] = firstEdge[i]! + s.nodes[i * nf + nEdges]!;
  const m = s.edges.length / ef;
  const edgeTo = new Int32Array(m);
  const edgeSkip = new Uint8Array(m);
  const weak = edgeTypes.indexOf('weak');
  const shortcut = edgeTypes.indexOf('shortcut');
  for (let e = 0; e < m; e++) {
    edgeTo[e] = s.edges[e * ef + eTo]! / nf;
    const t = s.edges[e * ef + eType]!;
    if (t === weak || t === shortcut) edgeSkip[e] = 1;
  }
  const idom = dominators(n, firstEdge, edgeTo, edgeSkip);
  const selfSize = (i: number) => s.nodes[i * nf + nSize]!;
  const typeOf = (i: number) => nodeTypes[s.nodes[i * nf + nType]!]!;
  const nameOf = (i: number) => s.strings[s.nodes[i * nf + nName]!]!;
  const edgeName = (e: number) => {
    const t = edgeTypes[s.edges[e * ef + eType]!];
    const v = s.edges[e * ef + eName]!;
    return t === 'element' || t === 'hidden' ? String(v) : s.strings[v]!;
  };
  const child = (i: number, name: string): number | undefined => {
    for (let e = firstEdge[i]!; e < firstEdge[i + 1]!; e++) if (edgeName(e) === name) return edgeTo[e];
    return undefined;
  };
  const stringValue = (i: number | undefined): string | undefined => (i !== undefined && /string/.test(typeOf(i)) ? nameOf(i) : undefined);

  // Retained sizes: children before parents (reverse of a BFS over the dominator tree).
  const kids = new Int32Array(n + 1);
  for (let v = 1; v < n; v++) if (idom[v]! >= 0) kids[idom[v]! + 1]!++;
  for (let i = 0; i < n; i++) kids[i + 1]! += kids[i]!;
  const kidList = new Int32Array(kids[n]!);
  const kf = kids.slice();
  for (let v = 1; v < n; v++) if (idom[v]! >= 0) kidList[kf[idom[v]!]!++] = v;
  const bfs: number[] = [0];
  for (let i = 0; i < bfs.length; i++) for (let k = kids[bfs[i]!]!; k < kids[bfs[i]! + 1]!; k++) bfs.push(kidList[k]!);
  const retained = new Float64Array(n);
  for (let i = bfs.length - 1; i >= 0; i--) {
    const v = bfs[i]!;
    retained[v]! += selfSize(v);
    if (v !== 0) retained[idom[v]!]! += retained[v]!;
  }

  // Group roots: objects whose retained memory is attributed to a named group.
  const roots = new Map<number, string>();
  for (let i = 0; i < n; i++) {
    if (typeOf(i) !== 'object') continue;
    const ctor = nameOf(i);
    if (ctor === 'Watcher') {
      const store = child(i, '#store');
      const name = stringValue(child(i, 'name')) ?? '?';
      if (store !== undefined) roots.set(store, `cache: ${name.split(' ')[0]}`);
    } else if (ctor === 'Registry' || ctor === 'Gauge' || ctor === 'Counter' || ctor === 'Histogram' || ctor === 'Summary') roots.set(i, 'prom-client metrics (all series)');
    else if (ctor === 'WorkQueue') roots.set(i, 'work queue');
    else if (ctor === 'ServerObserver') roots.set(i, 'poll observer (timeouts, usage samples)');
    else if (ctor === 'OwnWrites') roots.set(i, 'own-writes tracker');
    else if (ctor === 'EventRecorder') roots.set(i, 'event recorder');
  }
  const groupOf = new Map<string, { bytes: number; count: number; byType: Record<string, number> }>();
  const add = (g: string, bytes: number, count: number, type?: string) => {
    const x = groupOf.get(g) ?? { bytes: 0, count: 0, byType: {} };
    x.bytes += bytes;
    x.count += count;
    if (type !== undefined) x.byType[type] = (x.byType[type] ?? 0) + bytes;
    groupOf.set(g, x);
  };
  // Walk the dominator tree top-down; the first group root on the way claims the subtree.
  const claimed = new Int32Array(n).fill(-1);
  const groupNames: string[] = [];
  const gIndex = new Map<string, number>();
  for (const v of bfs) {
    const parent = v === 0 ? -1 : idom[v]!;
    const inherited = parent >= 0 ? claimed[parent]! : -1;
    const own = roots.get(v);
    if (inherited >= 0) claimed[v] = inherited;
    else if (own !== undefined) {
      let gi = gIndex.get(own);
      if (gi === undefined) {
        gi = groupNames.length;
        groupNames.push(own);
        gIndex.set(own, gi);
      }
      claimed[v] = gi;
    }
  }
  let total = 0;
  for (const v of bfs) {
    const size = selfSize(v);
    total += size;
    const g = claimed[v]!;
    if (g >= 0) {
      add(groupNames[g]!, size, 1, typeOf(v));
      continue;
    }
    const t = typeOf(v);
    const key =
      t === 'code' ? 'compiled code (V8 code objects)'
      : t === 'string' || t === 'concatenated string' || t === 'sliced string' ? 'strings (not in a group above)'
      : t === 'closure' ? 'functions (closures)'
      : t === 'array' ? `arrays (${nameOf(v) || 'internal'})`
      : t === 'hidden' || t === 'synthetic' || t === 'object shape' ? 'V8 internal (maps, shapes, feedback)'
      : t === 'native' ? 'native'
      : t === 'object' ? `objects: ${nameOf(v) || '(anonymous)'}`
      : t;
    add(`other: ${key}`, size, 1);
  }
  const groups = [...groupOf.entries()]
    .map(([group, x]) => ({ group, bytes: x.bytes, count: x.count, ...(group.startsWith('other: ') ? {} : { byType: x.byType }) }))
    .sort((a, b) => b.bytes - a.bytes);
  return { totalBytes: total, groups };
}

/** Markdown: named groups first, then the largest "other" rows (the rest summed). */
export function breakdownTable(b: HeapBreakdown, otherRows = 8): string {
  const mib = (x: number) => (x / 2 ** 20).toFixed(1);
  const named = b.groups.filter((g) => !g.group.startsWith('other: '));
  const other = b.groups.filter((g) => g.group.startsWith('other: '));
  const shown = other.slice(0, otherRows);
  const rest = other.slice(otherRows).reduce((a, g) => a + g.bytes, 0);
  const lines = ['| held by | MiB | objects | of which strings, MiB |', '|---|---:|---:|---:|'];
  const strings = (g: HeapGroup) => (g.byType ? mib(Object.entries(g.byType).filter(([t]) => /string/.test(t)).reduce((a, [, v]) => a + v, 0)) : '');
  for (const g of [...named, ...shown]) lines.push(`| ${g.group} | ${mib(g.bytes)} | ${g.count} | ${strings(g)} |`);
  lines.push(`| other: everything else | ${mib(rest)} | | |`, `| **total (V8 heap, live objects)** | **${mib(b.totalBytes)}** | | |`);
  return lines.join('\n');
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const file = process.argv[2];
  if (!file) {
    process.stderr.write('usage: node bench/heap-breakdown.ts <file.heapsnapshot> [--json]\n');
    process.exit(2);
  }
  const b = analyzeSnapshot(JSON.parse(readFileSync(file, 'utf8')) as Snapshot);
  process.stdout.write(process.argv.includes('--json') ? `${JSON.stringify(b)}\n` : `${breakdownTable(b)}\n`);
}
