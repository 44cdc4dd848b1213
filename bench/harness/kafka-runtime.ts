/**
 * The Apache Kafka runtime the harness uses: pinned jars fetched from Maven Central with Maven
 * (bench/harness/kafka/pom.xml) into a cache outside the work tree, and the way to run any of their classes (brokers,
 * ZooKeeper, MirrorMaker 2, ProducerPerformance/ConsumerPerformance, DumpLogSegments) with one classpath.
 */
import { spawn, spawnSync, type ChildProcess, type SpawnOptions } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { StraitError } from '../../shared/errors';

export const DEFAULT_KAFKA_VERSION = '4.3.1';

/** The repository root (the folder with package.json), from source or from dist/. */
export function projectRoot(): string {
  let dir = __dirname;
  while (!(existsSync(join(dir, 'package.json')) && existsSync(join(dir, 'tsconfig.json')))) {
    const up = dirname(dir);
    if (up === dir) throw new Error('cannot find the strait project root');
    dir = up;
  }
  return dir;
}

export function cacheDir(): string {
  return process.env.STRAIT_CACHE_DIR ?? join(process.env.XDG_CACHE_HOME ?? join(homedir(), '.cache'), 'strait');
}

function requireTool(cmd: string, args: string[], install: string): void {
  const r = spawnSync(cmd, args, { stdio: 'ignore' });
  if (r.error !== undefined || r.status !== 0) {
    throw new StraitError('STRAIT_DEV_MISSING_TOOL', `${cmd} was not found; install ${install} (e.g. apt-get install -y ${install})`);
  }
}

export function requireJava(): void {
  requireTool('java', ['-version'], 'openjdk-17-jre-headless');
}

/** Kafka's major version: 3.x logs through reload4j, 4.x through log4j2 (and runs KRaft only). */
export function majorOf(version: string): number {
  return Number(version.split('.')[0]);
}

/** Kafka 4 moved the admin tools from the Scala core into kafka-tools (org.apache.kafka.tools). */
export function toolClass(runtime: KafkaRuntime, tool: 'AclCommand' | 'DumpLogSegments'): string {
  if (majorOf(runtime.version) >= 4) return `org.apache.kafka.tools.${tool}`;
  return tool === 'AclCommand' ? 'kafka.admin.AclCommand' : 'kafka.tools.DumpLogSegments';
}

export interface KafkaRuntime {
  version: string;
  /** folder holding libs/ with every jar */
  home: string;
  classpath: string;
}

/**
 * Returns the cached runtime for `version`, fetching it with Maven when absent. A `.complete` marker is written only
 * after Maven succeeds, so an interrupted fetch is redone.
 */
export function ensureKafka(version = DEFAULT_KAFKA_VERSION, log: (line: string) => void = () => {}): KafkaRuntime {
  if (!/^[0-9]+\.[0-9]+\.[0-9]+$/.test(version)) {
    throw new StraitError('STRAIT_USAGE', `--kafka-version: '${version}' is not a release version like ${DEFAULT_KAFKA_VERSION}`, { field: 'kafka-version' });
  }
  const home = join(cacheDir(), `kafka-${version}`);
  const libs = join(home, 'libs');
  const marker = join(home, '.complete');
  if (!existsSync(marker)) {
    requireJava();
    requireTool('mvn', ['-v'], 'maven');
    log(`fetching Apache Kafka ${version} jars from Maven Central into ${libs} ...`);
    rmSync(libs, { recursive: true, force: true });
    mkdirSync(home, { recursive: true });
    const pom = join(projectRoot(), 'bench', 'harness', 'kafka', majorOf(version) >= 4 ? 'pom.xml' : 'pom-3.xml');
    const r = spawnSync(
      'mvn',
      ['-q', '-B', '-f', pom, `-Dkafka.version=${version}`, 'dependency:copy-dependencies', `-DoutputDirectory=${libs}`, '-DincludeScope=runtime'],
      { stdio: ['ignore', 'pipe', 'pipe'], encoding: 'utf8' },
    );
    if (r.status !== 0) {
      const out = `${r.stdout ?? ''}${r.stderr ?? ''}`
        .split('\n')
        .filter((l) => /ERROR/.test(l))
        .slice(0, 3)
        .join(' ');
      throw new StraitError('STRAIT_DEV_FETCH_FAILED', `Maven could not fetch Apache Kafka ${version}: ${out || `exit ${r.status}`}`);
    }
    if (!readdirSync(libs).some((f) => f.startsWith(`kafka_2.13-${version}`))) {
      throw new StraitError('STRAIT_DEV_FETCH_FAILED', `Maven finished but ${libs} has no kafka_2.13-${version}.jar`);
    }
    writeFileSync(marker, new Date().toISOString());
  }
  return { version, home, classpath: `${libs}/*` };
}

export interface JavaOptions {
  heap?: string;
  log4j?: string;
  jvmArgs?: string[];
}

export function javaArgs(runtime: KafkaRuntime, mainClass: string, args: string[], opts: JavaOptions = {}): string[] {
  const heap = opts.heap ?? '512m';
  return [
    `-Xmx${heap}`,
    `-Xms${heap === '512m' ? '256m' : heap}`,
    '-XX:+UseG1GC',
    '-XX:MaxGCPauseMillis=20',
    '-XX:+ExitOnOutOfMemoryError',
    '-Djava.awt.headless=true',
    // Kafka 4 logs through log4j2, whose 1.2 bridge reads the same log4j 1 properties files when told to
    ...(opts.log4j !== undefined
      ? [`-Dlog4j.configuration=file:${resolve(opts.log4j)}`, ...(majorOf(runtime.version) >= 4 ? ['-Dlog4j1.compatibility=true'] : [])]
      : []),
    ...(opts.jvmArgs ?? []),
    '-cp',
    runtime.classpath,
    mainClass,
    ...args,
  ];
}

/** Starts a class from the Kafka jars; the caller owns the child and must stop it. */
export function spawnKafkaClass(runtime: KafkaRuntime, mainClass: string, args: string[], opts: JavaOptions & SpawnOptions = {}): ChildProcess {
  requireJava();
  return spawn('java', javaArgs(runtime, mainClass, args, opts), opts);
}

/** Runs a class from the Kafka jars to completion and returns its output. */
export function runKafkaClass(
  runtime: KafkaRuntime,
  mainClass: string,
  args: string[],
  opts: JavaOptions = {},
): { status: number; stdout: string; stderr: string } {
  requireJava();
  const r = spawnSync('java', javaArgs(runtime, mainClass, args, { heap: '256m', ...opts }), { encoding: 'utf8', maxBuffer: 256 * 1024 * 1024 });
  return { status: r.status ?? -1, stdout: r.stdout ?? '', stderr: r.stderr ?? '' };
}
