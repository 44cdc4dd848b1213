import { join } from 'node:path';
import { projectRoot } from '../../bench/harness/kafka-runtime';

/** The shared test clusters' state folder (separate from `strait dev`'s, so a dev session and the tests coexist). */
export const TEST_DEV_DIR = process.env.STRAIT_TEST_DIR ?? join(projectRoot(), '.strait', 'test');
export const TEST_CLUSTERS = 3;
