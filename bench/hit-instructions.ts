// Instructions per fresh hit, counted by valgrind (exact where timings on a shared machine are
// not). Run twice with two hit counts:
//   valgrind --tool=callgrind node --single-threaded --import tsx bench/hit-instructions.ts <subject> <keys> <hits>
// The difference of the two totals divided by the difference of the hit counts is the cost of one
// hit: start-up, the loader and the misses that store the keys cancel out. Subjects as in
// bench/hit-subjects.ts (raw, plain, options, listener, guarded, all); keys round-robin.
import { hitSubject, warmKeys } from './hit-subjects.js';

const [subject = 'plain', keyArg = '10000', hitArg = '100000'] = process.argv.slice(2);
const keyCount = Number(keyArg);
const hits = Number(hitArg);
const call = hitSubject(subject);
const { keys, creators } = await warmKeys(call, keyCount);
let i = 0;
for (let n = 0; n < hits; n++) {
  await call(keys[i] as string, creators[i] as () => Promise<object>);
  i = i + 1 === keyCount ? 0 : i + 1;
}
process.stdout.write(`${subject}: ${hits} hits over ${keyCount} keys\n`);
