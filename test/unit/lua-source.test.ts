/**
 * luaSource: a script's includes are inlined recursively, each file once, and an include cycle is
 * refused with the chain that makes it (fixtures in a folder of the test's own).
 */
import { mkdtempSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { luaSource } from '../../src/stock';

let dir: string;

beforeAll(() => {
  dir = mkdtempSync(path.join(os.tmpdir(), 'stockhold-lua-'));
  mkdirSync(path.join(dir, 'includes'));
  const write = (name: string, text: string) => writeFileSync(path.join(dir, `${name}.lua`), text);
  write('includes/base', 'local function base() end\n');
  write('includes/middle', '--- @include "includes/base"\nlocal function middle() end\n');
  write('script', '--- @include "includes/middle"\n--- @include "includes/base"\nreturn 1\n');
  write('includes/a', '--- @include "includes/b"\n');
  write('includes/b', '--- @include "includes/a"\n');
  write('cyclic', '--- @include "includes/a"\nreturn 1\n');
});

afterAll(() => rmSync(dir, { recursive: true, force: true }));

test('inlines includes of includes, each file once', () => {
  const source = luaSource('script', dir);
  expect(source).not.toContain('@include');
  expect(source.match(/local function base/g)).toHaveLength(1);
  expect(source.indexOf('local function base')).toBeLessThan(source.indexOf('local function middle'));
  expect(source.trim().endsWith('return 1')).toBe(true);
});

test('refuses an include cycle, naming the chain', () => {
  expect(() => luaSource('cyclic', dir)).toThrow('Lua include cycle: cyclic -> includes/a -> includes/b -> includes/a');
});

test('every script of lua/ loads: no include is missing and none is cyclic', () => {
  for (const name of [
    'hold',
    'precheck',
    'release',
    'commit',
    'move',
    'adjust',
    'load',
    'restore-hold',
    'fix-reserved',
    'rebase',
    'settings',
    'fix-customers',
    'release-fence',
  ]) {
    expect(luaSource(name)).not.toMatch(/^--- @include/m);
  }
});
