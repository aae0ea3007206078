// Prometheus metrics of the worker: agentlab's own series (fed by the workflow's metrics sink) plus the
// Temporal SDK runtime's, served together on one loopback /metrics endpoint.
import { createServer, type Server } from 'node:http';
import type { InjectedSinks } from '@temporalio/worker';
import type { AgentlabSinks } from '../common/contract';

type Labels = Record<string, string>;
const labelKey = (labels: Labels): string =>
  Object.entries(labels)
    .sort(([a], [b]) => a.localeCompare(b))
    .map(([k, v]) => `${k}="${v.replace(/["\\\n]/g, '_')}"`)
    .join(',');

class Counter {
  private readonly values = new Map<string, number>();
  constructor(
    readonly name: string,
    private readonly help: string,
  ) {}
  inc(labels: Labels = {}, by = 1): void {
    const key = labelKey(labels);
    this.values.set(key, (this.values.get(key) ?? 0) + by);
  }
  render(): string {
    const lines = [`# HELP ${this.name} ${this.help}`, `# TYPE ${this.name} counter`];
    for (const [key, value] of this.values) lines.push(`${this.name}${key ? `{${key}}` : ''} ${value}`);
    return lines.join('\n');
  }
}

class Histogram {
  private readonly counts: number[];
  private sum = 0;
  private count = 0;
  constructor(
    readonly name: string,
    private readonly help: string,
    private readonly buckets: number[],
  ) {
    this.counts = buckets.map(() => 0);
  }
  observe(value: number): void {
    this.buckets.forEach((bound, i) => {
      if (value <= bound) this.counts[i]!++;
    });
    this.sum += value;
    this.count++;
  }
  render(): string {
    const lines = [`# HELP ${this.name} ${this.help}`, `# TYPE ${this.name} histogram`];
    this.buckets.forEach((bound, i) => lines.push(`${this.name}_bucket{le="${bound}"} ${this.counts[i]}`));
    lines.push(
      `${this.name}_bucket{le="+Inf"} ${this.count}`,
      `${this.name}_sum ${this.sum}`,
      `${this.name}_count ${this.count}`,
    );
    return lines.join('\n');
  }
}

const SECONDS_BUCKETS = [1, 2, 5, 10, 20, 30, 60, 120, 300, 600, 1800, 3600];

/** The series' names are the original system's, so existing dashboards keep working. */
export class AgentlabMetrics {
  readonly transitions = new Counter('agentlab_sandbox_transitions_total', 'Sandbox state transitions.');
  readonly provisionDuration = new Histogram(
    'agentlab_sandbox_provision_duration_seconds',
    'From the first PROVISIONING to READY, all attempts included.',
    SECONDS_BUCKETS,
  );
  readonly timeToReady = new Histogram(
    'agentlab_sandbox_time_to_ready_seconds',
    'From the job request to READY.',
    SECONDS_BUCKETS,
  );
  readonly jobStatus = new Counter('agentlab_job_status_total', 'Jobs by final status.');
  readonly jobDuration = new Histogram(
    'agentlab_job_duration_seconds',
    'From the job request to its final status.',
    SECONDS_BUCKETS,
  );

  /** Sinks run outside the workflow sandbox and, with callDuringReplay false, once per real event. */
  sinks(): InjectedSinks<AgentlabSinks> {
    return {
      metrics: {
        transition: { fn: (_info, from, to) => this.transitions.inc({ from, to }), callDuringReplay: false },
        ready: {
          fn: (_info, provisionSeconds, timeToReadySeconds) => {
            this.provisionDuration.observe(provisionSeconds);
            this.timeToReady.observe(timeToReadySeconds);
          },
          callDuringReplay: false,
        },
        jobFinished: {
          fn: (_info, status, durationSeconds) => {
            this.jobStatus.inc({ status });
            this.jobDuration.observe(durationSeconds);
          },
          callDuringReplay: false,
        },
      },
    };
  }

  render(): string {
    return [this.transitions, this.provisionDuration, this.timeToReady, this.jobStatus, this.jobDuration]
      .map((metric) => metric.render())
      .join('\n');
  }
}

/** Serves our series followed by the SDK runtime's (scraped from its own exporter on loopback). */
export function serveMetrics(
  metrics: AgentlabMetrics,
  host: string,
  port: number,
  sdkMetricsUrl: string,
): Promise<Server> {
  const server = createServer((req, res) => {
    if (req.url !== '/metrics') {
      res.writeHead(404).end();
      return;
    }
    void fetch(sdkMetricsUrl, { signal: AbortSignal.timeout(2000) })
      .then((r) => r.text())
      .catch(() => '# the Temporal SDK metrics exporter did not answer\n')
      .then((sdk) => {
        res.writeHead(200, { 'content-type': 'text/plain; version=0.0.4' });
        res.end(`${metrics.render()}\n${sdk}`);
      });
  });
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => resolve(server));
  });
}
