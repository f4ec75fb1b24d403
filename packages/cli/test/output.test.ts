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
});
