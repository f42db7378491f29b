/** Options of the metrics subscriber (structured-clonable: they cross to the drain thread). */
export interface MetricsOptions {
  /** Resource attributes; `service.name=kvmp` and a per-process `service.instance.id` by default. */
  readonly serviceName?: string;
  readonly serviceInstanceId?: string;
  readonly resourceAttributes?: Readonly<Record<string, string | number | boolean>>;
  /**
   * Histogram bucket boundaries for copy throughput in GB/s. Default spans PCIe-over-pinned
   * (≈ 1–25 GB/s) and host memcpy on the CPU backend.
   */
  readonly throughputBucketsGBps?: readonly number[];
  /** Bucket boundaries for copy durations in seconds. */
  readonly durationBucketsS?: readonly number[];
}

/** Name under which the metrics subscriber answers `pipeline.query`. */
export const METRICS_SUBSCRIBER_NAME = 'metrics';
