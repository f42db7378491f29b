import { Command, InvalidArgumentError, Option } from 'commander';
import { runDemo } from './demo.js';
import { startServe } from './serve.js';
import { ConfigError, resolveServeConfig, type ServeFlags } from './serve-config.js';
import { runTrace, type TraceFlags } from './trace.js';
import { KVMP_VERSION } from './version.js';

function int(name: string, min = 0) {
  return (v: string): number => {
    const n = Number(v);
    if (!Number.isInteger(n) || n < min) throw new InvalidArgumentError(`${name} must be an integer ≥ ${min}`);
    return n;
  };
}

function num(name: string) {
  return (v: string): number => {
    const n = Number(v);
    if (!Number.isFinite(n)) throw new InvalidArgumentError(`${name} must be a number`);
    return n;
  };
}

/** `kvmp serve` options as commander parses them (negated and env-fed flags before normalising). */
type RawServeFlags = Omit<ServeFlags, 'metrics' | 'eventLogging' | 'enableTracing' | 'demo'> & {
  readonly disableMetrics?: boolean;
  readonly disableLogging?: boolean;
  readonly enableTracing?: boolean | string;
  readonly demo?: boolean;
};

/** A flag with a `KVMP_*` environment fallback (the flag wins). */
function opt(flags: string, description: string, env: string): Option {
  return new Option(flags, description).env(env);
}

/** The `kvmp` command line (commander). */
export function buildProgram(out: (line: string) => void = (l) => process.stdout.write(`${l}\n`)): Command {
  const program = new Command('kvmp')
    .description('kvmp: KV-cache offload server for LLM inference engines')
    .version(KVMP_VERSION)
    .showHelpAfterError();

  program
    .command('serve')
    .description('run the cache server: ZMQ/msgpack protocol for engines, HTTP /healthz /status /metrics')
    .addOption(opt('--host <host>', 'ZMQ bind address', 'KVMP_HOST').default('127.0.0.1'))
    .addOption(opt('--port <port>', 'ZMQ port (0: any free port)', 'KVMP_PORT').default(5555).argParser(int('--port')))
    .addOption(opt('--ipc <path>', 'bind ipc://<path> instead of TCP', 'KVMP_IPC'))
    .addOption(
      opt('--chunk-size <tokens>', 'tokens per chunk', 'KVMP_CHUNK_SIZE')
        .default(256)
        .argParser(int('--chunk-size', 1)),
    )
    .addOption(opt('--l1-size-gb <gb>', 'L1 host memory', 'KVMP_L1_SIZE_GB').default(1).argParser(num('--l1-size-gb')))
    .addOption(opt('--eviction-policy <policy>', 'L1 eviction policy (LRU)', 'KVMP_EVICTION_POLICY').default('LRU'))
    .addOption(
      opt('--eviction-trigger-watermark <ratio>', 'L1 usage that triggers eviction', 'KVMP_EVICTION_TRIGGER_WATERMARK')
        .default(0.8)
        .argParser(num('--eviction-trigger-watermark')),
    )
    .addOption(
      opt('--eviction-ratio <ratio>', 'share of L1 freed per eviction', 'KVMP_EVICTION_RATIO')
        .default(0.2)
        .argParser(num('--eviction-ratio')),
    )
    .addOption(
      opt('--l1-read-ttl-seconds <s>', 'read-lock TTL', 'KVMP_L1_READ_TTL_SECONDS')
        .default(300)
        .argParser(num('--l1-read-ttl-seconds')),
    )
    .addOption(
      opt('--l1-write-ttl-seconds <s>', 'write-lock TTL', 'KVMP_L1_WRITE_TTL_SECONDS')
        .default(600)
        .argParser(num('--l1-write-ttl-seconds')),
    )
    .addOption(
      opt('--session-ttl-seconds <s>', 'idle sessions are ended after this', 'KVMP_SESSION_TTL_SECONDS')
        .default(600)
        .argParser(num('--session-ttl-seconds')),
    )
    .addOption(opt('--device <device>', 'copy backend', 'KVMP_DEVICE').choices(['cpu', 'cuda']).default('cpu'))
    .addOption(
      opt('--cuda-device <n>', 'CUDA device ordinal', 'KVMP_CUDA_DEVICE').default(0).argParser(int('--cuda-device')),
    )
    .addOption(
      opt('--hash-threads <n>', 'prompt hashing threads', 'KVMP_HASH_THREADS').argParser(int('--hash-threads', 1)),
    )
    .addOption(
      opt('--max-message-mb <mb>', 'per-message limit (engine-driven KV bytes)', 'KVMP_MAX_MESSAGE_MB')
        .default(64)
        .argParser(num('--max-message-mb')),
    )
    .addOption(
      opt(
        '--engine-staging-chunks <n>',
        'chunks staged per engine-driven instance',
        'KVMP_ENGINE_STAGING_CHUNKS',
      ).argParser(int('--engine-staging-chunks', 1)),
    )
    .addOption(opt('--http-host <host>', 'HTTP bind address', 'KVMP_HTTP_HOST').default('127.0.0.1'))
    .addOption(
      opt('--http-port <port>', 'HTTP port (0: any free port)', 'KVMP_HTTP_PORT')
        .default(8080)
        .argParser(int('--http-port')),
    )
    .addOption(new Option('--no-http', 'no HTTP endpoints'))
    .addOption(new Option('--disable-metrics', 'no metrics subscriber (/metrics answers 503)'))
    .addOption(new Option('--disable-logging', 'no event logging subscriber'))
    .addOption(opt('--log-level <level>', 'debug | info | warn | error | silent', 'KVMP_LOG_LEVEL').default('info'))
    .addOption(
      opt('--enable-tracing', 'export request spans (needs --otlp-endpoint or --trace-file)', 'KVMP_ENABLE_TRACING'),
    )
    .addOption(
      opt(
        '--otlp-endpoint <url>',
        'OTLP base URL, e.g. http://127.0.0.1:4318 (default OTEL_EXPORTER_OTLP_ENDPOINT)',
        'KVMP_OTLP_ENDPOINT',
      ),
    )
    .addOption(
      opt(
        '--otlp-protocol <protocol>',
        'http/protobuf | http/json | grpc (default OTEL_EXPORTER_OTLP_PROTOCOL)',
        'KVMP_OTLP_PROTOCOL',
      ),
    )
    .addOption(opt('--trace-file <path>', 'write spans as JSON lines instead of OTLP', 'KVMP_TRACE_FILE'))
    .addOption(opt('--service-instance-id <id>', 'OTel service.instance.id', 'KVMP_SERVICE_INSTANCE_ID'))
    .addOption(
      opt('--event-ring-capacity <slots>', 'event ring slots (power of two)', 'KVMP_EVENT_RING_CAPACITY').argParser(
        int('--event-ring-capacity', 1),
      ),
    )
    .addOption(
      opt(
        '--viewer-traces <n>',
        'finished request trees kept for /traces and kvmp trace (0: off)',
        'KVMP_VIEWER_TRACES',
      ).argParser(int('--viewer-traces')),
    )
    .addOption(new Option('--demo', 'also run a demo engine workload against this server'))
    .addOption(
      new Option('--demo-sessions <n>', 'the demo runs this many requests, then exits (implies --demo)').argParser(
        int('--demo-sessions', 1),
      ),
    )
    .action(async (raw: RawServeFlags) => {
      const { disableMetrics, disableLogging, enableTracing, demo, ...rest } = raw;
      const flags: ServeFlags = {
        ...rest,
        metrics: disableMetrics !== true,
        eventLogging: disableLogging !== true,
        // From KVMP_ENABLE_TRACING the value is a string.
        enableTracing: enableTracing === true || enableTracing === 'true' || enableTracing === '1',
        demo: demo === true,
      };
      let config: ReturnType<typeof resolveServeConfig>;
      try {
        config = resolveServeConfig(flags);
      } catch (err) {
        if (err instanceof ConfigError) program.error(`kvmp serve: ${err.message}`, { exitCode: 2 });
        throw err;
      }
      const running = await startServe(config, out);
      await new Promise<void>((resolve) => {
        let signals = 0;
        const onSignal = (sig: NodeJS.Signals) => {
          if (++signals > 1) {
            out(`kvmp: second ${sig}, exiting without draining`);
            process.exit(1);
          }
          running.stop(sig).then(resolve, (err: unknown) => {
            out(`kvmp: shutdown failed: ${err instanceof Error ? err.message : String(err)}`);
            process.exit(1);
          });
        };
        process.on('SIGINT', onSignal);
        process.on('SIGTERM', onSignal);
      });
    });

  program
    .command('demo')
    .description('run a demo engine workload (engine-driven mode, verified bytes) against a kvmp server')
    .addOption(opt('--connect <endpoint>', 'server endpoint', 'KVMP_CONNECT').default('tcp://127.0.0.1:5555'))
    .option('--requests <n>', 'requests per round', int('--requests', 1), 32)
    .option('--prompt-tokens <n>', 'tokens per prompt', int('--prompt-tokens', 1), 2048)
    .option('--prefixes <n>', 'distinct shared prefixes', int('--prefixes', 1), 4)
    .option('--concurrency <n>', 'requests in flight', int('--concurrency', 1), 4)
    .option('--loop', 'keep running rounds until interrupted', false)
    .option('--sessions <n>', 'total requests, then exit (overrides --loop)', int('--sessions', 1))
    .option('--rate <per-second>', 'start at most this many requests per second', num('--rate'))
    .option('--interval-ms <ms>', 'pause between rounds', int('--interval-ms'), 1000)
    .option('--instance-id <id>', 'engine instance id', `demo-${process.pid}`)
    .action(async (o: Parameters<typeof runDemo>[0]) => {
      process.exitCode = await runDemo(o, out);
    });

  program
    .command('trace')
    .description('draw request waterfalls in the terminal, from a running server or a JSON-lines span file')
    .addOption(opt('--url <url>', 'kvmp HTTP base URL', 'KVMP_URL').default('http://127.0.0.1:8080'))
    .option('--file <path>', 'read spans from a JSON-lines file (kvmp serve --trace-file) instead')
    .option('--limit <n>', 'most recent requests to draw', int('--limit', 1), 10)
    .option('--session <id>', 'only this session (request id)')
    .option('--width <columns>', 'bar width', int('--width', 10), 60)
    .option('--no-color', 'plain text')
    .action(async (o: TraceFlags) => {
      process.exitCode = await runTrace(o, out);
    });

  return program;
}

/** Entry point of bin/kvmp.js. */
export async function main(argv: readonly string[] = process.argv): Promise<void> {
  await buildProgram().parseAsync([...argv]);
}
