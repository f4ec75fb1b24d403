import fc from 'fast-check';
import { describe, expect, test } from 'vitest';
import { closeMatches, editDistance, fields, renderBlocks, renderJson, renderTree, table, text } from '../src/index.js';

describe('output layer', () => {
  test('tables are plain text with aligned columns and no colour codes', () => {
    const out = renderBlocks([table(['name', { header: 'n', align: 'right' }], [['a', '1'], ['bbb', '100']], 'title')]);
    expect(out).not.toContain('\u001b[');
    const lines = out.trimEnd().split('\n');
    expect(lines[0]).toBe('title');
    const rowA = lines.find((l) => l.includes(' a '))!;
    const rowB = lines.find((l) => l.includes(' bbb '))!;
    // Right-aligned numbers end in the same column.
    expect(rowA.indexOf('1 ') + 1).toBe(rowB.indexOf('100 ') + 3);
    expect(rowA.length).toBe(rowB.length);
  });

  test('trees draw branches', () => {
    expect(renderTree({ label: 'host', children: [
      { label: 'group 12', children: [{ label: '0000:00:03.0' }, { label: '0000:00:03.1' }] },
      { label: 'group 13' },
    ] })).toBe([
      'host',
      '├─ group 12',
      '│  ├─ 0000:00:03.0',
      '│  └─ 0000:00:03.1',
      '└─ group 13',
    ].join('\n'));
  });

  test('fields line up and blocks are separated by blank lines', () => {
    expect(renderBlocks([fields([['a', '1'], ['long', '2']]), text('end')])).toBe('a:    1\nlong: 2\n\nend\n');
    expect(renderBlocks([])).toBe('');
  });

  test('JSON turns bigints into decimal strings', () => {
    expect(renderJson({ iova: 1n << 40n, n: 1 })).toBe('{\n  "iova": "1099511627776",\n  "n": 1\n}\n');
  });

  test('close matches: fragments first, then small edit distances', () => {
    expect(editDistance('kitten', 'sitting')).toBe(3);
    expect(editDistance('', 'abc')).toBe(3);
    const names = ['VFIO_IOMMU_MAP_DMA', 'VFIO_IOMMU_UNMAP_DMA', 'VFIO_GET_API_VERSION', 'VFIO_SET_IOMMU'];
    expect(closeMatches('map_dma', names)).toEqual(['VFIO_IOMMU_MAP_DMA', 'VFIO_IOMMU_UNMAP_DMA']);
    expect(closeMatches('VFIO_IOMMU_MAP_DAM', names)[0]).toBe('VFIO_IOMMU_MAP_DMA');
    expect(closeMatches('zzzzzzzz', names)).toEqual([]);
  });

  test('edit distance is a metric bounded by the longer string', () => {
    const word = fc.string({ unit: fc.constantFrom('A', 'B', 'C', '_'), maxLength: 12 });
    fc.assert(fc.property(word, word, word, (a, b, c) => {
      const ab = editDistance(a, b);
      expect(ab).toBe(editDistance(b, a));
      expect(ab === 0).toBe(a === b);
      expect(ab).toBeLessThanOrEqual(Math.max(a.length, b.length));
      expect(ab).toBeGreaterThanOrEqual(Math.abs(a.length - b.length));
      expect(editDistance(a, c)).toBeLessThanOrEqual(ab + editDistance(b, c));
    }));
  });

  test('close matches come from the candidates, at most `limit`, and an exact name comes first', () => {
    const name = fc.string({ unit: fc.constantFrom('V', 'F', 'I', 'O', '_', 'M', 'A', 'P'), minLength: 1, maxLength: 10 });
    fc.assert(fc.property(fc.uniqueArray(name, { maxLength: 20 }), name, fc.integer({ min: 1, max: 6 }), (names, query, limit) => {
      const got = closeMatches(query, names, limit);
      expect(got.length).toBeLessThanOrEqual(limit);
      expect(new Set(got).size).toBe(got.length);
      for (const g of got) expect(names).toContain(g);
      if (names.includes(query)) expect(got[0]).toBe(query);
    }));
  });
});
