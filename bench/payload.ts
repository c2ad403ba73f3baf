// The value the benchmarks cache: a user record of about 200 bytes as JSON, with strings of its own
// per entry (as a database row would have), so memory figures count a realistic object.

/** One cached record; `JSON.stringify(payload(i)).length` is about 200 for the ids used here. */
export interface BenchRecord {
  id: number;
  name: string;
  email: string;
  active: boolean;
  score: number;
  roles: string[];
  bio: string;
}

/** The record for entry `i`. */
export function payload(i: number): BenchRecord {
  return {
    id: i,
    name: `User Number ${i}`,
    email: `user.${i}@example.com`,
    active: i % 2 === 0,
    score: i * 1.5,
    roles: ['reader', i % 3 === 0 ? 'editor' : 'guest'],
    bio: `Member ${i} since 2024; likes caching, queues and long walks by the sea.`,
  };
}
