// The 3FS patch (integrations/3fs/patches/) must not change 3FS's own compile flags.
// A minimal CMake project shaped like 3FS's top-level CMakeLists.txt (third_party
// libraries between store_compile_flags()/restore_compile_flags(), then -Werror and the
// -O3 additions, then src/, tests/, benchmarks/) gets the patch's top-level hunk applied with
// `patch -p1 -F0`; the flags src/, tests/ and benchmarks/ see must be the same before and after.
// The two macros are written here from their documented behaviour (save the C/C++ flag
// variables, put them back), not copied from 3FS.
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';

const ROOT = path.resolve(import.meta.dirname, '../..');
const PATCH = path.join(ROOT, 'integrations/3fs/patches/0001-HybridKvEngine-kv_engine_type-custom.patch');
const have = (cmd: string) => {
  try {
    execFileSync(cmd, ['--version'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
};
const tools = have('cmake') && have('patch');

const FLAG_VARS = ['C_FLAGS', 'C_FLAGS_DEBUG', 'C_FLAGS_RELEASE', 'C_FLAGS_RELWITHDEBINFO', 'CXX_FLAGS', 'CXX_FLAGS_DEBUG', 'CXX_FLAGS_RELEASE', 'CXX_FLAGS_RELWITHDEBINFO'];

const compileFlagsCmake = `# store_compile_flags(): remember the C/C++ flag variables (all configurations).
# restore_compile_flags(): set them back to what was remembered.
macro(store_compile_flags)
  foreach(v ${FLAG_VARS.join(' ')})
    set(SAVED_\${v} "\${CMAKE_\${v}}")
  endforeach()
endmacro()
macro(restore_compile_flags)
  foreach(v ${FLAG_VARS.join(' ')})
    set(CMAKE_\${v} "\${SAVED_\${v}}")
  endforeach()
endmacro()
`;

// The shape of 3FS's top-level CMakeLists.txt around the patched place (e2cef822).
const topLevel = `cmake_minimum_required(VERSION 3.18)
project(mini3fs LANGUAGES NONE)
include(cmake/CompileFlags.cmake)

# third-party code can't build under -Werror
store_compile_flags()
add_subdirectory("third_party/fmt" EXCLUDE_FROM_ALL)
restore_compile_flags()
add_subdirectory("third_party/liburing-cmake" EXCLUDE_FROM_ALL)
restore_compile_flags()

set (CMAKE_CXX_FLAGS "\${CMAKE_CXX_FLAGS} -Wall -Wextra -Werror -Wpedantic")

set (CMAKE_CXX_FLAGS                     "\${CMAKE_CXX_FLAGS} \${COMPILER_FLAGS}")
set (CMAKE_CXX_FLAGS_RELWITHDEBINFO      "\${CMAKE_CXX_FLAGS_RELWITHDEBINFO} -O3 -g")
set (CMAKE_CXX_FLAGS_DEBUG               "\${CMAKE_CXX_FLAGS_DEBUG} -O0 -g -fno-inline")
set (CMAKE_C_FLAGS_RELWITHDEBINFO        "\${CMAKE_C_FLAGS_RELWITHDEBINFO} -O3 -g")

enable_testing()
include(cmake/AddCrate.cmake)
configure_file(cmake/CTestCustom.cmake \${CMAKE_BINARY_DIR} @ONLY)

add_subdirectory(src)
add_subdirectory(tests)
add_subdirectory(benchmarks)
`;

// A subdirectory that records the flags it was configured with in OUT/<name>.flags.
const recorder = (name: string) =>
  `file(WRITE "\${OUT}/${name}.flags" "CXX=[\${CMAKE_CXX_FLAGS}]\\nCXX_RELWITHDEBINFO=[\${CMAKE_CXX_FLAGS_RELWITHDEBINFO}]\\nCXX_DEBUG=[\${CMAKE_CXX_FLAGS_DEBUG}]\\nC_RELWITHDEBINFO=[\${CMAKE_C_FLAGS_RELWITHDEBINFO}]\\n")\n`;

// The part of the patch that changes the top-level CMakeLists.txt.
function topLevelHunk(): string {
  const text = fs.readFileSync(PATCH, 'utf8');
  const parts = text.split(/^(?=--- a\/)/m).filter((p) => p.startsWith('--- a/'));
  const top = parts.filter((p) => p.startsWith('--- a/CMakeLists.txt\n'));
  expect(top.length).toBe(1);
  return top[0]!;
}

const dirs: string[] = [];
afterAll(() => {
  for (const d of dirs) fs.rmSync(d, { recursive: true, force: true });
});

function makeTree(): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'txkv-3fs-cmake-'));
  dirs.push(dir);
  const write = (rel: string, content: string) => {
    fs.mkdirSync(path.dirname(path.join(dir, rel)), { recursive: true });
    fs.writeFileSync(path.join(dir, rel), content);
  };
  write('cmake/CompileFlags.cmake', compileFlagsCmake);
  write('cmake/AddCrate.cmake', '');
  write('cmake/CTestCustom.cmake', '');
  write('CMakeLists.txt', topLevel);
  // A third-party library that changes flags in its own scope, like fmt/folly do.
  write('third_party/fmt/CMakeLists.txt', 'set(CMAKE_CXX_FLAGS "${CMAKE_CXX_FLAGS} -w")\n');
  write('third_party/liburing-cmake/CMakeLists.txt', '');
  write('third_party/txkv/clients/cpp/CMakeLists.txt', recorder('txkv'));
  write('src/CMakeLists.txt', recorder('src'));
  write('tests/CMakeLists.txt', recorder('tests'));
  write('benchmarks/CMakeLists.txt', recorder('benchmarks'));
  return dir;
}

function configure(dir: string, build: string): Record<string, string> {
  const out = path.join(dir, build + '-out');
  fs.mkdirSync(out, { recursive: true });
  execFileSync('cmake', ['-S', dir, '-B', path.join(dir, build), `-DOUT=${out}`, '-DCMAKE_BUILD_TYPE=RelWithDebInfo'], { stdio: 'pipe', timeout: 30_000 });
  const flags: Record<string, string> = {};
  for (const f of fs.readdirSync(out)) flags[f.replace(/\.flags$/, '')] = fs.readFileSync(path.join(out, f), 'utf8');
  return flags;
}

describe.skipIf(!tools)('3FS CMake patch keeps 3FS flags', () => {
  it('applies to the 3FS-shaped top level with no fuzz, and src/, tests/, benchmarks/ keep -Wall -Wextra -Werror -Wpedantic and -O3', () => {
    const dir = makeTree();
    const before = configure(dir, 'before');
    expect(before.src).toContain('-Wall -Wextra -Werror -Wpedantic');
    expect(before.src).toMatch(/CXX_RELWITHDEBINFO=\[[^\]]*-O3/);
    expect(before.txkv).toBeUndefined(); // not built before the patch

    execFileSync('patch', ['-p1', '-F0', '--no-backup-if-mismatch'], { cwd: dir, input: topLevelHunk(), stdio: ['pipe', 'pipe', 'pipe'], timeout: 10_000 });
    const patched = fs.readFileSync(path.join(dir, 'CMakeLists.txt'), 'utf8');
    const txkvAt = patched.indexOf('add_subdirectory("third_party/txkv/clients/cpp"');
    expect(txkvAt).toBeGreaterThan(0);
    expect(txkvAt).toBeLessThan(patched.indexOf('-Wall -Wextra -Werror -Wpedantic'));

    const after = configure(dir, 'after');
    expect(after.src).toBe(before.src);
    expect(after.tests).toBe(before.tests);
    expect(after.benchmarks).toBe(before.benchmarks);
    // txkv is configured as a third-party library: without 3FS's -Werror (Beast and
    // FlatBuffers headers are not -Wpedantic clean on every compiler).
    expect(after.txkv).toBeDefined();
    expect(after.txkv).not.toContain('-Werror');
  });

  it('the whole patch touches exactly the five files the guide lists', () => {
    const files = [...fs.readFileSync(PATCH, 'utf8').matchAll(/^\+\+\+ b\/(\S+)/gm)].map((m) => m[1]).sort();
    expect(files).toEqual(['CMakeLists.txt', 'src/fdb/CMakeLists.txt', 'src/fdb/HybridKvEngine.cc', 'src/fdb/HybridKvEngine.h', 'src/fdb/HybridKvEngineConfig.h']);
  });
});
