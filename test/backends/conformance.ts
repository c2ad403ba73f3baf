// The shared backend conformance suite lives in src/testing (published as `dogpile/testing`, so a
// third-party backend can run it); this is the name the test files import it by.
export { backendConformance, type ConformanceOptions } from '../../src/testing/conformance.js';
