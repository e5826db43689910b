/**
 * The zoo's shipped tables were written before cells carried digests: exporting them says so in
 * one note (the numbers come from results.json) instead of calling every cell damaged, while a
 * cell whose digest does not match is still a warning of its own.
 */
import fs from 'node:fs';
import path from 'node:path';
import { expect, it } from 'vitest';
import { readGrid } from '../../cli/eval-command.js';
import { writeCell } from '../../eval/cells.js';
import { ROOT, tmpDir } from '../helpers.js';

it('cells without a digest: one note; a cell with a wrong digest: its own warning', () => {
  const dir = tmpDir('legacy-cells');
  fs.cpSync(path.join(ROOT, 'zoo', 'results', 'fashion-mnist'), dir, { recursive: true });
  const cells = fs.readdirSync(path.join(dir, 'cells')).filter((f) => f.endsWith('.json'));
  expect(cells.length).toBeGreaterThan(1);
  // the shipped cells predate digests
  for (const f of cells)
    expect(JSON.parse(fs.readFileSync(path.join(dir, 'cells', f), 'utf8')).digest).toBeUndefined();
  const sealed = path.join(dir, 'cells', cells[0]);
  writeCell(sealed, JSON.parse(fs.readFileSync(sealed, 'utf8')));
  const tampered = JSON.parse(fs.readFileSync(sealed, 'utf8'));
  tampered.stats.robust_acc += 0.01;
  fs.writeFileSync(sealed, JSON.stringify(tampered));

  const messages: string[] = [];
  const grid = readGrid(dir, (m) => messages.push(m));
  expect(grid.cells.length).toBeGreaterThan(0);
  expect(messages).toHaveLength(2);
  expect(messages[0]).toBe(
    `warning: ${sealed}: damaged cell (content does not match its digest); its gallery is left out`,
  );
  expect(messages[1]).toMatch(
    new RegExp(
      `^note: ${cells.length - 1} cell file\\(s\\) in .* have no digest \\(written by a robust older than digests\\)`,
    ),
  );
  fs.rmSync(dir, { recursive: true, force: true });
});
